"""`make demo`: run the org-wide scan DAG end to end against the local emulator and print a fleet summary."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.local_env import ROOT, ensure_bucket, local_env, migrate, sandbox  # noqa: E402

DAG_ID = "patch_compliance_scan"


def fleet_summary(summary: dict) -> str:
    totals = summary["totals"]
    lines = [
        "",
        "Fleet summary",
        "=============",
        f"run:                 {summary['run_id']}",
        f"nodes:               {totals['nodes']}  ("
        + ", ".join(f"{k.lower()} {v}" for k, v in totals.get("coverage", {}).items() if v)
        + ")",
        f"compliant:           {totals['compliant']} ({totals['compliant_pct'] or 0:.1f}%)",
        f"non-compliant:       {totals['non_compliant']}   unknown: {totals['unknown']}",
        f"unreachable targets: {totals['unreachable_targets']} of {totals['targets']} account-regions",
        f"SLA breaches:        {totals['sla_breaches']}",
        "non-compliant by OU:",
    ]
    for ou in sorted(summary["by_ou"], key=lambda o: o["ou_path"]):
        lines.append(f"  {ou['ou_path']:<32} {ou['non_compliant']:>4} of {ou['nodes']:>4} nodes")
    hub = summary.get("security_hub")
    if hub:
        lines.append(
            f"Security Hub:        {hub.get('created', 0)} created, {hub.get('updated', 0)} updated, "
            f"{hub.get('resolved', 0)} resolved, {hub.get('failed', 0)} failed, "
            f"{hub.get('skipped', 0)} account-regions skipped, {hub.get('errors', 0)} with errors"
        )
    lines.append(f"report:              {summary['report_url']}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("SANDBOX_PORT", 5055)))
    args = parser.parse_args()
    airflow_home = ROOT / "airflow_home" / "demo"
    logs = ROOT / "artifacts" / "demo"
    env = local_env(args.port, airflow_home)
    os.environ.update({k: v for k, v in env.items() if k.startswith(("AWS_", "PATCH_COMPLIANCE_"))})
    from include.patch_compliance.config import load_config

    cfg = load_config()
    with sandbox(args.port, env, log=logs / "sandbox.log"):
        ensure_bucket(cfg.reports.bucket)
        migrate(env)
        started = time.monotonic()
        print(f"Running {DAG_ID} against the emulator on 127.0.0.1:{args.port} (log: {logs / 'dags_test.log'})")
        with (logs / "dags_test.log").open("w") as out:
            result = subprocess.run(
                [str(Path(sys.executable).parent / "airflow"), "dags", "test", DAG_ID],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        elapsed = time.monotonic() - started
        summary = _latest_summary(cfg)
        if summary:
            print(fleet_summary(summary))
        print(f"\n{DAG_ID} finished in {elapsed:.0f} s with exit code {result.returncode}")
        if result.returncode != 0 or summary is None:
            print((logs / "dags_test.log").read_text()[-4000:], file=sys.stderr)
            return 1
    return 0


def _latest_summary(cfg) -> dict | None:
    import boto3

    key = f"{cfg.reports.prefix}/latest/{DAG_ID}/summary.json"
    try:
        return json.loads(boto3.client("s3").get_object(Bucket=cfg.reports.bucket, Key=key)["Body"].read())
    except Exception as exc:  # noqa: BLE001 - reported to the user
        print(f"no summary at s3://{cfg.reports.bucket}/{key}: {exc}", file=sys.stderr)
        return None


if __name__ == "__main__":
    sys.exit(main())
