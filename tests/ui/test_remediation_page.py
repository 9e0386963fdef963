"""The page's Remediation section, ``/remediation`` and ``/api/remediation``, against S3 served by moto, with a
remediation summary made by the producer's own functions (remediation_rows → conform → remediation_summary)."""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, date, datetime
from html import unescape

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from include.patch_compliance.remediate.verify import remediation_rows, remediation_summary
from include.patch_compliance.transform.schema import REMEDIATION, conform
from include.patch_compliance.ui.app import create_app
from tests.ui.summary_fixture import BUCKET, PREFIX, make_summary, publish

RUN = "manual__2026-11-30T22:10:00+00:00"
REPORT_ID = "manual__2026-11-30T22_10_00_00_00-3f1c2a9b"
KEY = f"{PREFIX}/latest/patch_compliance_remediate/summary.json"
NODES = [
    ("i-0aaaaaaaaaaaaaaa1", "canary_nodes"),
    ("i-0aaaaaaaaaaaaaaa2", "canary_nodes"),
    ("i-0aaaaaaaaaaaaaaa3", "prod"),
]


def _before(iid: str) -> dict:
    return {
        "ou_id": "ou-ab12-prod0001", "ou_path": "Root/Workloads/Prod", "account_id": "111111111111",
        "account_name": "prod-a", "region": "eu-west-1", "instance_id": iid, "instance_name": f"web-{iid[-1]}",
        "platform_name": "Amazon Linux", "compliance_status": "NON_COMPLIANT", "missing_count": 4, "failed_count": 1,
        "installed_pending_reboot_count": 0, "installed_rejected_count": 0, "installed_count": 30,
    }  # fmt: skip


def remediation_block() -> dict:
    """Node 1 fixed, node 2 failed its Install, node 3's wave was held."""
    late, early = datetime(2026, 11, 30, 23, tzinfo=UTC), datetime(2026, 11, 29, 3, tzinfo=UTC)
    fixed = {"compliance_status": "COMPLIANT", "missing_count": 0, "failed_count": 0, "installed_count": 35}
    after = pd.DataFrame(
        [
            {**_before(NODES[0][0]), **fixed, "last_operation": "Install", "last_scan_time": late},
            {**_before(NODES[1][0]), "last_operation": "Scan", "last_scan_time": late},
            {**_before(NODES[2][0]), "last_operation": "Scan", "last_scan_time": early},
        ]
    )
    installs = {
        ("111111111111", "eu-west-1", iid): {
            "command_id": "5d3f6c1e-0000-4000-8000-00000000000" + iid[-1],
            "status": status,
            "status_details": status,
            "requested_at": "2026-11-30T22:20:00Z",
            "finished_at": "2026-11-30T22:40:00Z",
        }
        for (iid, _), status in zip(NODES[:2], ("Success", "Failed"), strict=True)
    }
    held_reason = "wave 'prod' held: Install failed on 1 of 2 nodes (50%) in wave 'canary_nodes', above 10%"
    rows = remediation_rows(
        [_before(iid) for iid, _ in NODES],
        after,
        installs,
        wave_of={("111111111111", "eu-west-1", iid): wave for iid, wave in NODES},
        held={"prod": held_reason},
        not_sent={},
        rescanned={("111111111111", "eu-west-1", NODES[1][0])},
        source_run_id="scheduled__2026-11-29T03:00:00+00:00",
        reboot_option="RebootIfNeeded",
    )
    table = conform(
        rows.assign(run_id=RUN, dag_id="patch_compliance_remediate", snapshot_date=date(2026, 11, 30)), REMEDIATION
    )
    waves = [
        {"wave": "canary_nodes", "nodes": 2, "invocations": 2, "failed": 1, "held": False, "reason": None},
        {"wave": "prod", "nodes": 1, "invocations": 0, "failed": 0, "held": True, "reason": held_reason},
    ]
    block = remediation_summary(table, waves)
    block.update(source_run_id="scheduled__2026-11-29T03:00:00+00:00", reboot_option="RebootIfNeeded", dry_run=False)
    return block


def remediation_summary_json() -> dict:
    summary = copy.deepcopy(make_summary())
    summary.update(
        run_id=RUN,
        dag_id="patch_compliance_remediate",
        snapshot_date="2026-11-30",
        report_url=f"s3://{BUCKET}/{PREFIX}/runs/{REPORT_ID}/report.html",
        remediation=remediation_block(),
    )
    return summary


def metric(html: str, name: str) -> str:
    match = re.search(rf'data-metric="{name}">([^<]*)<', html)
    assert match, f"metric {name} not on the page"
    return unescape(match.group(1)).strip()


@pytest.fixture
def client(configured) -> TestClient:
    return TestClient(create_app())


def test_page_shows_the_latest_remediation_run(client: TestClient, s3) -> None:
    s3.create_bucket(Bucket=BUCKET)
    publish(s3, make_summary())
    summary = remediation_summary_json()
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=json.dumps(summary).encode())
    block = summary["remediation"]
    assert block["results"]["REMEDIATED"] == 1 and block["results"]["HELD"] == 1  # the producer's figures

    html = client.get("/").text
    assert 'data-section="remediation"' in html
    assert metric(html, "rem_selected") == "3" and metric(html, "rem_sent") == "2"
    assert metric(html, "rem_before_nc") == "3" and metric(html, "rem_after_nc") == str(block["after"]["non_compliant"])
    assert metric(html, "rem_remediated") == "1" and metric(html, "rem_patches") == str(block["patches_installed"])
    assert metric(html, "rem_held") == "1"
    assert 'data-held="prod"' in html and "above 10%" in html
    assert f'href="/runs/{REPORT_ID}/report"' in html and 'href="/remediation"' in html
    # the fleet view above it is still the scan's
    assert 'data-field="run_id">scheduled__2026-11-29T03:00:00+00:00<' in html

    nodes = client.get("/remediation")
    assert nodes.status_code == 200
    for iid, _ in NODES:
        assert f'data-node="{iid}"' in nodes.text
    results = dict(re.findall(r'data-node="([^"]+)">.*?data-field="result">(\w+)<', nodes.text, flags=re.S))
    assert results == {NODES[0][0]: "REMEDIATED", NODES[1][0]: "NOT_REMEDIATED", NODES[2][0]: "HELD"}

    api = client.get("/api/remediation")
    assert api.status_code == 200 and api.json()["remediation"]["remediation"]["results"] == block["results"]


def test_without_a_remediation_run_the_section_is_absent(client: TestClient, s3) -> None:
    s3.create_bucket(Bucket=BUCKET)
    publish(s3, make_summary())
    assert 'data-section="remediation"' not in client.get("/").text
    page = client.get("/remediation")
    assert page.status_code == 200 and 'data-state="no_remediation"' in page.text and KEY in page.text
    api = client.get("/api/remediation")
    assert api.status_code == 404 and api.json() == {"status": "no_remediation", "key": KEY}


def test_a_bad_remediation_summary_is_named_and_the_fleet_view_still_shows(client: TestClient, s3) -> None:
    s3.create_bucket(Bucket=BUCKET)
    publish(s3, make_summary())
    bad = remediation_summary_json()
    del bad["remediation"]["selected"]
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=json.dumps(bad).encode())
    html = client.get("/").text
    assert 'data-state="remediation_error"' in html and "remediation.selected" in html
    assert 'data-metric="nodes"' in html  # the scan's figures are still there
    assert client.get("/remediation").status_code == 503
    assert client.get("/api/remediation").json()["problem"]["code"] == "InvalidSummary"
