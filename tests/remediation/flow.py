"""Drive whole runs on the emulator without Airflow's scheduler: a baseline scan through the scan step bodies, and
a remediation through its step bodies and its real operators (a minimal Airflow context)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from unittest import mock

from include.patch_compliance import remediation_publish, remediation_steps, run_staging, steps
from include.patch_compliance.orchestration.remediation import RemediationInstallOperator, RemediationRescanOperator
from include.patch_compliance.scan.command import ScanRequest, run_tag, scan_record
from include.patch_compliance.vocab import CANARY_WAVE, RESCAN_WAVE
from include.patch_compliance.wait.status import outcome_records, shard_progress
from tests.orchestration.conftest import fleet_config, make_run

START = datetime.now(UTC).replace(microsecond=0)


def config(**overrides):
    base = {
        "scan": {
            "allow_install": True,
            "reboot_option": "RebootIfNeeded",
            "max_concurrency": "50%",
            "max_errors": "50%",
        },
        "remediation": {"enabled": True, "canary": {"nodes": 2}, "max_nodes": 20, "max_failure_ratio": 0.1},
    }
    for key, value in overrides.items():
        base[key] = {**base.get(key, {}), **value} if isinstance(value, dict) else value
    return fleet_config(**base)


def finish(sandbox, run, records) -> list[dict]:
    for _ in range(80):
        if shard_progress(run.members.get, records).done:
            break
        sandbox.admin("advance", seconds=300)
    return outcome_records(run.members.get, records)


def scan(sandbox, run_id: str, run_after: datetime, cfg=None):
    """The scan DAG's steps: plan, Scan every shard, wait, collect, report, Security Hub."""
    run = make_run(run_id, cfg or config(), dag_id="patch_compliance_scan")
    run.run_after = run_after
    plan = steps.plan_fleet(run)
    req = ScanRequest(operation="Scan", run_id=run_id, run_tag=run_tag(run.dag_id, run_id), scan=run.cfg.scan)
    for wave, refs in plan["waves"].items():
        for ref in refs:
            targets = run_staging.load_plan(run).waves[wave][ref["shard"]]
            records = [scan_record(run.members.get, t, req, START - timedelta(days=1)) for t in targets]
            run.put(run.key("scan", wave, ref["shard"]), records)
            run.put(run.key("commands", wave, ref["shard"]), finish(sandbox, run, records))
            steps.collect_shard(run, ref)
    return run, steps.report(run), steps.security_hub(run)


def context_for(run) -> dict:
    ti = SimpleNamespace(xcom_push=lambda key, value: None)
    return {
        "dag": SimpleNamespace(dag_id=run.dag_id),
        "run_id": run.run_id,
        "dag_run": SimpleNamespace(run_after=run.run_after, start_date=datetime.now(UTC) - timedelta(minutes=1)),
        "ti": ti,
        "params": {},
    }


def operator(run, op) -> dict:
    with mock.patch("include.patch_compliance.runtime.RunContext.from_airflow", return_value=run):
        return op.execute(context_for(run))


def remediate(sandbox, run_id: str, params: dict, run_after: datetime, cfg=None, now: datetime | None = None):
    """select → per wave: gate → install (the operator) → wait → rescan (the operator) → verify → report →
    security_hub. Returns (run, select result, report result, findings result)."""
    run = make_run(run_id, cfg or config(), dag_id="patch_compliance_remediate")
    run.run_after = run_after
    now = now or datetime.now(UTC)
    selected = remediation_steps.select(run, params, now)
    if selected["dry_run"]:
        return run, selected, None, None
    previous = None
    for wave in [CANARY_WAVE, *(w.name for w in run.cfg.waves)]:
        if not remediation_steps.gate(run, wave, previous, now)["held"]:
            for ref in selected["waves"].get(wave, []):
                operator(run, RemediationInstallOperator(task_id="install", shard=ref))
                records = run.get(run.key("scan", wave, ref["shard"]))
                run.put(run.key("commands", wave, ref["shard"]), finish(sandbox, run, records))
        previous = wave
    operator(run, RemediationRescanOperator(task_id="rescan"))
    records = run.get(run.key("scan", RESCAN_WAVE, 0))
    run.put(run.key("commands", RESCAN_WAVE, 0), finish(sandbox, run, records))
    remediation_steps.verify(run)
    return run, selected, remediation_publish.report(run), remediation_publish.security_hub(run)


def counted_available_updates(ssm, instance_id: str) -> int:
    """Available security updates left on the node that its baseline counts as non-compliant (0 otherwise,
    docs/aws-behaviours.md §37): an Install installs approved patches only, so these stay."""
    (state,) = ssm.describe_instance_patch_states(InstanceIds=[instance_id])["InstancePatchStates"]
    setting = ssm.get_patch_baseline(BaselineId=state["BaselineId"])["AvailableSecurityUpdatesComplianceStatus"]
    return state.get("AvailableSecurityUpdateCount", 0) if setting == "NON_COMPLIANT" else 0
