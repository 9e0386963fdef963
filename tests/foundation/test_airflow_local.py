"""`make airflow` (scripts/airflow_local.py): the UI port comes from AIRFLOW_PORT, the Execution API URL follows it
(tasks would otherwise call port 8080), and the login it prints is the one Airflow's SimpleAuthManager reads."""

from __future__ import annotations

import re
import stat
from pathlib import Path

from scripts.airflow_local import USER, ui_env

ROOT = Path(__file__).resolve().parents[2]


def test_the_execution_api_url_follows_the_ui_port(tmp_path: Path) -> None:
    env, _, _ = ui_env(8793, tmp_path)
    assert env["AIRFLOW__API__PORT"] == "8793"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://localhost:8793/execution/"
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"] == "False"


def test_the_login_is_generated_once_and_is_what_airflow_reads(tmp_path: Path) -> None:
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

    env, password, passwords = ui_env(8080, tmp_path)
    again, same, _ = ui_env(9090, tmp_path)
    assert same == password and len(password) >= 12
    assert stat.S_IMODE(passwords.stat().st_mode) == 0o600
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] == str(passwords)
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == f"{USER}:admin"
    with passwords.open() as stream:
        assert SimpleAuthManager._get_passwords(stream) == {USER: password}


def test_make_airflow_passes_airflow_port() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^AIRFLOW_PORT \?= 8080$", makefile, re.M)
    assert "scripts/airflow_local.py --port $(SANDBOX_PORT) --ui-port $(AIRFLOW_PORT)" in makefile
