"""The Patch compliance page and its JSON endpoint, through FastAPI's TestClient, against S3 served by moto.

The app's real store_from_config() is used: config file -> Airflow AWS connection (env var) -> aws/ -> S3."""

from __future__ import annotations

import json
import re
from html import unescape
from unittest import mock

import boto3
import pytest
from botocore.stub import Stubber
from fastapi.testclient import TestClient

from include.patch_compliance.storage import safe_run_id
from include.patch_compliance.ui.app import REPORT_CSP, create_app
from include.patch_compliance.ui.source import ReportStore
from tests.ui.conftest import write_config
from tests.ui.summary_fixture import BUCKET, LATEST_RUN, PREFIX, make_summary, publish, report_html


def metric(html: str, name: str) -> str:
    match = re.search(rf'data-metric="{name}">([^<]*)<', html)
    assert match, f"metric {name} not on the page"
    return unescape(match.group(1)).strip()


@pytest.fixture
def client(configured) -> TestClient:
    return TestClient(create_app())


def test_no_report_yet_says_so(client: TestClient, s3) -> None:
    s3.create_bucket(Bucket=BUCKET)
    response = client.get("/")
    assert response.status_code == 200
    assert 'data-state="no_report"' in response.text
    assert f"s3://{BUCKET}/{PREFIX}/latest/summary.json" in response.text
    assert "data-metric" not in response.text

    api = client.get("/api/summary")
    assert api.status_code == 404
    assert api.json() == {"status": "no_report", "bucket": BUCKET, "key": f"{PREFIX}/latest/summary.json"}


def test_report_figures_match_summary(client: TestClient, s3) -> None:
    s3.create_bucket(Bucket=BUCKET)
    summary = make_summary()
    publish(s3, summary)
    response = client.get("/")
    assert response.status_code == 200, response.text
    html = response.text
    totals = summary["totals"]
    assert metric(html, "nodes") == f"{totals['nodes']:,}"
    assert metric(html, "compliant_pct") == f"{totals['compliant_pct']:.1f}%"
    assert metric(html, "compliant") == f"{totals['compliant']:,}"
    assert metric(html, "non_compliant") == str(totals["non_compliant"])
    assert metric(html, "unknown") == str(totals["unknown"])
    # STALE 22 + NOT_SCANNED 14 + OFFLINE 9 + SCAN_FAILED 5 + UNMANAGED 28; UNREACHABLE counts targets, not nodes.
    assert metric(html, "coverage_gaps") == "78"
    assert metric(html, "sla_breaches") == str(totals["sla_breaches"])
    assert metric(html, "unreachable_targets") == str(totals["unreachable_targets"])
    # Charts are inline SVG, one bar per OU and per severity; every worst account is listed.
    assert html.count("<svg") == 4
    for ou in summary["by_ou"]:
        assert ou["ou_path"] in html
    assert 'aria-label="Missing patches by severity"' in html
    for account in summary["worst_accounts"]:
        assert account["account_id"] in html
    # One report link per run of the trend, each to that run's folder (runs/<safe_run_id>/).
    for row in summary["trend"]:
        assert f'href="/runs/{safe_run_id(row["run_id"])}/report"' in html
    assert "Open full report" in html
    # The run id opens the DAG run in Airflow (the whole window, not the nav iframe); ':' and '+' are escaped.
    run_link = re.search(r'<a ([^>]*data-link="dag-run"[^>]*)>', html).group(1)
    assert 'target="_top"' in run_link
    assert 'href="/dags/patch_compliance_scan/runs/scheduled__2026-11-29T03%3A00%3A00%2B00%3A00"' in run_link

    api = client.get("/api/summary")
    assert api.status_code == 200
    assert api.json() == {"status": "ok", "summary": summary}
    assert api.headers["cache-control"] == "no-store"


def test_run_report_is_served_from_s3_with_a_locked_down_csp(client: TestClient, s3) -> None:
    s3.create_bucket(Bucket=BUCKET)
    publish(s3, make_summary())
    response = client.get(f"/runs/{safe_run_id(LATEST_RUN)}/report")
    assert response.status_code == 200
    assert response.content == report_html(LATEST_RUN)
    assert response.headers["content-security-policy"] == REPORT_CSP
    assert response.headers["content-type"].startswith("text/html")

    missing = client.get("/runs/manual__never-ran/report")
    assert missing.status_code == 404
    assert f"s3://{BUCKET}/{PREFIX}/runs/manual__never-ran/report.html does not exist" in missing.text

    assert client.get("/runs/bad$id/report").status_code == 400
    assert client.get("/runs/..%2F..%2Fetc/report").status_code in {400, 404}


