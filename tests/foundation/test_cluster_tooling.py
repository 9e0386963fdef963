"""The pieces of `make cluster` that need no running cluster: the process ledger (bring-down stops exactly what
was started, never a PID the kernel has reused), the settings from environment variables, the worker-name
callable, the skip reason when a Debian package is missing, and CI installing those packages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from scripts import services
from scripts.cluster import DEFAULTS, Settings, cluster_env, worker_env
from scripts.processes import Ledger, record
from scripts.workername import WORKER_NAME_ENV, get_name

ROOT = Path(__file__).resolve().parents[2]


def _sleeper() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)


def test_ledger_stops_what_it_recorded_and_is_gone_afterwards(tmp_path):
    procs = [_sleeper(), _sleeper()]
    ledger = Ledger(tmp_path / "cluster.json")
    for i, proc in enumerate(procs):
        ledger.add(record(f"p{i}", proc.pid))
    reread = Ledger(tmp_path / "cluster.json")
    assert [e.name for e in reread.running()] == ["p0", "p1"]
    lines = reread.stop_all()
    assert lines == [f"p1 (pid {procs[1].pid}) stopped", f"p0 (pid {procs[0].pid}) stopped"]
    assert all(p.wait(timeout=10) is not None for p in procs)
    assert not (tmp_path / "cluster.json").exists()


def test_a_reused_pid_is_not_ours_and_is_left_alone(tmp_path):
    proc = _sleeper()
    try:
        entry = record("old", proc.pid)
        entry.started -= 1  # as if the recorded process had exited and the kernel had given its PID to this one
        ledger = Ledger(tmp_path / "cluster.json")
        ledger.add(entry)
        assert Ledger(tmp_path / "cluster.json").stop_all() == [f"old (pid {proc.pid}) was not running"]
        assert proc.poll() is None, "a process the ledger did not start was signalled"
    finally:
        proc.kill()
        proc.wait()


def test_settings_come_from_the_environment_with_documented_defaults():
    default = Settings.from_env({})
    assert default.values == DEFAULTS
    assert default.folder == ROOT / "artifacts" / "cluster"
    custom = Settings.from_env({"CLUSTER_API_PORT": "9999", "CLUSTER_DIR": "/tmp/x"})
    assert custom.api_url == "http://127.0.0.1:9999" and custom.folder == Path("/tmp/x")
    assert custom.worker_names() == ["worker1", "worker2"]


def test_each_worker_reports_its_own_name_and_log_port():
    settings = Settings.from_env({})
    env, _ = cluster_env(settings, {})
    one, two = worker_env(env, settings, 1), worker_env(env, settings, 2)
    assert one["AIRFLOW__CORE__HOSTNAME_CALLABLE"] == "scripts.workername.get_name"
    assert (one[WORKER_NAME_ENV], two[WORKER_NAME_ENV]) == ("worker1", "worker2")
    assert one["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] != two["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"]
    assert WORKER_NAME_ENV not in env


def test_worker_name_callable(monkeypatch):
    monkeypatch.setenv(WORKER_NAME_ENV, "worker7")
    assert get_name() == "worker7"
    monkeypatch.delenv(WORKER_NAME_ENV)
    from airflow.utils.net import getfqdn

    assert get_name() == getfqdn()


def test_missing_packages_give_the_apt_command(monkeypatch):
    monkeypatch.setattr(services, "pg_bindir", lambda: None)
    assert "apt-get install -y postgresql redis-server" in services.missing_reason()
    monkeypatch.setattr(services, "pg_bindir", lambda: Path("/usr/lib/postgresql/15/bin"))
    monkeypatch.setattr(services.shutil, "which", lambda name: None)
    assert services.missing_reason().startswith("redis-server not found")


def test_ci_installs_the_cluster_packages_before_running_the_tests():
    script = (ROOT / ".ci" / "run").read_text()
    for package in ("postgresql", "redis-server", "chromium", "chromium-driver"):
        assert f"missing+=({package})" in script, package
    assert script.rstrip().endswith("make test")
