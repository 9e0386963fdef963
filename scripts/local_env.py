"""Local wiring shared by `make demo` and `make airflow`: environment, emulator process, reports bucket."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The emulated organization's config (the product has no default file; every component must be given one).
EMULATOR_CONFIG = ROOT / "sandbox" / "fleet-config.yaml"


def local_env(port: int, airflow_home: Path) -> dict[str, str]:
    """Airflow on SQLite in ``airflow_home``, every AWS call to the emulator through standard configuration."""
    env = dict(os.environ)
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "PATCH_COMPLIANCE_CONFIG": str(EMULATOR_CONFIG),
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__PARALLELISM": "4",  # LocalExecutor forks this many workers (docs/aws-behaviours.md §24)
            "AIRFLOW_CONN_AWS_DEFAULT": json.dumps({"conn_type": "aws", "extra": {"region_name": "us-east-1"}}),
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    )
    # `airflow standalone` starts its components as `airflow ...` by name: the venv's bin must be on PATH.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("AWS_PROFILE", None)
    env.pop("AWS_SESSION_TOKEN", None)
    return env


def wait_ready(url: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_sandbox/health", timeout=2) as resp:
                if resp.status == 200:
                    return json.load(resp)
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"the emulator at {url} was not ready after {timeout:.0f} s")


def sandbox_command(port: int, *, profile: str = "small", time_scale: float = 120.0, seed: int = 7) -> list[str]:
    """The emulator's command line (sandbox/README.md) on 127.0.0.1:``port``."""
    return [
        sys.executable,
        "-m",
        "sandbox",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--profile",
        profile,
        "--seed",
        str(seed),
        "--time-scale",
        str(time_scale),
    ]


@contextmanager
def sandbox(
    port: int, env: dict[str, str], *, profile: str = "small", time_scale: float = 120.0, seed: int = 7, log: Path
):
    """Start the emulator as a child process, wait for its health check, stop it on exit."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        proc = subprocess.Popen(
            sandbox_command(port, profile=profile, time_scale=time_scale, seed=seed),
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_ready(f"http://127.0.0.1:{port}")
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def ensure_bucket(bucket: str) -> None:
    """The reports bucket exists in real AWS already; the emulator starts empty."""
    import boto3

    s3 = boto3.client("s3")
    try:
        s3.head_bucket(Bucket=bucket)
    except s3.exceptions.ClientError:
        s3.create_bucket(Bucket=bucket)


def migrate(env: dict[str, str]) -> None:
    subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "db", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL
    )