def test_unreadable_bucket_shows_bucket_code_and_what_to_check(client: TestClient, s3) -> None:
    # No bucket at all: S3 answers NoSuchBucket.
    response = client.get("/")
    assert response.status_code == 503
    html = response.text
    assert 'data-state="error"' in html
    assert f'data-field="bucket">{BUCKET}<' in html
    assert 'data-field="error_code">NoSuchBucket<' in html
    assert "Check reports.bucket" in html
    assert "Traceback" not in html

    api = client.get("/api/summary")
    assert api.status_code == 503
    problem = api.json()["problem"]
    assert (problem["bucket"], problem["key"], problem["code"]) == (
        BUCKET,
        f"{PREFIX}/latest/summary.json",
        "NoSuchBucket",
    )


def test_unreachable_endpoint_is_a_clear_message(monkeypatch, tmp_path) -> None:
    config = write_config(tmp_path / "fleet.yaml")
    monkeypatch.setenv("PATCH_COMPLIANCE_CONFIG", str(config))
    from tests.ui.conftest import CONN_ID, free_port

    dead = f"http://127.0.0.1:{free_port()}"
    conn = {"conn_type": "aws", "extra": {"endpoint_url": dead, "region_name": "us-east-1"}}
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(conn))
    response = TestClient(create_app()).get("/")
    assert response.status_code == 503
    assert 'data-field="error_code">EndpointConnectionError<' in response.text
    assert "AWS_ENDPOINT_URL" in response.text


def test_access_denied_explains_the_permissions() -> None:
    """GetObject answers 403 AccessDenied, also for a missing key when s3:ListBucket is not granted."""
    s3 = boto3.client("s3", region_name="us-east-1")
    stub = Stubber(s3)
    stub.add_client_error(
        "get_object", service_error_code="AccessDenied", service_message="Access Denied", http_status_code=403
    )
    stub.activate()
    app = create_app(lambda: ReportStore(s3, BUCKET, PREFIX, "aws_reports"))
    response = TestClient(app).get("/")
    assert response.status_code == 503
    text = unescape(response.text)
    assert 'data-field="error_code">AccessDenied<' in text
    assert f"s3:GetObject on arn:aws:s3:::{BUCKET}/{PREFIX}/latest/summary.json" in text
    assert "Airflow connection 'aws_reports'" in text


