"""Reusable helpers for browser tests: a throwaway ``airflow api-server`` and a headless Chromium.

    from tests.ui.airflow_server import headless_chromium, latest_run_id, mapped_task_labels, running_api_server

    with running_api_server(extra_env={...}, dags_folder=REPO / "dags") as server:
        server.airflow("dags", "test", "my_dag", "2026-11-29T00:00:00+00:00")  # any CLI command, same home/DB
        run_id = latest_run_id(server, "my_dag")
        with headless_chromium() as browser:
            labels = mapped_task_labels(browser, server, "my_dag", run_id, "group.task", count=3)

The server runs in its own temp AIRFLOW_HOME with a migrated SQLite DB (a copy of one migrated once per Airflow
version), loads ``<repo>/plugins``, puts the repo on PYTHONPATH, uses SimpleAuthManager with every user an admin
(no login needed), and is stopped (whole process group) when the block exits. Failures to start raise with the tail
of the server log.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[2]
AIRFLOW_BIN = Path(os.environ.get("PC_AIRFLOW_BIN", REPO / ".venv" / "bin" / "airflow"))
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# Flags for a quiet, offline, reproducible headless browser in CI containers.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--force-color-profile=srgb",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ApiServer:
    base_url: str
    home: Path
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen

    def url(self, path: str = "/") -> str:
        return f"{self.base_url}{path if path.startswith('/') else '/' + path}"

    def airflow(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """Run an ``airflow`` CLI command against this server's home and DB; raises with its output on failure."""
        return _run([str(AIRFLOW_BIN), *args], self.env, timeout)

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _run(cmd: list[str], env: Mapping[str, str], timeout: float) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, env=dict(env), capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
        )
    return result


def airflow_env(home: Path, port: int, *, dags_folder: Path, extra_env: Mapping[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")])),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
            # Workers of a scheduler started against this home must reach this api-server (docs/aws-behaviours.md §24).
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": "browser-test-secret-not-for-production-0123456789",
            "AIRFLOW__CORE__FERNET_KEY": "",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        }
    )
    env.update(extra_env or {})
    return env


@contextmanager
def running_api_server(
    *,
    extra_env: Mapping[str, str] | None = None,
    dags_folder: Path | None = None,
    startup_timeout: float = 180,
    keep_home: bool = False,
    while_starting: Callable[[ApiServer], None] | None = None,
) -> Iterator[ApiServer]:
    """Migrate a fresh SQLite DB and run ``airflow api-server`` on a free port until the block exits.

    ``extra_env`` is added last (connections as ``AIRFLOW_CONN_*``, ``PATCH_COMPLIANCE_CONFIG``, ...).
    ``dags_folder`` defaults to an empty folder, so nothing but the plugin is loaded.
    ``while_starting(server)`` runs while the api-server boots (e.g. ``server.airflow("dags", "test", ...)``),
    which overlaps two slow process start-ups.
    """
    home = Path(tempfile.mkdtemp(prefix="pc-api-server-"))
    port = free_port()
    dags = dags_folder or home / "dags"
    dags.mkdir(parents=True, exist_ok=True)
    env = airflow_env(home, port, dags_folder=dags, extra_env=extra_env)
    log_path = home / "api-server.log"
    _migrated_db(env, home / "airflow.db")
    with log_path.open("w") as log:
        process = subprocess.Popen(  # own session: stop() ends uvicorn and its worker together
            [str(AIRFLOW_BIN), "api-server", "--port", str(port), "--host", "127.0.0.1"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = ApiServer(f"http://127.0.0.1:{port}", home, env, log_path, process)
    try:
        if while_starting is not None:
            while_starting(server)
        _wait_healthy(server, startup_timeout)
        yield server
    finally:
        _stop(process)
        if not keep_home:
            shutil.rmtree(home, ignore_errors=True)


def _migrated_db(env: Mapping[str, str], target: Path) -> None:
    """A freshly migrated SQLite DB at ``target``. ``airflow db migrate`` takes ~9 s here, so a migrated empty DB
    is kept per Airflow version in the temp dir and copied (written to a temp name, then renamed: never partial)."""
    from airflow import __version__ as airflow_version

    template = Path(tempfile.gettempdir()) / f"pc-airflow-{airflow_version}-migrated.db"
    if not template.exists():
        scratch = Path(tempfile.mkdtemp(prefix="pc-migrate-"))
        scratch_env = {**env, "AIRFLOW_HOME": str(scratch)}
        scratch_env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{scratch / 'airflow.db'}"
        _run([str(AIRFLOW_BIN), "db", "migrate"], scratch_env, timeout=300)
        partial = template.with_suffix(f".{os.getpid()}.tmp")
        shutil.copyfile(scratch / "airflow.db", partial)
        os.replace(partial, template)
        shutil.rmtree(scratch, ignore_errors=True)
    shutil.copyfile(template, target)


def _wait_healthy(server: ApiServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"airflow api-server exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            if requests.get(server.url("/api/v2/monitor/health"), timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"airflow api-server not healthy after {timeout:.0f}s:\n{server.log_tail()}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    except ProcessLookupError:
        pass


def chromium_missing_reason() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} not found: apt-get update && apt-get install -y chromium chromium-driver"
    if not CHROMEDRIVER.exists():
        return f"{CHROMEDRIVER} not found: apt-get install -y chromium-driver"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed: pip install -r requirements-dev.txt"
    return None


@contextmanager
def headless_chromium(*, width: int = 1440, height: int = 1000) -> Iterator[Any]:
    """A Selenium Chrome driver on Debian's chromium + chromedriver (no driver download), closed on exit."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="pc-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={width},{height}")
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for(driver: Any, css: str, *, timeout: float = 30) -> Any:
    """The first element matching ``css`` once it is present (React pages render after load)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css)))


