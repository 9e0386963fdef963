"""`python -m sandbox serve`: readiness, env-provided faults, Ctrl-C, and bad fault config."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=2) as resp:
        return json.loads(resp.read())


def _env(**extra: str) -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), **extra}


def test_serve_until_ctrl_c_with_faults_from_env():
    port = _free_port()
    faults = json.dumps({"throttle": {"ssm.SendCommand": 0.5}})
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "serve", "--port", str(port), "--time-scale", "0"],
        cwd=ROOT,
        env=_env(PATCH_SANDBOX_FAULTS=faults, SANDBOX_PORT="1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        health = None
        for _ in range(300):
            try:
                health = _get(f"http://127.0.0.1:{port}/_sandbox/health")
                break
            except OSError:
                time.sleep(0.1)
        assert health and health["status"] == "ready" and health["profile"] == "small" and health["seed"] == 7
        assert _get(f"http://127.0.0.1:{port}/_sandbox/faults")["throttle"] == {"ssm.SendCommand": 0.5}
        assert _get(f"http://127.0.0.1:{port}/_sandbox/fleet")["management_account_id"] == "123456789012"
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out
    assert "sandbox ready at" in out and "sandbox stopped" in out


def test_bad_faults_file_exits_2_naming_the_problem(tmp_path):
    bad = tmp_path / "faults.yaml"
    bad.write_text("throttle:\n  ssm.SendCommand: 7\n")
    proc = subprocess.run(
        [sys.executable, "-m", "sandbox", "serve", "--port", "0", "--faults", str(bad)],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "throttle.ssm.SendCommand" in proc.stderr
