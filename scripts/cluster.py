"""`make cluster` / `make cluster-down`: a CeleryExecutor Airflow on this machine from Debian packages and the
venv, no Docker, wired to the local emulator.

PostgreSQL (metadata DB) and Redis (Celery broker) run as user processes with their data under the cluster
folder (default ``artifacts/cluster``); then the init step (``airflow db migrate``, the ``aws_default``
connection) and ``airflow api-server``, ``scheduler``, ``dag-processor``, ``triggerer`` and two
``airflow celery worker`` processes, each logging to ``<folder>/<name>.log``. What runs, and with which settings,
is scripts/cluster_spec.py (the deploy/ files are tested against it). Every started PID is recorded in
``<folder>/cluster.json``; ``down`` stops exactly those.

    python scripts/cluster.py up | down | status
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts import cluster_spec as spec  # noqa: E402
from scripts.local_env import ROOT, ensure_bucket, local_env, sandbox_command, wait_ready  # noqa: E402
from scripts.processes import Ledger, record  # noqa: E402
from scripts.services import postgres_start, redis_start, require_binaries  # noqa: E402
from scripts.workername import WORKER_NAME_ENV  # noqa: E402

AIRFLOW = Path(sys.executable).parent / "airflow"
# Ports and knobs, each overridable by the environment variable of that name (README, "Distributed Airflow").
DEFAULTS: dict[str, str] = {
    "CLUSTER_API_PORT": "8090",
    "CLUSTER_POSTGRES_PORT": "5544",
    "CLUSTER_REDIS_PORT": "6390",
    "CLUSTER_SANDBOX_PORT": "5056",
    "CLUSTER_SCHEDULER_HEALTH_PORT": "8974",
    "CLUSTER_TRIGGERER_LOG_PORT": "8794",
    "CLUSTER_WORKER1_LOG_PORT": "8793",
    "CLUSTER_WORKER2_LOG_PORT": "8795",
    "CLUSTER_DIR": "artifacts/cluster",
    "CLUSTER_ADMIN_PASSWORD": "admin",
    "CLUSTER_TIME_SCALE": "120",
}
ADMIN_USER = "admin"
# A dead worker's tasks are failed (and retried) after this long without a heartbeat. Airflow's default is
# 300 s; a local cluster detects a lost worker quickly. Task processes heartbeat every 5 s
# ([workers] min_heartbeat_interval), so 30 s is six missed beats.
LOCAL_HEARTBEAT_TIMEOUT = "30"
# Every component shares two cores here: give the workers' calls to the Execution API more than the default
# 5 s before they count as failed ("Increase this value if you experience timeout errors under high load").
LOCAL_EXECUTION_API_TIMEOUT = "30"
# A task a dying worker had already taken from Redis but not started stays "queued" (Redis redelivers it only
# after the visibility timeout); the scheduler puts it back after [scheduler] task_queued_timeout (default
# 600 s, checked every 120 s). Locally: 90 s, checked every 15 s.
LOCAL_TASK_QUEUED_TIMEOUT = "90"
_CONCURRENCY = "AIRFLOW__CELERY__WORKER_CONCURRENCY"
# Stopped after the Airflow components, which write to them while they shut down.
BACKING = ("postgres", "redis", "emulator")


@dataclass
class Settings:
    """What varies between `make cluster` and the cluster test: ports, folder, password, emulator speed, and
    an optional config file (default: the one scripts/local_env.py wires, as `make demo` uses)."""

    values: dict[str, str]
    config_file: Path | None = None
    profile: str = "small"
    seed: int = 7
    extra_env: dict[str, str] = field(default_factory=dict)  # set last, for every component (bench/bench_scale.py)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: str) -> Settings:
        source = os.environ if environ is None else environ
        values = {k: str(overrides.get(k, source.get(k, v))) for k, v in DEFAULTS.items()}
        return cls(values)

    def port(self, name: str) -> int:
        return int(self.values[f"CLUSTER_{name.upper()}_PORT"])

    @property
    def folder(self) -> Path:
        path = Path(self.values["CLUSTER_DIR"])
        return path if path.is_absolute() else ROOT / path

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port('api')}"

    @property
    def sandbox_url(self) -> str:
        return f"http://127.0.0.1:{self.port('sandbox')}"

    def worker_names(self) -> list[str]:
        worker = next(c for c in spec.COMPONENTS if c.name == "worker")
        return [f"worker{i}" for i in range(1, worker.replicas + 1)]


@dataclass
class Cluster:
    settings: Settings
    ledger: Ledger
    env: dict[str, str]
    timings: dict[str, float] = field(default_factory=dict)

    def log(self, name: str) -> Path:
        return self.settings.folder / f"{name}.log"

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self.log(name)
        text = path.read_text(errors="replace") if path.exists() else "(no log)"
        return f"--- {path} ---\n" + "\n".join(text.splitlines()[-lines:])


def cluster_env(settings: Settings, shared_secrets: dict[str, str]) -> tuple[dict[str, str], dict]:
    """The environment every Airflow component gets: `make demo`'s wiring (scripts/local_env.py) plus the
    distributed settings of cluster_spec, with this cluster's endpoints. Returns it and the AWS connection's
    extra, which the init step writes into the metadata DB (as the compose init does) instead of an env var."""
    folder = settings.folder
    env = local_env(settings.port("sandbox"), folder / "airflow_home")
    connection = json.loads(env.pop("AIRFLOW_CONN_AWS_DEFAULT", "{}") or "{}")
    if settings.config_file is not None:
        env["PATCH_COMPLIANCE_CONFIG"] = str(settings.config_file)
    if not env.get("PATCH_COMPLIANCE_CONFIG"):
        from include.patch_compliance.config import config_path

        with mock.patch.dict(os.environ, env, clear=True):
            env["PATCH_COMPLIANCE_CONFIG"] = str(config_path())
    here = spec.Endpoints(
        postgres=f"127.0.0.1:{settings.port('postgres')}",
        redis=f"127.0.0.1:{settings.port('redis')}",
        api_url=settings.api_url,
        config_file=env["PATCH_COMPLIANCE_CONFIG"],
    )
    worker = next(c for c in spec.COMPONENTS if c.name == "worker")
    env.update(spec.airflow_settings(here))
    env.update(spec.SIMPLE_AUTH_SETTINGS)
    env.update(shared_secrets)
    env.update(
        {
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(settings.port("api")),
            "AIRFLOW__API__BASE_URL": settings.api_url,
            "AIRFLOW__API__WORKERS": "1",  # one uvicorn worker: a 2-core machine runs everything here
            "AIRFLOW__CORE__PARALLELISM": str(worker.replicas * int(spec.PORTABLE_SETTINGS[_CONCURRENCY])),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(folder / "passwords.json"),
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(settings.port("scheduler_health")),
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": LOCAL_HEARTBEAT_TIMEOUT,
            "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": LOCAL_EXECUTION_API_TIMEOUT,
            "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": LOCAL_TASK_QUEUED_TIMEOUT,
            "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "15",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(settings.port("triggerer_log")),
        }
    )
    env.update(settings.extra_env)
    return env, connection.get("extra", {})


def worker_env(env: dict[str, str], settings: Settings, index: int) -> dict[str, str]:
    """Two workers on one host: own name in TaskInstance.hostname, own log server port."""
    return {
        **env,
        WORKER_NAME_ENV: f"worker{index}",
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "scripts.workername.get_name",
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(settings.port(f"worker{index}_log")),
    }


def _shared_secrets(folder: Path) -> dict[str, str]:
    """Generated once per cluster folder and kept: the metadata DB's encrypted fields need the same Fernet key
    after a restart."""
    path = folder / "secrets.json"
    if path.exists():
        return json.loads(path.read_text())
    values = {
        "AIRFLOW__CORE__FERNET_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(48),
    }
    assert set(values) == set(spec.SHARED_SECRETS)
    path.write_text(json.dumps(values))
    path.chmod(0o600)
    return values


def _spawn(ledger: Ledger, name: str, cmd: list[str], env: dict[str, str], log: Path) -> None:
    with log.open("ab") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    ledger.add(record(name, proc.pid))


def up(settings: Settings, *, wait_timeout: float = 240.0) -> Cluster:
    """Start everything, wait until the API reports every component healthy and both workers answer a ping."""
    require_binaries()
    folder = settings.folder
    ledger = Ledger(folder / "cluster.json")
    if ledger.running():
        names = ", ".join(f"{e.name} ({e.pid})" for e in ledger.running())
        raise RuntimeError(f"a cluster is already running from {folder}: {names}; run `make cluster-down` first")
    ledger.entries = []
    folder.mkdir(parents=True, exist_ok=True)
    env, connection_extra = cluster_env(settings, _shared_secrets(folder))
    ledger.info = {"api_url": settings.api_url, "sandbox_url": settings.sandbox_url, "folder": str(folder)}
    cluster = Cluster(settings, ledger, env)
    started = time.monotonic()
    try:
        _spawn(
            ledger,
            "emulator",
            sandbox_command(
                settings.port("sandbox"),
                profile=settings.profile,
                seed=settings.seed,
                time_scale=float(settings.values["CLUSTER_TIME_SCALE"]),
            ),
            env,
            cluster.log("emulator"),
        )
        ledger.add(postgres_start(folder, settings.port("postgres"), spec.DB_USER, spec.DB_PASSWORD, spec.DB_NAME))
        ledger.add(redis_start(folder, settings.port("redis")))
        wait_ready(settings.sandbox_url)
        cluster.timings["services"] = time.monotonic() - started
        # The schema first; the connection import then runs while the components start (both are slow CLI
        # start-ups, and no component needs the connection before a task runs).
        migrate, connection = _init_steps(cluster, connection_extra)
        _init_run(cluster, migrate)
        cluster.timings["migrate"] = time.monotonic() - started - cluster.timings["services"]
        importing = _init_start(cluster, connection)
        for component in spec.COMPONENTS:
            if component.name == "worker":
                for index, name in enumerate(settings.worker_names(), start=1):
                    cmd = [str(AIRFLOW), *component.args, "-H", f"{name}@%h"]
                    _spawn(ledger, name, cmd, worker_env(env, settings, index), cluster.log(name))
            else:
                _spawn(ledger, component.name, [str(AIRFLOW), *component.args], env, cluster.log(component.name))
        if importing.wait(timeout=wait_timeout):
            raise RuntimeError(f"{' '.join(connection)} failed\n{cluster.log_tail('init')}")
        _wait_healthy(cluster, wait_timeout)
        cluster.timings["up"] = time.monotonic() - started
    except BaseException:
        ledger.stop_all(last=BACKING)
        raise
    return cluster


def _init_steps(cluster: Cluster, connection_extra: dict) -> list[list[str]]:
    """The init service's work (cluster_spec.init_commands), plus what the emulator lacks: the admin's password
    file and the reports bucket (real AWS has it already)."""
    folder = cluster.settings.folder
    (folder / "passwords.json").write_text(json.dumps({ADMIN_USER: cluster.settings.values["CLUSTER_ADMIN_PASSWORD"]}))
    connection_file = folder / "connections.json"
    connection_file.write_text(spec.connection_document(connection_extra))
    from include.patch_compliance.config import load_config

    aws = {k: v for k, v in cluster.env.items() if k.startswith("AWS_")}
    with mock.patch.dict(os.environ, aws):
        ensure_bucket(load_config(Path(cluster.env["PATCH_COMPLIANCE_CONFIG"])).reports.bucket)
    return [[str(AIRFLOW), *cmd[1:]] for cmd in spec.init_commands(str(connection_file))]


def _init_start(cluster: Cluster, cmd: list[str]) -> subprocess.Popen:
    with cluster.log("init").open("a") as out:
        return subprocess.Popen(cmd, cwd=ROOT, env=cluster.env, stdout=out, stderr=subprocess.STDOUT)


def _init_run(cluster: Cluster, cmd: list[str]) -> None:
    if _init_start(cluster, cmd).wait():
        raise RuntimeError(f"{' '.join(cmd)} failed\n{cluster.log_tail('init')}")


def _wait_healthy(cluster: Cluster, timeout: float) -> None:
    from celery import Celery

    broker = Celery(broker=cluster.env["AIRFLOW__CELERY__BROKER_URL"])
    expected = set(cluster.settings.worker_names())
    deadline = time.monotonic() + timeout
    health: dict = {}
    answered: set[str] = set()
    while time.monotonic() < deadline:
        for entry in cluster.ledger.entries:
            if not entry.alive():
                raise RuntimeError(f"{entry.name} exited during start-up\n{cluster.log_tail(entry.name)}")
        health = _health(cluster.settings.api_url)
        if health and all(health.get(k, {}).get("status") == "healthy" for k in _HEALTH_PARTS):
            replies = broker.control.ping(timeout=1.0)
            answered = {name.split("@", 1)[0] for reply in replies for name in reply}
            if expected <= answered:
                return
        time.sleep(1.0)
    tails = "\n".join(cluster.log_tail(e.name, 15) for e in cluster.ledger.entries if e.name != "postgres")
    raise RuntimeError(
        f"cluster not ready after {timeout:.0f} s: health {health}, workers answering {sorted(answered)}\n{tails}"
    )


_HEALTH_PARTS = ("metadatabase", "scheduler", "triggerer", "dag_processor")


def _health(api_url: str) -> dict:
    try:
        with urllib.request.urlopen(f"{api_url}/api/v2/monitor/health", timeout=3) as resp:
            return json.load(resp)
    except (OSError, ValueError):
        return {}


def down(settings: Settings) -> list[str]:
    """Stop every process recorded in the cluster folder's ledger (and only those)."""
    ledger = Ledger(settings.folder / "cluster.json")
    if not ledger.entries:
        return [f"nothing recorded in {ledger.path}: no cluster to stop"]
    return ledger.stop_all(last=BACKING)


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["up", "down", "status"])
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    if args.action == "down":
        print("\n".join(down(settings)))
        return 0
    if args.action == "status":
        ledger = Ledger(settings.folder / "cluster.json")
        for entry in ledger.entries:
            print(f"{entry.name:<14} pid {entry.pid:<8} {'running' if entry.alive() else 'not running'}")
        return 0 if ledger.entries else 1
    busy = [k for k in DEFAULTS if k.endswith("_PORT") and not _port_free(int(settings.values[k]))]
    if busy:
        print("ports in use: " + ", ".join(f"{k}={settings.values[k]}" for k in busy), file=sys.stderr)
        print("set those variables to free ports, or stop what holds them", file=sys.stderr)
        return 1
    cluster = up(settings)
    print(
        f"Cluster up in {cluster.timings['up']:.0f} s (folder {settings.folder}):\n"
        f"  Airflow UI/API  {settings.api_url}  (login {ADMIN_USER} / {settings.values['CLUSTER_ADMIN_PASSWORD']})\n"
        f"  emulator        {settings.sandbox_url}\n"
        f"  PostgreSQL      127.0.0.1:{settings.port('postgres')}   Redis 127.0.0.1:{settings.port('redis')}\n"
        f"  workers         {', '.join(settings.worker_names())}\n"
        f"  logs            {settings.folder}/<component>.log\n"
        "Stop it with `make cluster-down`."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
