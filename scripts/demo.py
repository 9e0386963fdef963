"""`make demo`: run the org-wide scan DAG end to end against the local emulator and print a fleet summary.

`--remediate` (`make demo-remediate`) then runs patch_compliance_remediate for real (dry_run=false) on the scan's
most urgent non-compliant nodes, with both opt-ins in a copy of the emulator's config, and prints before/after."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.local_env import EMULATOR_CONFIG, ROOT, ensure_bucket, local_env, migrate, sandbox  # noqa: E402

DAG_ID = "patch_compliance_scan"
REMEDIATE_DAG_ID = "patch_compliance_remediate"
REMEDIATE_CONF = {"dry_run": False, "max_nodes": 6}


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


def remediation_text(summary: dict) -> str:
    r = summary["remediation"]
    before, after = r["before"], r["after"]
    lines = [
        "",
        "Remediation",
        "===========",
        f"run:                 {summary['run_id']} (nodes from scan run {r['source_run_id']})",
        f"selected / sent:     {r['selected']} / {r['sent']}   RebootOption={r['reboot_option']}",
        f"non-compliant:       {before['non_compliant']} before -> {after['non_compliant']} after "
        f"({after['compliant']} compliant)",
        f"missing patches:     {before['missing']} -> {after['missing']}   "
        f"failed: {before['failed']} -> {after['failed']}   "
        f"pending reboot: {before['pending_reboot']} -> {after['pending_reboot']}",
        f"patches installed:   {r['patches_installed']}   rescanned: {r['rescanned']}",
        "results:             " + ", ".join(f"{k.lower()} {v}" for k, v in r["results"].items() if v),
        "waves:               "
        + ", ".join(f"{w['wave']} {w['nodes']}{' (held)' if w['held'] else ''}" for w in r["waves"]),
    ]
    hub = summary.get("security_hub") or {}
    lines.append(f"Security Hub:        {hub.get('resolved', 0)} resolved, {hub.get('updated', 0)} updated")
    return "\n".join(lines)


def _run_dag(dag_id: str, env: dict[str, str], log: Path, conf: dict | None = None) -> tuple[int, float]:
    started = time.monotonic()
    print(f"Running {dag_id} against the emulator (log: {log})")
    command = [str(Path(sys.executable).parent / "airflow"), "dags", "test", dag_id]
    with log.open("w") as out:
        result = subprocess.run(
            command + (["-c", json.dumps(conf)] if conf else []),
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return result.returncode, time.monotonic() - started


def _remediation_config(logs: Path) -> Path:
    """The emulator's config with both remediation opt-ins (the shipped file keeps Install off)."""
    import yaml

    data = yaml.safe_load(EMULATOR_CONFIG.read_text())
    data["scan"].update(allow_install=True, reboot_option="RebootIfNeeded")
    data["remediation"] = {"enabled": True, "canary": {"nodes": 2}, "max_nodes": 20, "max_failure_ratio": 0.5}
    path = logs / "remediate-config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("SANDBOX_PORT", 5055)))
    parser.add_argument("--remediate", action="store_true", help="then run patch_compliance_remediate for real")
    args = parser.parse_args()
    airflow_home = ROOT / "airflow_home" / "demo"
    logs = ROOT / "artifacts" / "demo"
    env = local_env(args.port, airflow_home)
    os.environ.update({k: v for k, v in env.items() if k.startswith(("AWS_", "PATCH_COMPLIANCE_"))})
    from include.patch_compliance.config import load_config
    from scripts.demo_artifacts import copy_run_files, received_alerts, subscribe_queue

    cfg = load_config()
    with sandbox(args.port, env, log=logs / "sandbox.log"):
        ensure_bucket(cfg.reports.bucket)
        queue = subscribe_queue(cfg.alerts.sns.topic_arn) if cfg.alerts.sns else None
        migrate(env)
        returncode, elapsed = _run_dag(DAG_ID, env, logs / "dags_test.log")
        summary = _latest_summary(cfg)
        if summary:
            print(fleet_summary(summary))
            alerts = received_alerts(queue) if queue else []
            for alert in alerts:
                print(f"\nAlert received from SNS: {alert.get('Subject')}\n{alert['Message']}")
            written = copy_run_files(cfg.reports.bucket, summary["report_url"], logs, alerts)
            print(f"\nReport files copied to {logs}: {', '.join(p.name for p in written)}")
        print(f"\n{DAG_ID} finished in {elapsed:.0f} s with exit code {returncode}")
        if returncode != 0 or summary is None:
            print((logs / "dags_test.log").read_text()[-4000:], file=sys.stderr)
            return 1
        if args.remediate:
            env = {**env, "PATCH_COMPLIANCE_CONFIG": str(_remediation_config(logs))}
            log = logs / "remediate.log"
            returncode, elapsed = _run_dag(REMEDIATE_DAG_ID, env, log, REMEDIATE_CONF)
            summary = _latest_summary(cfg, REMEDIATE_DAG_ID)
            if summary:
                print(remediation_text(summary))
            print(f"\n{REMEDIATE_DAG_ID} {json.dumps(REMEDIATE_CONF)} finished in {elapsed:.0f} s, exit {returncode}")
            if summary is None:
                print(log.read_text()[-4000:], file=sys.stderr)
                return 1
    return 0


def _latest_summary(cfg, dag_id: str = DAG_ID) -> dict | None:
    import boto3

    key = f"{cfg.reports.prefix}/latest/{dag_id}/summary.json"
    try:
        return json.loads(boto3.client("s3").get_object(Bucket=cfg.reports.bucket, Key=key)["Body"].read())
    except Exception as exc:  # noqa: BLE001 - reported to the user
        print(f"no summary at s3://{cfg.reports.bucket}/{key}: {exc}", file=sys.stderr)
        return None


if __name__ == "__main__":
    sys.exit(main())
