"""Scan and wait against the emulated organization: every reachable account-region gets one command per batch,
retries reuse it, the wait follows the lifecycle to terminal states, unreachable accounts are recorded."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from include.patch_compliance import run_staging, steps
from include.patch_compliance.scan.command import (
    InstallNotAllowed,
    ScanRequest,
    resolve_operation,
    run_tag,
    scan_record,
)
from include.patch_compliance.wait.status import failure_ratio, is_terminal, outcome_records, shard_progress
from tests.orchestration.conftest import fleet_config, make_run


def _scan_all(run, operation="Scan"):
    plan = steps.plan_fleet(run)
    req = ScanRequest(
        operation=operation, run_id=run.run_id, run_tag=run_tag(run.dag_id, run.run_id), scan=run.cfg.scan
    )
    since = datetime.now(UTC) - timedelta(days=1)
    records = [scan_record(run.members.get, t, req, since) for t in run_staging.load_plan(run).targets]
    return plan, req, since, records


def test_scan_reaches_every_reachable_target_and_records_the_unreachable_one(sandbox):
    run = make_run("scan-1")
    sandbox.reset_calls()
    plan, _, _, records = _scan_all(run)
    by_status = Counter(r["status"] for r in records)
    roleless = [a["id"] for a in sandbox.fleet["accounts"] if not a["has_role"] and a["state"] == "ACTIVE"]
    assert by_status["UNREACHABLE"] == 2 * len(roleless)  # both regions of the account without the role
    unreachable = [r for r in records if r["status"] == "UNREACHABLE"]
    assert all(r["error"]["stage"] == "assume_role" and r["error"]["code"] == "AccessDenied" for r in unreachable)
    sent = [r for r in records if r["status"] == "SENT"]
    assert len(sent) == plan["targets"] - len(unreachable)
    assert sandbox.calls()["ssm.SendCommand"] == sum(len(r["commands"]) for r in sent)
    suspended = [a["id"] for a in sandbox.fleet["accounts"] if a["state"] != "ACTIVE"]
    assert not {r["target"]["account_id"] for r in records} & set(suspended)


def test_retry_after_crash_reuses_the_earlier_command(sandbox):
    """A crash between SendCommand and the XCom push: the retry finds the command by document, time and Comment."""
    run = make_run("scan-retry")
    _, req, since, first = _scan_all(run)
    sandbox.reset_calls()
    target = run_staging.load_plan(run).targets[0]
    again = scan_record(run.members.get, target, req, since)
    assert sandbox.calls().get("ssm.SendCommand", 0) == 0
    original = next(r for r in first if r["target"] == target.as_dict())
    assert [c["command_id"] for c in again["commands"]] == [c["command_id"] for c in original["commands"]]
    assert all(c["reused"] for c in again["commands"])
    # another run of the same DAG does send its own command
    other = ScanRequest(
        operation="Scan", run_id="scan-other", run_tag=run_tag(run.dag_id, "scan-other"), scan=run.cfg.scan
    )
    assert not scan_record(run.members.get, target, other, since)["commands"][0]["reused"]


def test_wait_follows_the_lifecycle_until_every_invocation_is_terminal(sandbox):
    run = make_run("scan-wait")
    _, _, _, records = _scan_all(run)
    progress = shard_progress(run.members.get, records)
    assert not progress.done  # just sent: Pending / InProgress
    for _ in range(40):
        sandbox.admin("advance", seconds=120)
        progress = shard_progress(run.members.get, records)
        if progress.done:
            break
    assert progress.done, progress
    outcomes = outcome_records(run.members.get, records)
    details = Counter(o["status_details"] for o in outcomes if o["instance_id"])
    assert details["Success"] > 0
    assert details["Undeliverable"] > 0  # ConnectionLost nodes
    assert {"Success", "Undeliverable"} < set(details)  # and some Failed / timed out
    assert all(o["status"] in {"Success", "Failed", "TimedOut", "Cancelled"} for o in outcomes if o["instance_id"])
    no_command = [o for o in outcomes if not o["command_id"]]
    assert no_command and all(o["target_status"] == "UNREACHABLE" and "AccessDenied" in o["error"] for o in no_command)
    ratio, failed, total = failure_ratio(outcomes)
    assert total == sum(1 for o in outcomes if o["instance_id"]) and 0 < failed < total


def test_each_check_is_one_list_commands_per_account_region_still_running(sandbox):
    """The wait at the page-limit floor (issue 11): a check asks each account-region with a command not known to
    be terminal exactly once, the others never; the outcomes then read only ListCommandInvocations."""
    run = make_run("scan-floor")
    _, _, _, records = _scan_all(run)
    sent = [r for r in records if r["commands"]]
    commands = [c["command_id"] for r in sent for c in r["commands"]]
    doc = run.cfg.scan.document_name
    states: dict = {}
    checks = asked = target_checks = 0
    while True:
        running = {
            (r["target"]["account_id"], r["target"]["region"])
            for r in sent
            if not all(is_terminal(states.get(c["command_id"])) for c in r["commands"])
        }
        sandbox.reset_calls()
        progress = shard_progress(run.members.get, records, document_name=doc, known=states)
        calls = sandbox.calls()
        assert calls.get("ssm.ListCommands", 0) == len(running) == progress.polled, (checks, calls)
        assert "ssm.ListCommandInvocations" not in calls
        checks, asked, target_checks = checks + 1, asked + len(running), target_checks + len(sent)
        states = progress.states
        if progress.done:
            break
        assert checks < 60, "the emulated commands never finished"
        sandbox.admin("advance", seconds=120)
    assert asked <= 1.2 * target_checks  # the target: ListCommands <= 1.2 x (targets x pokes)
    sandbox.reset_calls()
    outcomes = outcome_records(run.members.get, records, states=states)
    calls = sandbox.calls()
    assert "ssm.ListCommands" not in calls
    assert calls["ssm.ListCommandInvocations"] == len(commands)  # one page of <= 50 invocations per command
    assert {o["command_id"] for o in outcomes if o["command_id"]} == set(commands)


def test_install_refused_without_opt_in_and_allowed_with_it():
    with pytest.raises(InstallNotAllowed, match="scan.allow_install: true"):
        resolve_operation("Install", fleet_config().scan)
    assert resolve_operation(None, fleet_config().scan) == "Scan"
    opted_in = fleet_config(scan={"allow_install": True})
    assert resolve_operation("Install", opted_in.scan) == "Install"
    assert resolve_operation("Scan", opted_in.scan) == "Scan"
    with pytest.raises(ValueError, match="'Patch' is not allowed"):
        resolve_operation("Patch", opted_in.scan)


def test_install_wave_is_held_when_previous_wave_failed_too_often(sandbox):
    cfg = fleet_config(scan={"allow_install": True, "install_max_failure_ratio": 0.01})
    run = make_run("install-gate", cfg)
    plan = steps.plan_fleet(run)
    assert not steps.wave_gate(run, "canary", None, "Install")["held"]  # the first wave has nothing to judge
    canary_records = [{"instance_id": "i-1", "status": "Success"}, {"instance_id": "i-2", "status": "Failed"}]
    run.put(run.key("commands", "canary", 0), canary_records)
    decision = steps.wave_gate(run, "rest", "canary", "Install")
    assert decision["held"] and "failed on 1 of 2 nodes (50%)" in decision["reason"]
    assert steps.wave_gate(run, "later", "rest", "Install")["held"]  # held waves hold the ones after them
    assert not steps.wave_gate(run, "rest", "canary", "Scan")["held"]  # Scan waves are never gated
    steps.wave_gate(run, "rest", "canary", "Install")
    with pytest.raises(RuntimeError, match="wave 'rest' held"):
        steps.final_gate(run, {"targets": plan["targets"], "unreachable_targets": 0})


def test_final_gate_fails_above_the_unreachable_ratio(sandbox):
    run = make_run("gate-ratio", fleet_config(thresholds={"max_unreachable_ratio": 0.1}))
    assert steps.final_gate(run, {"targets": 10, "unreachable_targets": 1}).startswith("ok")
    with pytest.raises(RuntimeError, match=r"2 of 10 account-regions unreachable \(20%\)"):
        steps.final_gate(run, {"targets": 10, "unreachable_targets": 2})


def test_final_gate_fails_above_the_security_hub_error_ratio(sandbox):
    """Issue 10 item 7: Security Hub errors per account-region fail the run above
    thresholds.max_securityhub_error_ratio (default 0), after everything was published."""
    from include.patch_compliance.publish.report_files import run_key

    run = make_run("gate-hub")
    totals = {"targets": 4, "unreachable_targets": 0}
    assert steps.final_gate(run, totals).startswith("ok")  # the step wrote nothing (disabled or failed): no verdict
    error = {"account_id": "111111111111", "region": "eu-west-1", "stage": "list_enabled_products"}
    outcome = {"targets": 4, "errors": [{**error, "code": "AccessDeniedException", "message": "denied"}]}
    key = run_key(run.cfg.reports.prefix, run.run_id, "security_hub.json")
    sandbox.client("s3").put_object(Bucket=run.bucket, Key=key, Body=json.dumps(outcome).encode())
    with pytest.raises(RuntimeError, match=r"Security Hub failed in 1 of 4 account-regions \(25%\).*AccessDenied"):
        steps.final_gate(run, totals)
    lenient = make_run("gate-hub", fleet_config(thresholds={"max_securityhub_error_ratio": 0.25}))
    assert steps.final_gate(lenient, totals).startswith("ok")
