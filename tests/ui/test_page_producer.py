"""The page against what the real producer writes: build_tables -> summarize -> publish_reports (two runs, so the
trend has history), read back through the configured app. Catches contract drift between publish/ and ui/."""

from __future__ import annotations

import re
from datetime import timedelta

import boto3
import pytest
from fastapi.testclient import TestClient

from include.patch_compliance.aws import AwsContext
from include.patch_compliance.config import ReportsConfig
from include.patch_compliance.publish.reports import build_and_publish
from include.patch_compliance.transform.staging import StagedRun
from include.patch_compliance.ui.app import create_app
from sandbox.principals import SETUP_ACCESS_KEY
from sandbox.testing import running_sandbox
from tests.fixtures.raw.builders import (
    NOW,
    command_record,
    ec2_instance,
    instance_info,
    patch,
    patch_state,
    raw_doc,
    target,
    unreachable_doc,
)
from tests.ui.summary_fixture import BUCKET, PREFIX

DAG = "patch_compliance_scan"
SLA = {"CRITICAL": 7, "HIGH": 14, "MEDIUM": 30, "LOW": 90, "INFORMATIONAL": 180, "UNSPECIFIED": 90}
A, B, C = "i-0000000000000000a", "i-0000000000000000b", "i-0000000000000000c"


@pytest.fixture(scope="module")
def s3_endpoint():
    """The emulator instead of bare moto (this overrides tests/ui/conftest.py): the producer's writes and the
    page's reads are recorded as the hub's calls and checked against deploy/iam/hub-role.yaml (tests/deploy)."""
    with running_sandbox(profile="small", seed=7, time_scale=0) as sb:
        yield sb.url


@pytest.fixture
def s3(s3_endpoint: str):
    """Test setup (creating the bucket) signs with the emulator's setup key, so it is not counted as the hub's."""
    return boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id=SETUP_ACCESS_KEY,
        aws_secret_access_key="setup",
    )


def publish_run(ctx: AwsContext, day: int) -> dict:
    when = NOW + timedelta(days=day)
    scanned = when - timedelta(hours=1)
    states = [patch_state(A, scanned=scanned, missing=1, critical=1), patch_state(B, scanned=scanned)]
    if day:
        states = [patch_state(A, scanned=scanned), patch_state(B, scanned=scanned)]
    docs = [
        raw_doc(
            info=[instance_info(A), instance_info(B), instance_info(C)],
            ec2=[ec2_instance(A)],
            states=states,
            patches={A: [patch("kernel", severity="Critical")]} if not day else {},
        ),
        unreachable_doc(target("222222222222", ou_id="ou-ab12-dev00001", ou_path="Root/Dev")),
    ]
    commands = [command_record(i, requested=when - timedelta(minutes=30)) for i in (A, B)]
    run_id = f"scheduled__{when.isoformat()}"
    cfg = ReportsConfig(bucket=BUCKET, prefix=PREFIX)
    staged = StagedRun.from_docs(docs, commands, now=when, sla_days=SLA, stale_after_days=7)
    published = build_and_publish(
        ctx, cfg, staged, run_id=run_id, dag_id=DAG, now=when, sla_days=SLA, stale_after_days=7
    )
    return published.summary


def test_page_shows_what_publish_reports_wrote(configured, s3, s3_endpoint: str) -> None:
    s3.create_bucket(Bucket=BUCKET)
    ctx = AwsContext(session=boto3.Session(region_name="us-east-1"), endpoint_url=s3_endpoint)
    publish_run(ctx, 0)
    publish_run(ctx, 1)
    client = TestClient(create_app())

    latest = client.get("/api/summary").json()["summary"]
    assert latest["run_id"] == f"scheduled__{(NOW + timedelta(days=1)).isoformat()}"
    assert len(latest["trend"]) == 2
    html = client.get("/").text
    totals = latest["totals"]
    for name in ("nodes", "sla_breaches", "unreachable_targets"):
        assert f'data-metric="{name}">{totals[name]:,}<' in html
    assert f'data-metric="compliant_pct">{totals["compliant_pct"]:.1f}%<' in html
    gaps = sum(n for status, n in totals["coverage"].items() if status not in {"SCANNED", "UNREACHABLE"})
    assert f'data-metric="coverage_gaps">{gaps}<' in html

    # Every run in the trend links to a report the producer really wrote.
    links = re.findall(r'data-run-report="([^"]+)" href="([^"]+)"', html)
    assert sorted(run for run, _ in links) == sorted(row["run_id"] for row in latest["trend"])
    for _, href in links:
        report = client.get(href)
        assert report.status_code == 200, href
        assert b"<svg" in report.content
