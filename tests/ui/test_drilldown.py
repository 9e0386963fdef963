"""The page's drill-down over what the real producer published: filters as query parameters, the paged node list
with each node's missing patches and CVEs, the run selector, the CVE route and index. Every figure is checked
against the published Parquet tables themselves (read whole here, with pyarrow)."""

from __future__ import annotations

import re
from html import unescape

import boto3
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from fastapi.testclient import TestClient

from include.patch_compliance.aws import AwsContext
from include.patch_compliance.storage import safe_run_id
from include.patch_compliance.ui.app import create_app
from tests.ui.fleet_fixture import KERNEL_CVE, SSL_CVE, UNMANAGED, add_tag_columns, publish_fleet, read_table
from tests.ui.summary_fixture import BUCKET


@pytest.fixture
def fleet(configured, s3, s3_endpoint: str) -> dict:
    s3.create_bucket(Bucket=BUCKET)
    ctx = AwsContext(session=boto3.Session(region_name="us-east-1"), endpoint_url=s3_endpoint)
    return publish_fleet(ctx)


@pytest.fixture
def client(configured) -> TestClient:
    return TestClient(create_app())


def metric(html: str, name: str) -> str:
    match = re.search(rf'data-metric="{name}">([^<]*)<', html)
    assert match, f"metric {name} not on the page"
    return unescape(match.group(1)).strip()


def listed(html: str, table: str = "nodes") -> list[str]:
    body = html.split(f'data-table="{table}"', 1)[1].split("</table>", 1)[0]
    return re.findall(r'<tr data-node="([^"]+)"', body)


def node_rows(nodes: pa.Table, **equal: str) -> list[str]:
    mask = pc.is_valid(nodes["instance_id"])
    for column, value in equal.items():
        mask = pc.and_(mask, pc.equal(nodes[column], value))
    return nodes.filter(mask)["instance_id"].to_pylist()


def exposed(patches: pa.Table, cve: str) -> set[str]:
    return {r["instance_id"] for r in patches.to_pylist() if cve in (r["cve_ids"] or [])}


def test_unfiltered_list_pages_through_every_node(client: TestClient, fleet: dict, s3) -> None:
    nodes = read_table(s3, fleet, "nodes")
    expected = node_rows(nodes)
    first = client.get("/")
    assert first.status_code == 200, first.text
    assert metric(first.text, "nodes_matching") == str(len(expected))
    page1 = listed(first.text)
    assert len(page1) == 50 and page1 == expected[:50]  # file order
    assert 'data-link="next-page" href="?page=2"' in first.text
    second = client.get("/", params={"page": 2})
    assert listed(second.text) == expected[50:]
    assert 'data-link="next-page"' not in second.text and 'data-link="prev-page"' in second.text


def test_nodes_card_splits_managed_and_unmanaged_and_the_pct_says_what_it_is_of(client, fleet: dict, s3) -> None:
    nodes = read_table(s3, fleet, "nodes")
    unmanaged = len(node_rows(nodes, coverage_status="UNMANAGED"))
    html = client.get("/").text
    assert unmanaged == 1 and UNMANAGED in node_rows(nodes, coverage_status="UNMANAGED")
    assert metric(html, "nodes") == str(fleet["totals"]["nodes"])
    assert metric(html, "unmanaged") == str(unmanaged)
    assert metric(html, "managed") == str(fleet["totals"]["nodes"] - unmanaged)
    assert "% of all nodes, managed and unmanaged" in html
    assert "Managed nodes" not in html and "SCAN_FAILED" not in html.replace('value="SCAN_FAILED"', "")


def test_filters_match_the_published_table(client: TestClient, fleet: dict, s3) -> None:
    nodes = read_table(s3, fleet, "nodes")
    expected = node_rows(nodes, account_id="222222222222", compliance_status="NON_COMPLIANT")
    html = client.get("/", params={"account": "222222222222", "compliance": "NON_COMPLIANT", "per_page": 10}).text
    assert 0 < len(expected) <= 10
    assert metric(html, "nodes_matching") == str(len(expected))
    assert listed(html) == expected
    assert '<option value="222222222222" selected>' in html
    # Each listed node shows its missing patches and links its CVEs to the CVE route.
    patches = read_table(s3, fleet, "patches").to_pylist()
    node = expected[0]
    row = html.split(f'data-node="{node}"', 1)[1].split("</tr>", 1)[0]
    for p in (p for p in patches if p["instance_id"] == node):
        assert (p["kb_id"] or p["title"]) in row
        for cve in p["cve_ids"] or []:
            assert f'href="/cves?q={cve}"' in row

    ou = client.get("/", params={"ou": "Root/Workloads/Prod", "region": "eu-west-1"}).text
    assert metric(ou, "nodes_matching") == str(len(node_rows(nodes, ou_path="Root/Workloads/Prod")))


def test_severity_filter_lists_nodes_missing_a_patch_of_that_severity(client, fleet: dict, s3) -> None:
    patches = read_table(s3, fleet, "patches").to_pylist()
    critical = sorted({p["instance_id"] for p in patches if p["severity"] == "CRITICAL"})
    html = client.get("/", params={"severity": "CRITICAL", "per_page": 200}).text
    assert critical and sorted(listed(html)) == critical
    assert metric(html, "nodes_matching") == str(len(critical))


