"""Fixtures for the UI tests: an S3 endpoint (moto's ThreadedMotoServer on a free port, reset per test), a config
file pointing at it, and an Airflow AWS connection (env var) whose endpoint_url is that server."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer

from tests.ui.summary_fixture import BUCKET, PREFIX

CONN_ID = "pc_ui_test"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3(s3_endpoint: str):
    requests.post(f"{s3_endpoint}/moto-api/reset", timeout=10).raise_for_status()
    return boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")


def write_config(path: Path, *, bucket: str = BUCKET, prefix: str = PREFIX, conn_id: str = CONN_ID) -> Path:
    path.write_text(
        json.dumps(  # JSON is YAML; the config loader reads either
            {
                "regions": ["us-east-1"],
                "access": {"aws_conn_id": conn_id},
                "reports": {"bucket": bucket, "prefix": prefix},
            }
        )
    )
    return path


@pytest.fixture
def configured(s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """PATCH_COMPLIANCE_CONFIG + AIRFLOW_CONN_<ID> so the app's real store_from_config() reaches the moto server."""
    config = write_config(tmp_path / "fleet.yaml")
    monkeypatch.setenv("PATCH_COMPLIANCE_CONFIG", str(config))
    conn = {"conn_type": "aws", "extra": {"endpoint_url": s3_endpoint, "region_name": "us-east-1"}}
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(conn))
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    return config


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """When a browser test fails, keep what the browser showed: artifacts/failures/<test>.png and .html."""
    outcome = yield
    report = outcome.get_result()
    driver = getattr(item, "funcargs", {}).get("browser")
    if report.failed and driver is not None:
        from tests.ui.airflow_server import REPO

        folder = REPO / "artifacts" / "failures"
        folder.mkdir(parents=True, exist_ok=True)
        try:
            driver.save_screenshot(str(folder / f"{item.name}.png"))
            (folder / f"{item.name}.html").write_text(driver.page_source)
            report.sections.append(("browser", f"page {driver.current_url} saved to {folder}/{item.name}.*"))
        except Exception as exc:  # noqa: BLE001 - a dead browser must not hide the test's own failure
            report.sections.append(("browser", f"could not capture the page: {exc}"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: starts airflow api-server and headless Chromium (tests/ui/README.md)")