def test_summary_breaking_the_contract_names_the_field(client: TestClient, s3) -> None:
    s3.create_bucket(Bucket=BUCKET)
    summary = make_summary()
    del summary["totals"]["sla_breaches"]
    summary["by_ou"][0]["compliant_pct"] = 140
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/latest/summary.json", Body=json.dumps(summary).encode())
    response = client.get("/")
    assert response.status_code == 503
    assert "InvalidSummary" in response.text
    assert "totals.sla_breaches: Field required" in response.text
    assert "by_ou.0.compliant_pct" in response.text

    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/latest/summary.json", Body=b"{not json")
    assert "not valid JSON" in client.get("/api/summary").json()["problem"]["message"]


def test_bad_config_is_shown_not_raised(monkeypatch, tmp_path) -> None:
    bad = tmp_path / "fleet.yaml"
    bad.write_text(json.dumps({"regions": ["us-east-1"], "reports": {"bucket": "Not_A_Bucket"}}))
    monkeypatch.setenv("PATCH_COMPLIANCE_CONFIG", str(bad))
    response = TestClient(create_app()).get("/")
    assert response.status_code == 503
    assert 'data-field="error_code">ConfigError<' in response.text
    assert "reports.bucket" in response.text


def test_nothing_is_read_until_a_request_arrives() -> None:
    calls: list[int] = []

    def factory() -> ReportStore:
        calls.append(1)
        raise AssertionError("must not be called while building the app")

    app = create_app(factory)
    assert calls == []
    assert TestClient(app).get("/static/page.css").status_code == 200
    assert calls == []


def test_empty_run_id_in_the_trend_is_a_contract_error(client: TestClient, s3) -> None:
    s3.create_bucket(Bucket=BUCKET)
    summary = make_summary()
    summary["trend"][2]["run_id"] = ""
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/latest/summary.json", Body=json.dumps(summary).encode())
    problem = client.get("/api/summary").json()["problem"]
    assert problem["code"] == "InvalidSummary"
    assert "trend.2.run_id" in problem["message"]


def test_empty_fleet_first_run_renders_without_figures_to_divide(client: TestClient, s3) -> None:
    """No nodes yet (compliant_pct null), no OUs, no history, no Security Hub: the page still renders, and the
    latest run is listed with its report even though the trend is empty."""
    s3.create_bucket(Bucket=BUCKET)
    summary = make_summary()
    zero = dict.fromkeys(("nodes", "compliant", "non_compliant", "unknown", "unreachable_targets", "sla_breaches"), 0)
    summary["totals"] = {**zero, "targets": 0, "compliant_pct": None, "coverage": {}, "severity": {}}
    summary.update(by_ou=[], worst_accounts=[], trend=[], security_hub=None)
    publish(s3, summary)
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/runs/{safe_run_id(LATEST_RUN)}/report.html", Body=b"<p>r</p>")
    response = client.get("/")
    assert response.status_code == 200, response.text
    html = response.text
    assert metric(html, "compliant_pct") == "n/a"
    assert metric(html, "coverage_gaps") == "0"
    assert "No OU data in this run." in html and "No earlier runs yet." in html
    assert f'data-run-report="{LATEST_RUN}" href="/runs/{safe_run_id(LATEST_RUN)}/report"' in html
    assert "Security Hub (this run)" not in html


class _DagAuth:
    """Auth manager stand-in: may the user read the runs of this DAG (``is_authorized_dag``, as Airflow asks)."""

    def __init__(self, allowed: set[str]) -> None:
        self.allowed = allowed
        self.asked: list[tuple[str, str, str]] = []

    def is_authorized_dag(self, *, method, user, access_entity=None, details=None) -> bool:
        self.asked.append((method, access_entity.value, details.id))
        return details.id in self.allowed


@pytest.mark.parametrize(
    ("allowed", "expected"),
    [
        (set(), 403),
        ({"patch_compliance_scan"}, 403),  # the page also shows the collect DAG's runs
        ({"patch_compliance_scan", "patch_compliance_collect"}, 200),
    ],
)
def test_every_data_route_needs_read_access_to_both_dags(s3, allowed, expected) -> None:
    from airflow.api_fastapi.core_api import security

    from include.patch_compliance.ui.access import fleet_access

    s3.create_bucket(Bucket=BUCKET)
    publish(s3, make_summary())
    app = create_app(lambda: ReportStore(s3, BUCKET, PREFIX, "aws"), dependencies=fleet_access())
    app.dependency_overrides[security.get_user] = lambda: object()
    auth = _DagAuth(allowed)
    with (
        mock.patch.object(security, "get_auth_manager", return_value=auth),
        mock.patch.object(security.DagModel, "get_team_name", return_value=None),
    ):
        client = TestClient(app)
        paths = ("/", "/?compliance=NON_COMPLIANT&page=1", "/cves", "/cves?q=CVE-2024-3094")
        for path in (*paths, "/api/summary", f"/runs/{safe_run_id(LATEST_RUN)}/report"):
            assert client.get(path).status_code == expected, path
        assert client.get("/static/page.css").status_code == 200  # no data: public
    assert {a[:2] for a in auth.asked} == {("GET", "RUN")}


def test_the_page_lists_unreachable_and_skipped_accounts(client: TestClient, s3) -> None:
    s3.create_bucket(Bucket=BUCKET)
    summary = make_summary()
    summary["unreachable"] = [
        {"account_id": "555555555555", "account_name": "no-role", "ou_path": "Root/Prod", "region": "eu-west-1",
         "wave": "rest", "stage": "assume_role", "error_code": "AccessDenied"},
    ]  # fmt: skip
    summary["skipped"] = [
        {"account_id": "777777777777", "account_name": "old", "ou_path": "Root/Sandbox", "reason": "SUSPENDED"}
    ]
    publish(s3, summary)
    html = client.get("/").text
    table = html.split('data-table="unreachable"', 1)[1].split("</table>", 1)[0]
    for text in ("555555555555", "no-role", "eu-west-1", "assume_role", "AccessDenied"):
        assert text in table
    skipped = html.split('data-table="skipped"', 1)[1].split("</table>", 1)[0]
    assert "777777777777" in skipped and "SUSPENDED" in skipped