def full_page_screenshot(driver: Any, path: Path) -> Path:
    """Resize the window to the whole document and save a PNG (``path``'s folder is created)."""
    width = driver.execute_script("return Math.ceil(document.documentElement.scrollWidth)")
    height = driver.execute_script("return Math.ceil(document.documentElement.scrollHeight)")
    # The window is larger than the viewport by the browser frame: add that difference back.
    frame = driver.execute_script("return window.outerHeight - window.innerHeight")
    driver.set_window_size(max(width, 1024), max(height, 600) + max(frame, 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(path))
    return path


def api_get(server: ApiServer, path: str, **params: Any) -> Any:
    """GET a public REST API path (``/api/v2/...``) as an admin; JSON answer, raises on HTTP errors."""
    token = requests.get(server.url("/auth/token"), timeout=30).json()["access_token"]
    response = requests.get(server.url(path), params=params, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    response.raise_for_status()
    return response.json()


def latest_run_id(server: ApiServer, dag_id: str) -> str:
    runs = api_get(server, f"/api/v2/dags/{dag_id}/dagRuns", order_by="-run_after", limit=1)["dag_runs"]
    if not runs:
        raise AssertionError(f"DAG {dag_id} has no runs; run `server.airflow('dags', 'test', {dag_id!r})` first")
    return runs[0]["dag_run_id"]


def mapped_task_labels(
    driver: Any, server: ApiServer, dag_id: str, run_id: str, task_id: str, *, count: int
) -> list[str]:
    """The labels (rendered ``map_index_template``) the Airflow 3.3 UI shows for a mapped task's instances, from
    its "Task Instances" list (``.../tasks/<task_id>/mapped``), once ``count`` rows have rendered."""
    css = "[data-testid='table-cell-rendered_map_index']"
    driver.get(server.url(f"/dags/{dag_id}/runs/{run_id}/tasks/{task_id}/mapped"))
    script = "return Array.from(document.querySelectorAll(arguments[0]), el => el.innerText.trim())"
    return _settled(driver, lambda d: d.execute_script(script, css), count)


def extra_link_buttons(
    driver: Any, server: ApiServer, dag_id: str, run_id: str, task_id: str, *, map_index: int = -1, count: int
) -> dict[str, str]:
    """{button text: href} of the "Extra Links" the UI shows on a task instance's Details tab."""
    suffix = f"/mapped/{map_index}" if map_index >= 0 else ""
    driver.get(server.url(f"/dags/{dag_id}/runs/{run_id}/tasks/{task_id}{suffix}/details"))
    # The 3.3 UI renders an "Extra Links" heading followed by one button-styled anchor per link.
    xpath = "//h2[normalize-space()='Extra Links']/following-sibling::*//a"
    script = """
        const found = document.evaluate(arguments[0], document, null, XPathResult.ORDERED_NODE_SNAPSHOT_TYPE, null);
        const links = {};
        for (let i = 0; i < found.snapshotLength; i++) {
            const el = found.snapshotItem(i);
            if (el.innerText.trim()) links[el.innerText.trim()] = el.href;
        }
        return links;
    """
    return _settled(driver, lambda d: d.execute_script(script, xpath), count)


def _settled(driver: Any, snapshot: Any, count: int) -> Any:
    """The first ``snapshot(driver)`` holding at least ``count`` entries, none of them blank, waiting up to a
    minute.

    The React UI re-renders its tables while it polls the API, so elements found one call earlier can be gone
    (StaleElementReferenceException); one script reads the whole DOM state between two renders instead. While it
    loads, the UI can show rows with these test ids and no text yet (seen: 10 blank cells for 2 mapped tasks):
    those are waited out."""
    from selenium.webdriver.support.ui import WebDriverWait

    seen: list[Any] = []

    def ready(d: Any) -> bool:
        seen[:] = [snapshot(d)]
        return len(seen[0]) >= count and all(seen[0])

    WebDriverWait(driver, 60).until(ready)
    return seen[0]
