"""Probes: retries repeat no side effect and move no deadline (issue 10 item 9, and what already held).

A retried scan task reuses this run's commands (no second SendCommand) and keeps the first attempt's ``sent_at``,
so the wait deadline (``sent_at`` + ``scan.wait.timeout_seconds``) does not move later with every retry;
re-publishing a run writes the same bytes to the same keys.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from unittest import mock

import pytest
from botocore.exceptions import ClientError

from include.patch_compliance import steps
from include.patch_compliance.orchestration.operators import PatchScanOperator
from include.patch_compliance.scan.command import InstallNotAllowed
from include.patch_compliance.storage import StorageError, get_bytes, list_keys, put_bytes, staged_prefix
from include.patch_compliance.transform.build import build_tables
from tests.orchestration.conftest import fleet_config, make_run


class _TI:
    def xcom_push(self, key, value):
        pass


def _context(run, operation="Scan"):
    return {
        "dag": SimpleNamespace(dag_id=run.dag_id),
        "run_id": run.run_id,
        "dag_run": SimpleNamespace(run_after=run.run_after, start_date=datetime.now(UTC) - timedelta(minutes=1)),
        "ti": _TI(),
        "params": {"operation": operation},
    }


def _scan(run, shard, operation="Scan"):
    with mock.patch("include.patch_compliance.runtime.RunContext.from_airflow", return_value=run):
        return PatchScanOperator(task_id="scan", shard=shard).execute(_context(run, operation))


def test_a_retried_scan_keeps_the_first_sent_at_and_sends_nothing(sandbox):
    run = make_run("faults-retry-scan")
    shard = steps.plan_fleet(run)["waves"]["canary"][0]
    _scan(run, shard)
    first = {r["target"]["account_id"] + r["target"]["region"]: r for r in run.get(run.key("scan", "canary", 0))}
    sandbox.reset_calls()
    sandbox.admin("advance", seconds=120)
    _scan(run, shard)  # the retry
    again = {r["target"]["account_id"] + r["target"]["region"]: r for r in run.get(run.key("scan", "canary", 0))}
    assert sandbox.calls().get("ssm.SendCommand", 0) == 0
    sent = [k for k, r in first.items() if r["status"] == "SENT"]
    assert sent
    for key in sent:
        assert again[key]["sent_at"] == first[key]["sent_at"]
        assert [c["command_id"] for c in again[key]["commands"]] == [c["command_id"] for c in first[key]["commands"]]


def test_install_without_the_opt_in_is_refused_before_anything_is_sent(sandbox):
    run = make_run("faults-install-refused")
    shard = steps.plan_fleet(run)["waves"]["canary"][0]
    sandbox.reset_calls()
    with pytest.raises(InstallNotAllowed, match="scan.allow_install: false"):
        _scan(run, shard, operation="Install")
    assert sandbox.calls().get("ssm.SendCommand", 0) == 0
    assert not list_keys(run.hub, run.bucket, run.prefix("scan"))


def _collect(run):
    """Collect and stage every shard as the collect tasks do; return the raw documents collected."""
    docs = []
    for refs in steps.plan_fleet(run)["waves"].values():
        for ref in refs:
            shard = steps.collect_docs(run, ref["wave"], int(ref["shard"]))
            steps.stage_shard(run, ref["wave"], int(ref["shard"]), shard)
            docs += shard
    return docs


NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def collected(sandbox):
    """One calm collection of the whole fleet, shared by the probes below."""
    run = make_run("faults-calm", fleet_config(reports={"bucket": "pc-test-reports", "prefix": "pc-faults"}))
    run.run_after = NOW
    return run, _collect(run)


def _published(run):
    keys = [k for k in list_keys(run.hub, run.bucket, run.cfg.reports.prefix + "/") if "/_staging/" not in k]
    return {k: run.hub.client("s3").get_object(Bucket=run.bucket, Key=k)["Body"].read() for k in keys}


def test_republishing_a_run_writes_the_same_bytes(collected):
    run, _ = collected
    steps.report(run)
    first = _published(run)
    steps.report(run)  # a retried report task
    assert _published(run) == first and len(first) > 8


def test_the_account_without_the_member_role_is_recorded_and_the_others_are_collected(sandbox, collected):
    _, docs = collected
    roleless = {a["id"] for a in sandbox.fleet["accounts"] if not a["has_role"] and a["state"] == "ACTIVE"}
    down = [d for d in docs if d["status"] == "UNREACHABLE"]
    assert {d["target"]["account_id"] for d in down} == roleless
    assert all(d["error"]["code"] == "AccessDenied" and d["error"]["stage"] == "assume_role" for d in down)
    assert sum(len(d["instance_information"]) for d in docs if d["status"] == "OK") > 20


def _tables(run, docs):
    return {
        name: frame.drop(columns=["run_id"])
        for name, frame in build_tables(
            docs,
            [],
            None,
            run_id="same",
            dag_id=run.dag_id,
            snapshot_date=NOW.date(),
            now=NOW,
            sla_days=run.cfg.thresholds.sla_days,
            stale_after_days=run.cfg.collect.stale_after_days,
        ).items()
    }


def test_throttling_30_percent_gives_identical_tables(sandbox, collected):
    """Standard retry mode absorbs ThrottlingException (docs/aws-behaviours.md §18): same tables, row for row."""
    calm, calm_docs = collected
    throttled = make_run("faults-throttled", calm.cfg)
    sandbox.set_faults({"throttle": {"ssm.*": 0.3, "organizations.*": 0.3, "ec2.*": 0.3}})
    sandbox.reset_calls()
    try:
        docs = _collect(throttled)
    finally:
        sandbox.set_faults({})
    assert not [d for d in docs if d["warnings"]]
    a, b = _tables(calm, calm_docs), _tables(throttled, docs)
    for name in a:
        assert a[name].equals(b[name]), name
    assert len(a["nodes"]) > 20


def test_a_publish_that_fails_midway_deletes_what_it_wrote_on_the_emulator(collected):
    """The hub deletes (DeleteObjects, under the reports prefix only) what a failed first publish of a run wrote,
    so latest/ and the good runs stay as they were."""
    good, _ = collected
    steps.report(good)
    before = _published(good)
    broken = make_run("faults-publish-broken", good.cfg)
    broken.run_after = NOW
    source, dest = (staged_prefix(good.cfg.reports.prefix, r.run_id) for r in (good, broken))
    for key in list_keys(good.hub, good.bucket, source):
        put_bytes(broken.hub, broken.bucket, dest + key.removeprefix(source), get_bytes(good.hub, good.bucket, key))
    broken.put(broken.key("plan"), good.get(good.key("plan")))

    def deny(params, **_):
        if "/accounts/" in params["Key"]:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "injected"}}, "PutObject")

    events = broken.hub.client("s3").meta.events
    events.register("before-parameter-build.s3.PutObject", deny)
    try:
        with pytest.raises(StorageError, match="AccessDenied"):
            steps.report(broken)
    finally:
        events.unregister("before-parameter-build.s3.PutObject", deny)
    assert _published(good) == before  # nothing of the broken run left, nothing of the good one changed
