"""Browser test of the drill-down: a real ``airflow api-server`` with the plugin reads a run the real producer
published to the emulator's S3 (``fleet_fixture``); headless Chromium applies a filter through the page's form,
opens a CVE from a node row, and every number shown is checked against the published Parquet tables. Screenshots
(artifacts/): ``drilldown_filtered_1400.png``, ``drilldown_filtered_900.png``, ``drilldown_cve.png``,
``drilldown_cve_index.png``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pyarrow.compute as pc
import pytest

from include.patch_compliance.aws import AwsContext
from tests.ui.airflow_server import (
    REPO,
    ApiServer,
    chromium_missing_reason,
    full_page_screenshot,
    headless_chromium,
    running_api_server,
    wait_for,
)
from tests.ui.conftest import CONN_ID, write_config
from tests.ui.fleet_fixture import KERNEL_CVE, add_tag_columns, publish_fleet, read_table
from tests.ui.summary_fixture import BUCKET

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
    ctx = AwsContext(session=boto3.Session(region_name="us-east-1"), endpoint_url=emulator.url)
    summary = publish_fleet(ctx)
    nodes = add_tag_columns(s3, summary)
    return {"summary": summary, "nodes": nodes, "patches": read_table(s3, summary, "patches")}


@pytest.fixture(scope="module")
def server(emulator, published: dict, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    config = write_config(tmp_path_factory.mktemp("ui-config") / "fleet.yaml")
    conn = {"conn_type": "aws", "extra": {"endpoint_url": emulator.url, "region_name": "us-east-1"}}
    extra_env = {"PATCH_COMPLIANCE_CONFIG": str(config), f"AIRFLOW_CONN_{CONN_ID.upper()}": json.dumps(conn)}
    with running_api_server(extra_env=extra_env, dags_folder=Path(__file__).parent / "browser_dags") as srv:
        yield srv


@pytest.fixture(scope="module")
def browser() -> Iterator:
    with headless_chromium(width=1400, height=1000) as driver:
        yield driver


def _texts(browser, css: str, attribute: str | None = None) -> list[str]:
    from selenium.webdriver.common.by import By

    found = browser.find_elements(By.CSS_SELECTOR, css)
    return [el.get_attribute(attribute) if attribute else el.text.strip() for el in found]


def test_a_filter_applied_in_the_browser_shows_the_published_nodes(server: ApiServer, browser, published) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    nodes, patches = published["nodes"], published["patches"]
    browser.set_window_size(1400, 1000)
    browser.get(server.url(PAGE + "?tag_Team=payments"))
    wait_for(browser, "form[data-form='filters']")
    Select(browser.find_element(By.CSS_SELECTOR, "select[data-filter='severity']")).select_by_value("CRITICAL")
    browser.find_element(By.CSS_SELECTOR, "form[data-form='filters'] button[type='submit']").click()
    WebDriverWait(browser, 30).until(lambda d: "severity=CRITICAL" in d.current_url)
    wait_for(browser, "table[data-table='nodes'] tbody tr")

    critical = {p["instance_id"] for p in patches.to_pylist() if p["severity"] == "CRITICAL"}
    team = nodes.filter(pc.equal(nodes["tag_Team"], "payments"))["instance_id"].to_pylist()
    expected = [i for i in team if i in critical]  # file order, both filters
    assert expected
    assert _texts(browser, "table[data-table='nodes'] tbody tr", "data-node") == expected
    assert _texts(browser, "[data-metric='nodes_matching']") == [str(len(expected))]
    assert "tag_Team=payments" in browser.current_url  # the tag filter was kept by the form
    full_page_screenshot(browser, ARTIFACTS / "drilldown_filtered_1400.png")

    # At 900 px the page fits the window: wide tables scroll inside their card, nothing pushes the page wider.
    browser.set_window_size(900, 1000)
    browser.refresh()
    wait_for(browser, "table[data-table='nodes'] tbody tr")
    WebDriverWait(browser, 10).until(lambda d: d.execute_script("return window.innerWidth") <= 900)
    overflow = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than a 900px window"
    height = browser.execute_script("return Math.ceil(document.documentElement.scrollHeight)")
    browser.set_window_size(900, min(height + 140, 6000))
    browser.save_screenshot(str(ARTIFACTS / "drilldown_filtered_900.png"))


def test_a_cve_opened_from_a_node_row_lists_its_exposed_nodes(server: ApiServer, browser, published) -> None:
    from selenium.webdriver.common.by import By

    patches = published["patches"].to_pylist()
    browser.set_window_size(1400, 1000)
    browser.get(server.url(PAGE + "?severity=CRITICAL"))
    link = wait_for(browser, f"table[data-table='nodes'] a[data-cve='{KERNEL_CVE}']")
    link.click()
    wait_for(browser, "[data-state='cve']")
    exposed = {p["instance_id"] for p in patches if KERNEL_CVE in (p["cve_ids"] or [])}
    accounts = {p["account_id"] for p in patches if p["instance_id"] in exposed}
    assert _texts(browser, "[data-metric='cve_nodes']") == [str(len(exposed))]
    assert _texts(browser, "[data-metric='cve_accounts']") == [str(len(accounts))]
    assert sorted(_texts(browser, "table[data-table='exposed'] tbody tr", "data-node")) == sorted(exposed)
    assert browser.find_element(By.TAG_NAME, "h1").text == KERNEL_CVE
    full_page_screenshot(browser, ARTIFACTS / "drilldown_cve.png")

    browser.set_window_size(1400, 1000)
    browser.find_element(By.CSS_SELECTOR, "[data-link='cve-index']").click()
    wait_for(browser, "table[data-table='cve_index']")
    counts = dict(
        zip(
            _texts(browser, "tr[data-cve-row]", "data-cve-row"),
            _texts(browser, "tr[data-cve-row] [data-field='nodes']"),
            strict=True,
        )
    )
    for cve, shown in counts.items():
        assert shown == str(len({p["instance_id"] for p in patches if cve in (p["cve_ids"] or [])})), cve
    full_page_screenshot(browser, ARTIFACTS / "drilldown_cve_index.png")
