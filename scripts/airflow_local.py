"""`make airflow`: `airflow standalone` (UI on http://localhost:$AIRFLOW_PORT, default 8080) wired to a local
emulator, with a SimpleAuthManager login it prints."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.local_env import ROOT, ensure_bucket, local_env, migrate, sandbox  # noqa: E402

USER = "admin"


def ui_env(ui_port: int, home: Path) -> tuple[dict[str, str], str, Path]:
    """Airflow settings for an api-server on ``ui_port`` with one login: (env, password, passwords file).

    Tasks reach the Execution API at ``[core] execution_api_server_url``, which defaults to port 8080 whatever
    ``[api] port`` says, so it follows the port. The password is generated once and kept in the
    SimpleAuthManager's passwords file under ``home`` (Airflow reads it there; it never overwrites an entry)."""
    passwords = home / "simple_auth_manager_passwords.json.generated"
    home.mkdir(parents=True, exist_ok=True)
    known = json.loads(passwords.read_text() or "{}") if passwords.exists() else {}
    if USER not in known:
        known[USER] = secrets.token_urlsafe(12)
        passwords.write_text(json.dumps(known))
        passwords.chmod(0o600)
    env = {
        "AIRFLOW__API__PORT": str(ui_port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://localhost:{ui_port}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
    }
    return env, known[USER], passwords


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("SANDBOX_PORT", 5055)), help="emulator")
    parser.add_argument("--ui-port", type=int, default=int(os.environ.get("AIRFLOW_PORT") or 8080), help="Airflow UI")
    args = parser.parse_args()
    home = ROOT / "airflow_home" / "standalone"
    env = local_env(args.port, home)
    settings, password, passwords = ui_env(args.ui_port, home)
    env.update(settings)
    # Unpaused: the scan DAG starts its latest scheduled run at once, so there is a run to watch, and the trends
    # DAG follows the published tables.
    env["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] = "False"
    os.environ.update({k: v for k, v in env.items() if k.startswith(("AWS_", "PATCH_COMPLIANCE_"))})
    from include.patch_compliance.config import load_config

    with sandbox(args.port, env, log=ROOT / "artifacts" / "standalone" / "sandbox.log"):
        ensure_bucket(load_config().reports.bucket)
        migrate(env)
        print(f"Emulator on 127.0.0.1:{args.port}; Airflow UI on http://localhost:{args.ui_port} (Ctrl-C stops both)")
        print(f"Login: {USER} / {password} (kept in {passwords})", flush=True)
        try:
            return subprocess.run(
                [str(Path(sys.executable).parent / "airflow"), "standalone"], cwd=ROOT, env=env
            ).returncode
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    sys.exit(main())
