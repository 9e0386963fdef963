"""Browser test on a real run: `airflow dags test patch_compliance_scan` against the emulated organization, then
the api-server shows the run's mapped shard tasks labelled OU / accounts / regions (the labels the plan made),
and the Patch compliance page shows exactly the figures of the summary.json that run published."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.ui.airflow_server import (
    REPO,
    api_get,
    chromium_missing_reason,
    full_page_screenshot,
    headless_chromium,
    latest_run_id,
    mapped_task_labels,
    running_api_server,
    wait_for,
)

_MISSING = chromium_missing_reason()
pytestmark = [pytest.mark.browser, pytest.mark.skipif(_MISSING is not None, reason=_MISSING or "")]
DAG_ID = "patch_compliance_scan"
BUCKET = "pc-browser-run"


@pytest.fixture(scope="module")
def scanned(tmp_path_factory):
    from sandbox.testing import running_sandbox

    config = yaml.safe_load((REPO / "sandbox" / "fleet-config.yaml").read_text())
    config["reports"] = {"bucket": BUCKET, "prefix": "pc"}
    config["scan"]["wait"] = {"poke_interval_seconds": 5, "timeout_seconds": 900, "deferrable": True}
    path = tmp_path_factory.mktemp("cfg") / "fleet.yaml"
    path.write_text(yaml.safe_dump(config))
    with running_sandbox(profile="small", seed=7, time_scale=600) as sb:
        sb.client("s3").create_bucket(Bucket=BUCKET)
        env = {
            "PATCH_COMPLIANCE_CONFIG": str(path),
            "AWS_ENDPOINT_URL": sb.url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AIRFLOW_CONN_AWS_DEFAULT": json.dumps({"conn_type": "aws", "extra": {"region_name": "us-east-1"}}),
        }
        runs = []
        with running_api_server(
            extra_env=env,
            dags_folder=REPO / "dags",
            while_starting=lambda server: runs.append(server.airflow("dags", "test", DAG_ID, timeout=900)),
        ) as server:
            summary = json.loads(
                sb.client("s3").get_object(Bucket=BUCKET, Key=f"pc/latest/{DAG_ID}/summary.json")["Body"].read()
            )
            yield server, summary


def test_grid_shows_the_shard_labels_of_the_plan(scanned):
    server, _ = scanned
    run_id = latest_run_id(server, DAG_ID)
    plan = api_get(server, f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/discover/xcomEntries/return_value")
    value = plan["value"] if isinstance(plan["value"], dict) else json.loads(plan["value"])
    with headless_chromium() as driver:
        for wave, refs in value["waves"].items():
            if not refs:
                continue
            task_id = f"wave_{wave}.shards.scan"
            labels = mapped_task_labels(driver, server, DAG_ID, run_id, task_id, count=len(refs))
            assert sorted(labels) == sorted(ref["label"] for ref in refs)
            assert all(" / " in label for label in labels)  # OU / account range / regions
        full_page_screenshot(driver, REPO / "artifacts" / "scan_run_mapped_labels.png")


def test_page_shows_the_published_run(scanned):
    server, summary = scanned
    totals = summary["totals"]
    with headless_chromium() as driver:
        driver.get(server.url("/patch-compliance/"))
        wait_for(driver, "[data-state='report']")
        page = driver.page_source
        full_page_screenshot(driver, REPO / "artifacts" / "scan_run_page.png")
        # the run's own HTML report (published by the report step) opens from the page with its charts
        from selenium.webdriver.common.by import By

        driver.find_element(By.CSS_SELECTOR, "[data-link='latest-report']").click()
        wait_for(driver, "svg")
        charts = driver.find_elements(By.CSS_SELECTOR, "svg")
        report_text = driver.find_element(By.TAG_NAME, "body").text
        full_page_screenshot(driver, REPO / "artifacts" / "scan_run_report.png")
    assert len(charts) >= 4
    assert summary["run_id"] in report_text
    assert summary["run_id"] in page
    assert f"{totals['nodes']:,}" in page
    assert f"{totals['compliant_pct']:.1f}%" in page
    for ou in summary["by_ou"]:
        assert ou["ou_path"] in page


def test_each_step_of_the_real_run_links_to_its_console(scanned):
    server, summary = scanned
    run_id = latest_run_id(server, DAG_ID)
    base = f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances"
    for task_id in ("wave_workloads.shards.scan", "wave_workloads.shards.wait"):
        links = api_get(server, f"{base}/{task_id}/links", map_index=0)["extra_links"]
        assert list(links) == ["SSM Run Command"]
        assert (
            links["SSM Run Command"].startswith("https://")
            and "/systems-manager/run-command/" in links["SSM Run Command"]
        )
    report = api_get(server, f"{base}/report/links")["extra_links"]
    assert list(report) == ["Report (S3)"] and BUCKET in report["Report (S3)"]
    findings = api_get(server, f"{base}/security_hub/links")["extra_links"]
    assert list(findings) == ["Security Hub findings"] and "securityhub" in findings["Security Hub findings"]
