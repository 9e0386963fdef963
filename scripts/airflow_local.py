"""`make airflow`: `airflow standalone` (UI on http://localhost:8080) wired to a local emulator."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.local_env import ROOT, ensure_bucket, local_env, migrate, sandbox  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("SANDBOX_PORT", 5055)))
    args = parser.parse_args()
    env = local_env(args.port, ROOT / "airflow_home" / "standalone")
    env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"] = "True"  # local only: no login page
    # Unpaused: the scan DAG starts its latest scheduled run at once, so there is a run to watch, and the trends
    # DAG follows the published tables.
    env["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] = "False"
    os.environ.update({k: v for k, v in env.items() if k.startswith(("AWS_", "PATCH_COMPLIANCE_"))})
    from include.patch_compliance.config import load_config

    with sandbox(args.port, env, log=ROOT / "artifacts" / "standalone" / "sandbox.log"):
        ensure_bucket(load_config().reports.bucket)
        migrate(env)
        print(f"Emulator on 127.0.0.1:{args.port}; Airflow UI on http://localhost:8080 (Ctrl-C stops both)")
        try:
            return subprocess.run(
                [str(Path(sys.executable).parent / "airflow"), "standalone"], cwd=ROOT, env=env
            ).returncode
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    sys.exit(main())
