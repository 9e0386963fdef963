"""Browser test: a real ``airflow api-server`` loads the plugin and reads summary.json from S3 (the project's
emulator, ``sandbox.testing.running_sandbox``) through the Airflow AWS connection; headless Chromium shows the
figures of summary.json. Plus the extra links Airflow serves after a mapped task ran. Screenshots go to
``artifacts/`` (gitignored). How to run: tests/ui/README.md."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from include.patch_compliance.orchestration.links import (
    S3ReportLink,
    SecurityHubFindingsLink,
    SsmRunCommandLink,
    link_url,
    s3_report_fields,
    securityhub_fields,
    ssm_command_fields,
)
from include.patch_compliance.storage import safe_run_id
from tests.ui.airflow_server import (
    REPO,
    ApiServer,
    api_get,
    chromium_missing_reason,
    extra_link_buttons,
    full_page_screenshot,
    headless_chromium,
    latest_run_id,
    mapped_task_labels,
    running_api_server,
    wait_for,
)
from tests.ui.conftest import CONN_ID, write_config
from tests.ui.summary_fixture import BUCKET, LATEST_RUN, make_summary, publish, report_html

_MISSING = chromium_missing_reason()
pytestmark = [pytest.mark.browser, pytest.mark.skipif(_MISSING is not None, reason=_MISSING or "")]

ARTIFACTS = REPO / "artifacts"
PAGE = "/patch-compliance/"


@pytest.fixture(scope="module")
def emulator() -> Iterator:
    from sandbox.testing import running_sandbox

    with running_sandbox() as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def published(emulator) -> dict:
    s3 = emulator.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    summary = make_summary()
    publish(s3, summary)
    return summary


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_config(tmp_path_factory.mktemp("ui-config") / "fleet.yaml")


@pytest.fixture(scope="module")
def server(emulator, published: dict, config_file: Path) -> Iterator[ApiServer]:
    conn = {"conn_type": "aws", "extra": {"endpoint_url": emulator.url, "region_name": "us-east-1"}}
    extra_env = {"PATCH_COMPLIANCE_CONFIG": str(config_file), f"AIRFLOW_CONN_{CONN_ID.upper()}": json.dumps(conn)}
    with running_api_server(
        extra_env=extra_env, dags_folder=Path(__file__).parent / "browser_dags", while_starting=run_probe_dag
    ) as srv:
        yield srv


def run_probe_dag(server: ApiServer) -> None:
    """One run of the mapped probe DAG (in-process executor of ``dags test``, which first syncs the DAG bundle to
    the DB: docs/aws-behaviours.md §24); it runs while the api-server boots."""
    server.airflow("dags", "test", "pc_links_probe", "2026-11-29T00:00:00+00:00")


@pytest.fixture(scope="module")
def browser() -> Iterator:
    with headless_chromium() as driver:
        yield driver


def _metrics(browser) -> dict[str, str]:
    from selenium.webdriver.common.by import By

    return {
        el.get_attribute("data-metric"): el.text.strip()
        for el in browser.find_elements(By.CSS_SELECTOR, "[data-metric]")
    }


def test_page_shows_the_figures_of_summary_json(server: ApiServer, browser, published: dict) -> None:
    from selenium.webdriver.common.by import By

    browser.get(server.url(PAGE))
    wait_for(browser, "[data-state='report']")
    totals = published["totals"]
    assert _metrics(browser) == {
        "nodes": f"{totals['nodes']:,}",
        # the fixture has no managed/unmanaged split: the UNMANAGED coverage count gives it
        "managed": f"{totals['nodes'] - totals['coverage']['UNMANAGED']:,}",
        "unmanaged": f"{totals['coverage']['UNMANAGED']:,}",
        "compliant_pct": f"{totals['compliant_pct']:.1f}%",
        "compliant": f"{totals['compliant']:,}",
        "non_compliant": f"{totals['non_compliant']:,}",
        "unknown": f"{totals['unknown']:,}",
        "coverage_gaps": "78",  # STALE + NOT_SCANNED + OFFLINE + SCAN_FAILED + UNMANAGED nodes of the fixture
        "sla_breaches": f"{totals['sla_breaches']:,}",
        "unreachable_targets": f"{totals['unreachable_targets']:,}",
    }
    assert browser.find_element(By.CSS_SELECTOR, "[data-field='run_id']").text == published["run_id"]
    # The OU chart has one bar per OU, labelled with its path, in the rendered SVG.
    labels = [el.text for el in browser.find_elements(By.CSS_SELECTOR, "svg[aria-label='Compliance by OU'] .bar-label")]
    assert sorted(labels) == sorted(ou["ou_path"] for ou in published["by_ou"])
    rows = browser.find_elements(By.CSS_SELECTOR, "table[data-table='worst_accounts'] tbody tr")
    assert len(rows) == len(published["worst_accounts"])
    # The page's CSS loaded through the plugin's mount (a card has a white background, not the default transparent).
    card = browser.find_element(By.CSS_SELECTOR, ".card")
    assert card.value_of_css_property("background-color") in {"rgba(255, 255, 255, 1)", "rgb(255, 255, 255)"}
    full_page_screenshot(browser, ARTIFACTS / "patch_compliance_page.png")

    # The full report of the latest run opens from the page, streamed from S3 by the plugin.
    browser.find_element(By.CSS_SELECTOR, "[data-link='latest-report']").click()
    wait_for(browser, "#run")
    assert browser.find_element(By.ID, "run").text == LATEST_RUN
    assert browser.current_url == server.url(f"/patch-compliance/runs/{safe_run_id(LATEST_RUN)}/report")
    browser.set_window_size(1440, 1000)


def test_page_is_in_the_airflow_nav(server: ApiServer, browser) -> None:
    """A user opens Airflow, clicks the top-level "Compliance" nav entry and gets the page in an iframe."""
    from selenium.webdriver.common.by import By

    browser.set_window_size(1440, 900)
    browser.get(server.url("/"))
    entry = wait_for(browser, "a[href$='/plugin/patch-compliance']", timeout=60)
    assert entry.text.strip() == "Compliance"
    icon = entry.find_element(By.TAG_NAME, "img")
    assert icon.get_attribute("src").endswith("/patch-compliance/static/icon.svg")
    from selenium.webdriver.support.ui import WebDriverWait

    # The icon is served by the plugin app (behind the login): it loads (images load asynchronously).
    WebDriverWait(browser, 30).until(lambda d: d.execute_script("return arguments[0].naturalWidth", icon) > 0)
    entry.click()
    frame = wait_for(browser, "iframe", timeout=60)
    assert frame.get_attribute("src").endswith(PAGE)
    browser.switch_to.frame(frame)
    try:
        wait_for(browser, "[data-state='report']")
    finally:
        browser.switch_to.default_content()
    browser.save_screenshot(str(ARTIFACTS / "patch_compliance_in_airflow.png"))


def test_json_endpoint_and_report_through_the_api_server(server: ApiServer, published: dict) -> None:
    response = requests.get(server.url("/patch-compliance/api/summary"), timeout=30)
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "summary": published}
    report = requests.get(
        server.url(f"/patch-compliance/runs/{safe_run_id(published['trend'][0]['run_id'])}/report"), timeout=30
    )
    assert report.content == report_html(published["trend"][0]["run_id"])


def test_unreadable_bucket_in_the_browser(server: ApiServer, browser, config_file: Path) -> None:
    from selenium.webdriver.common.by import By

    original = config_file.read_text()
    write_config(config_file, bucket="pc-reports-missing")  # the page reads the config per request
    try:
        browser.get(server.url(PAGE))
        wait_for(browser, "[data-state='error']")
        assert browser.find_element(By.CSS_SELECTOR, "[data-field='bucket']").text == "pc-reports-missing"
        assert browser.find_element(By.CSS_SELECTOR, "[data-field='error_code']").text == "NoSuchBucket"
        full_page_screenshot(browser, ARTIFACTS / "patch_compliance_error.png")
        browser.set_window_size(1440, 1000)
    finally:
        config_file.write_text(original)


def test_extra_links_and_map_labels_after_a_mapped_task_ran(server: ApiServer, browser) -> None:
    """The worker evaluates our links at the end of each mapped task instance and pushes them as
    ``_link_<ClassName>``; the api-server serves them per map index and the UI shows them on the Details tab."""
    run_id = latest_run_id(server, "pc_links_probe")
    from tests.ui.browser_dags.pc_links_probe import COMMANDS

    expected = {
        region: {
            "Report (S3)": link_url(
                S3ReportLink(), region, s3_report_fields("pc-reports-test", f"patch-compliance/runs/{region}")
            ),
            "SSM Run Command": link_url(SsmRunCommandLink(), region, ssm_command_fields(region, COMMANDS[region])),
            "Security Hub findings": link_url(SecurityHubFindingsLink(), region, securityhub_fields()),
        }
        for region in COMMANDS
    }
    for map_index, region in enumerate(COMMANDS):
        path = f"/api/v2/dags/pc_links_probe/dagRuns/{run_id}/taskInstances/scan/links"
        assert api_get(server, path, map_index=map_index)["extra_links"] == expected[region]

    labels = mapped_task_labels(browser, server, "pc_links_probe", run_id, "scan", count=len(COMMANDS))
    assert sorted(labels) == sorted(COMMANDS)
    shown = extra_link_buttons(browser, server, "pc_links_probe", run_id, "scan", map_index=1, count=3)
    assert shown == expected[list(COMMANDS)[1]]
    browser.save_screenshot(str(ARTIFACTS / "extra_links_in_airflow.png"))

    # The page's "latest run" link form (/dags/<dag>/runs/<url-encoded run id>) opens that run in the 3.3 UI.
    from urllib.parse import quote

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server.url(f"/dags/pc_links_probe/runs/{quote(run_id, safe='')}"))
    WebDriverWait(browser, 60).until(lambda d: run_id in d.find_element(By.TAG_NAME, "body").text)
