"""Probes: a publish that fails part-way leaves no table object of its run (issue 10 item 10).

Athena reads every object under a day's partition folder (docs/aws-behaviours.md §20), so a table written before
the failure would be half a run in every query. The failure is injected at the S3 client (a botocore
``before-parameter-build`` hook answering AccessDenied for one key), between the ``patches`` and ``accounts`` tables.
"""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from include.patch_compliance.aws import AwsContext
from include.patch_compliance.config import ReportsConfig
from include.patch_compliance.publish.reports import build_and_publish
from include.patch_compliance.storage import StorageError, safe_run_id, to_jsonable
from include.patch_compliance.transform.staging import StagedRun
from tests.fixtures.raw.builders import NOW, instance_info, patch, patch_state, raw_doc

BUCKET = "pc-atomic"
DAG = "patch_compliance_scan"
SLA = {"CRITICAL": 7, "HIGH": 14, "MEDIUM": 30, "LOW": 90, "INFORMATIONAL": 180, "UNSPECIFIED": 90}
A = "i-0000000000000000a"


@pytest.fixture
def hub() -> Iterator[AwsContext]:
    with mock_aws():
        ctx = AwsContext(session=boto3.Session(region_name="us-east-1"))
        ctx.client("s3").create_bucket(Bucket=BUCKET)
        yield ctx


def _publish(hub, run_id, now=NOW):
    docs = [raw_doc(info=[instance_info(A)], states=[patch_state(A, missing=1)], patches={A: [patch("kernel")]})]
    return build_and_publish(
        hub,
        ReportsConfig(bucket=BUCKET, prefix="pc"),
        StagedRun.from_docs(to_jsonable(docs), [], now=now, sla_days=SLA, stale_after_days=7),
        run_id=run_id,
        dag_id=DAG,
        now=now,
        sla_days=SLA,
        stale_after_days=7,
    )


def _objects(hub) -> dict[str, bytes]:
    s3 = hub.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    return {k: s3.get_object(Bucket=BUCKET, Key=k)["Body"].read() for k in keys}


def _fail_puts_of(hub, fragment: str):
    """PutObject of any key containing ``fragment`` answers AccessDenied; returns the undo."""
    event = "before-parameter-build.s3.PutObject"

    def deny(params, **_):
        if fragment in params["Key"]:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "injected"}}, "PutObject")

    events = hub.client("s3").meta.events
    events.register(event, deny)
    return lambda: events.unregister(event, deny)


def test_a_failure_between_two_tables_leaves_nothing_of_the_run(hub):
    _publish(hub, "manual__good")
    before = _objects(hub)
    _fail_puts_of(hub, "/accounts/")
    with pytest.raises(StorageError, match="AccessDenied") as failure:
        _publish(hub, "manual__broken")
    after = _objects(hub)
    broken = safe_run_id("manual__broken")
    assert not [k for k in after if broken in k]  # no table, run file or history entry of the failed run
    assert after == before  # latest/ and the good run untouched
    assert any("were deleted" in note for note in failure.value.__notes__)


def test_the_retry_after_a_failed_publish_publishes_everything(hub):
    undo = _fail_puts_of(hub, "/summary.json")  # the last object before the history entry and latest/
    with pytest.raises(StorageError):
        _publish(hub, "manual__retried")
    assert not _objects(hub)
    undo()
    published = _publish(hub, "manual__retried")
    assert set(published.written) >= {"nodes", "accounts", "delta", "summary.json", "history", "latest"}
    assert len(_objects(hub)) == len(published.written)


def test_a_failed_re_publish_keeps_the_complete_earlier_publication(hub):
    """Deleting there would break latest/, which already points at this run's tables."""
    _publish(hub, "manual__twice")
    before = _objects(hub)
    _fail_puts_of(hub, "/accounts/")
    with pytest.raises(StorageError):
        _publish(hub, "manual__twice")
    assert _objects(hub) == before