def test_tag_filters_use_the_tag_columns(client: TestClient, fleet: dict, s3) -> None:
    nodes = add_tag_columns(s3, fleet)
    html = client.get("/", params={"tag_Team": "payments", "per_page": 200}).text
    expected = node_rows(nodes, tag_Team="payments")
    assert expected and listed(html) == expected
    assert 'data-filter="tag_Environment"' in html and '<option value="search"' in html


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"compliance": "BROKEN"}, "'compliance'"),
        ({"severity": "SEVERE"}, "'severity'"),
        ({"page": "0"}, "'page'"),
        ({"per_page": "5000"}, "'per_page'"),
        ({"run": "../x"}, "'run'"),
        ({"tag_Team": "payments"}, "'tag_Team'"),  # no tag columns in this run
    ],
)
def test_a_bad_filter_is_a_400_naming_the_parameter(client, fleet: dict, params: dict, named: str) -> None:
    response = client.get("/", params=params)
    assert response.status_code == 400
    assert f"query parameter {named}" in unescape(response.text)


def test_run_selector_shows_an_earlier_run_and_every_run_with_its_time(client, configured, s3, s3_endpoint) -> None:
    s3.create_bucket(Bucket=BUCKET)
    ctx = AwsContext(session=boto3.Session(region_name="us-east-1"), endpoint_url=s3_endpoint)
    first = publish_fleet(ctx, day=0)
    latest = publish_fleet(ctx, day=1)
    html = client.get("/").text
    options = re.findall(r'<option value="([^"]+)" (selected)? ?data-run-id="([^"]+)">([^<]+)</option>', html)
    assert [o[2] for o in options] == [latest["run_id"], first["run_id"]]
    assert options[0][1] == "selected" and first["run_id"] in options[1][3] and "2026-11-29 03:00" in options[1][3]
    earlier = client.get("/", params={"run": safe_run_id(first["run_id"])})
    assert earlier.status_code == 200
    assert re.search(r'data-field="run_id">([^<]+)<', earlier.text).group(1) == first["run_id"]
    assert metric(earlier.text, "nodes") == str(first["totals"]["nodes"])
    # the node list of that run comes from that run's tables; paging links keep the run
    assert f'href="?run={safe_run_id(first["run_id"])}&amp;page=2"' in earlier.text
    missing = client.get("/", params={"run": "manual__never-ran"})
    assert missing.status_code == 404 and "runs/manual__never-ran/summary.json does not exist" in missing.text


def test_cve_route_lists_the_exposed_nodes(client: TestClient, fleet: dict, s3) -> None:
    patches = read_table(s3, fleet, "patches")
    for cve in (KERNEL_CVE, SSL_CVE):
        ids = exposed(patches, cve)
        response = client.get("/cves", params={"q": cve.lower()})  # ids are matched upper-case
        assert response.status_code == 200, response.text
        html = response.text
        assert metric(html, "cve_nodes") == str(len(ids))
        assert sorted(listed(html, "exposed")) == sorted(ids)
        accounts = {r["account_id"] for r in patches.to_pylist() if r["instance_id"] in ids}
        assert metric(html, "cve_accounts") == str(len(accounts))
    assert metric(client.get("/cves", params={"q": KERNEL_CVE}).text, "cve_severity") == "Critical"
    none = client.get("/cves", params={"q": "CVE-1999-0001"}).text
    assert metric(none, "cve_nodes") == "0" and 'data-state="not_exposed"' in none
    bad = client.get("/cves", params={"q": "kernel"})
    assert bad.status_code == 400 and "query parameter 'q'" in unescape(bad.text)


def test_cve_index_counts_nodes_per_cve(client: TestClient, fleet: dict, s3) -> None:
    patches = read_table(s3, fleet, "patches")
    html = client.get("/cves").text
    rows = dict(re.findall(r'data-cve-row="([^"]+)">.*?data-field="nodes">(\d+)<', html, flags=re.S))
    assert rows == {cve: str(len(exposed(patches, cve))) for cve in (KERNEL_CVE, SSL_CVE)}
    assert list(rows) == [KERNEL_CVE, SSL_CVE]  # most exposed first
    assert "cves table" in html  # the producer publishes one; its counts equal the patches rows naming each CVE


def test_cve_index_prefers_the_summarys_top_cves(client: TestClient, configured, s3) -> None:
    from tests.ui.summary_fixture import make_summary, publish

    s3.create_bucket(Bucket=BUCKET)
    summary = make_summary()
    summary["top_cves"] = [
        {"cve_id": "CVE-2024-3094", "severity": "CRITICAL", "nodes": 12, "accounts": 3,
         "first_seen": "2026-10-01T00:00:00Z", "sla_breaches": 4, "kb_ids": ["xz-utils"], "titles": ["xz"]},
    ]  # fmt: skip
    publish(s3, summary)
    html = client.get("/cves").text
    assert re.search(r'data-cve-row="CVE-2024-3094">.*?data-field="nodes">12<', html, flags=re.S)
    assert "summary.json top_cves" in html and "2026-10-01" in html
