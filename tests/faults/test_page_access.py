"""Probe: the page and its data routes need read access to the DAGs whose data they show (issue 10 item 11).

A real ``airflow api-server`` with the plugin, an auth manager that denies the scan and collect DAGs to one viewer
(``tests/faults/auth_manager.py``), and tokens from the simple auth manager's login: the viewer without DAG access
gets 403 on every data route, an admin gets the page, nobody gets data without a login.
"""

from __future__ import annotations

import json

import pytest
import requests

from tests.faults.auth_manager import OUTSIDER
from tests.ui.airflow_server import running_api_server

PASSWORD = "probe-password"
DATA_ROUTES = ("/patch-compliance/", "/patch-compliance/api/summary", "/patch-compliance/runs/manual__x/report")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    passwords = tmp_path_factory.mktemp("auth") / "passwords.json"
    passwords.write_text(json.dumps({"admin": PASSWORD, OUTSIDER: PASSWORD, "reader": PASSWORD}))
    env = {
        "AIRFLOW__CORE__AUTH_MANAGER": "tests.faults.auth_manager.DagDenyingAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"admin:admin,{OUTSIDER}:viewer,reader:viewer",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
    }
    with running_api_server(extra_env=env) as api:
        yield api


def _token(server, user: str) -> str:
    answer = requests.post(server.url("/auth/token"), json={"username": user, "password": PASSWORD}, timeout=30)
    answer.raise_for_status()
    return answer.json()["access_token"]


def _get(server, path: str, user: str | None) -> requests.Response:
    headers = {"Authorization": f"Bearer {_token(server, user)}"} if user else {}
    return requests.get(server.url(path), headers=headers, timeout=60)


def test_a_viewer_without_dag_access_gets_403_on_every_data_route(server):
    for path in DATA_ROUTES:
        assert _get(server, path, OUTSIDER).status_code == 403, path
        assert _get(server, path, None).status_code == 401, path
        # a viewer who may read the DAGs, and an admin, get past the check (the page then reports that no
        # config is set, which is not an authorization answer)
        for user in ("reader", "admin"):
            assert _get(server, path, user).status_code not in (401, 403), (path, user)
    # the stylesheet and the nav icon hold no data and stay public
    assert requests.get(server.url("/patch-compliance/static/page.css"), timeout=30).status_code == 200
