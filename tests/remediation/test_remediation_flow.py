"""Targeted remediation on the emulated organization, step by step with the real Install/rescan operators: the
dry run sends nothing, refusals name their setting, canary failures hold every later wave, a real run installs on
exactly the selected InstanceIds, a retried install sends no second command, and the fix is proven (remediation
table, Security Hub findings resolved, the next scan)."""

from __future__ import annotations

import io
import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import pyarrow.parquet as pq
import pytest

from include.patch_compliance import remediation_steps, steps
from include.patch_compliance.orchestration.remediation import RemediationInstallOperator
from include.patch_compliance.publish.asff import finding_id
from include.patch_compliance.remediate.plan import RemediationPlan
from include.patch_compliance.remediation_steps import RemediationRefused
from include.patch_compliance.vocab import CANARY_WAVE
from tests.orchestration.conftest import BUCKET, make_run
from tests.remediation.flow import START, config, counted_available_updates, operator, remediate, scan

FAST = {"collect": {"compliance_items": False}}
# A Monday noon: outside a Saturday-night change window.
MONDAY_NOON = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
SATURDAY_NIGHT = {"start": "0 22 * * 6", "duration_minutes": 240}


def _json(sandbox, key):
    return json.loads(sandbox.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read())


def _parquet(sandbox, uri):
    key = uri.split(f"s3://{BUCKET}/", 1)[1]
    return pq.read_table(io.BytesIO(sandbox.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read())).to_pylist()


def _installs(sandbox) -> list[dict]:
    return [e for e in sandbox.sent_commands() if (e["Parameters"] or {}).get("Operation") == ["Install"]]


def _key(row) -> tuple[str, str, str]:
    return (row["account_id"], row["region"], row["instance_id"])


@pytest.fixture(scope="module")
def baseline(sandbox):
    """A full scan published as patch_compliance_scan, Security Hub findings included."""
    run, report, findings = scan(sandbox, "base-1", START, config(**FAST))
    assert findings["created"] > 0
    return _parquet(sandbox, _json(sandbox, report["summary_uri"].split(f"{BUCKET}/")[1])["tables"]["nodes"])


def test_dry_run_selects_plans_and_sends_nothing(sandbox, baseline):
    sandbox.reset_calls()
    run, selected, report, _ = remediate(sandbox, "dry-1", {"max_nodes": 6}, START + timedelta(hours=1))
    assert selected["dry_run"] and report is None
    assert sandbox.calls().get("ssm.SendCommand", 0) == 0
    doc = _json(sandbox, "pc/runs/dry-1/selection.json")
    chosen = {_key(n) for n in doc["selected"]}
    assert len(chosen) == selected["selected"] == 6
    # every row of the report is accounted for: chosen, or left out with a reason
    left = {_key(r): r["reason"] for r in doc["left_out"] if r["instance_id"]}
    assert chosen.isdisjoint(left) and len(chosen) + len(left) == sum(1 for n in baseline if n["instance_id"])
    for node in baseline:
        if node["instance_id"] and _key(node) not in chosen:
            reason = left[_key(node)]
            if node["compliance_status"] == "COMPLIANT":
                assert reason == "COMPLIANT"
            elif node["compliance_status"] == "NON_COMPLIANT" and node["coverage_status"] in ("OFFLINE", "UNMANAGED"):
                assert reason == node["coverage_status"]
    assert doc["left_out_counts"]["MAX_NODES"] > 0  # more candidates than max_nodes
    # most urgent first: nobody left out for max_nodes has a more severe missing patch than a chosen node
    order = ["CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", "UNSPECIFIED"]
    worst_left = min(order.index(n["highest_missing_severity"]) for n in baseline if left.get(_key(n)) == "MAX_NODES")
    assert max(order.index(n["highest_missing_severity"]) for n in doc["selected"]) <= worst_left
    plan = RemediationPlan.from_dict(run.get(run.key("plan")))
    assert plan.nodes(CANARY_WAVE) == 2 and set(plan.wave_of()) == chosen


def test_refusals_name_the_setting_and_send_nothing(sandbox, baseline):
    sandbox.reset_calls()
    cases = [
        (config(scan={"allow_install": False}), {}, "scan.allow_install: false"),
        (config(remediation={"enabled": False}), {}, "remediation.enabled: false"),
        (config(remediation={"max_nodes": 3}), {"dry_run": False}, "6 nodes selected, above remediation.max_nodes 3"),
        (config(remediation={"change_window": SATURDAY_NIGHT}), {"dry_run": False}, "remediation.change_window"),
        (config(reports={"bucket": BUCKET, "prefix": "elsewhere"}), {}, "run patch_compliance_scan first"),
    ]
    for i, (cfg, params, message) in enumerate(cases):
        run = make_run(f"refused-{i}", cfg, dag_id="patch_compliance_remediate")
        with pytest.raises(RemediationRefused, match=message):
            remediation_steps.select(run, {"max_nodes": 6, **params}, MONDAY_NOON)
    # a dry run outside the window still shows the selection, and says when the window opens
    run = make_run("window-dry", config(remediation={"change_window": SATURDAY_NIGHT}), dag_id="x")
    selected = remediation_steps.select(run, {"max_nodes": 6}, MONDAY_NOON)
    assert selected["dry_run"] and selected["change_window"]["next_open"] == "2026-12-05T22:00:00+00:00"
    # a run that started inside the window holds a wave that would start after it closed
    saturday = datetime(2026, 12, 5, 23, 0, tzinfo=UTC)
    run = make_run("window-run", config(remediation={"change_window": SATURDAY_NIGHT}), dag_id="x")
    remediation_steps.select(run, {"max_nodes": 6, "dry_run": False}, saturday)
    decision = remediation_steps.gate(run, CANARY_WAVE, None, saturday + timedelta(hours=3))
    assert decision["held"] and "remediation.change_window" in decision["reason"] and "closed" in decision["reason"]
    with pytest.raises(RuntimeError, match="change_window"):
        steps.final_gate(run, {"targets": 1, "unreachable_targets": 0})
    assert sandbox.calls().get("ssm.SendCommand", 0) == 0


def test_canary_failures_hold_every_later_wave(sandbox, baseline):
    cfg = config(scan={"reboot_option": "NoReboot"}, **FAST)
    dry, _, _, _ = remediate(sandbox, "gate-dry", {"max_nodes": 6}, START + timedelta(hours=1), cfg)
    canary = sorted(RemediationPlan.from_dict(dry.get(dry.key("plan"))).instance_ids[CANARY_WAVE].items())
    canary_ids = [i for _, ids in canary for i in ids]
    sandbox.set_faults({"fail_instances": {canary_ids[0]: "Install"}})
    sandbox.reset_calls()
    try:
        run, _, report, _ = remediate(
            sandbox, "gate-1", {"max_nodes": 6, "dry_run": False}, START + timedelta(hours=1), cfg
        )
    finally:
        sandbox.set_faults({})
    # only the canary nodes got an Install; the rest was held
    assert sorted(i for e in _installs(sandbox) for i in e["InstanceIds"]) == sorted(canary_ids)
    decisions = [run.get(k) for k in steps.list_keys(run.hub, run.bucket, run.prefix("gate"))]
    held = {d["wave"]: d for d in decisions if d["held"]}
    assert set(held) == {w.name for w in cfg.waves}
    first = held[cfg.waves[0].name]
    assert "above remediation.max_failure_ratio 10%" in first["reason"] and first["failed"] >= 1
    with pytest.raises(RuntimeError, match="remediation.max_failure_ratio"):
        steps.final_gate(run, report["totals"])
    rows = {r["instance_id"]: r for r in _parquet(sandbox, report["table_uri"])}
    failed = rows[canary_ids[0]]
    assert failed["outcome"] == "FAILED" and failed["result"] == "NOT_REMEDIATED"
    assert failed["rescanned"] and failed["missing_after"] == failed["missing_before"]  # the rescan: nothing changed
    other = rows[canary_ids[1]]
    # NoReboot: installed, pending a reboot, still non-compliant (docs/aws-behaviours.md §2, §8)
    assert other["outcome"] == "SUCCESS" and other["result"] == "PENDING_REBOOT" and other["reboot_needed"]
    assert other["compliance_after"] == "NON_COMPLIANT" and other["missing_after"] == other["failed_after"] == 0
    assert other["pending_reboot_after"] >= other["missing_before"] + other["failed_before"]
    later = [r for i, r in rows.items() if i not in canary_ids]
    assert later and all(r["result"] == "HELD" and r["command_id"] is None for r in later)
    assert all("held" in r["error"] for r in later)
    rescans = [e for e in sandbox.sent_commands() if e["Parameters"] == {"Operation": ["Scan"]}]
    assert {i for e in rescans for i in e["InstanceIds"]} == {canary_ids[0]}


def test_install_reaches_exactly_the_selection_and_the_fix_is_proven(sandbox, baseline):
    cfg = config(remediation={"max_failure_ratio": 1.0}, **FAST)
    sandbox.reset_calls()
    run, selected, report, findings = remediate(
        sandbox, "rem-1", {"max_nodes": 6, "dry_run": False}, START + timedelta(hours=2), cfg
    )
    chosen = {_key(n) for n in _json(sandbox, "pc/runs/rem-1/selection.json")["selected"]}
    installs = _installs(sandbox)
    # exactly the selection, each node once, by InstanceIds in its own account-region (never Targets)
    sent = Counter((e["account_id"], e["region"], i) for e in installs for i in e["InstanceIds"])
    assert set(sent) == chosen and set(sent.values()) == {1}
    assert all(e["Targets"] is None and len(e["InstanceIds"]) <= 50 for e in installs)
    assert all(e["DocumentName"] == "AWS-RunPatchBaseline" for e in installs)
    assert all(e["Parameters"] == {"Operation": ["Install"], "RebootOption": ["RebootIfNeeded"]} for e in installs)

    # a retried install task finds its commands and sends nothing
    before = sandbox.calls()["ssm.SendCommand"]
    plan = RemediationPlan.from_dict(run.get(run.key("plan")))
    result = operator(run, RemediationInstallOperator(task_id="install", shard={"wave": CANARY_WAVE, "shard": 0}))
    assert sandbox.calls()["ssm.SendCommand"] == before
    assert result["commands"] == result["reused"] >= 1 and plan.nodes(CANARY_WAVE) == 2

    rows = _parquet(sandbox, report["table_uri"])
    assert {_key(r) for r in rows} == chosen
    fixed = []
    for row in rows:
        if row["outcome"] != "SUCCESS":  # the emulator's seeded failures: the node is as it was
            assert row["result"] == "NOT_REMEDIATED" and row["missing_after"] == row["missing_before"]
            assert row["rescanned"] == (row["outcome"] in ("FAILED", "EXECUTION_TIMED_OUT"))
            continue
        assert row["missing_after"] == row["failed_after"] == row["pending_reboot_after"] == 0
        assert row["patches_installed"] >= row["missing_before"] + row["failed_before"]
        if row["rejected_after"]:  # an Install never removes a rejected package (docs/aws-behaviours.md §29)
            assert row["result"] == "REJECTED_REMAINS" and row["compliance_after"] == "NON_COMPLIANT"
        elif counted_available_updates(
            run.members.get(row["account_id"]).client("ssm", row["region"]), row["instance_id"]
        ):
            # An Install installs approved patches only; available security updates are unapproved by definition
            # and stay, non-compliant where the baseline says so (docs/aws-behaviours.md §37).
            assert row["result"] == "NOT_REMEDIATED" and row["compliance_after"] == "NON_COMPLIANT"
        else:
            assert row["result"] == "REMEDIATED" and row["compliance_after"] == "COMPLIANT"
            fixed.append(row)
    assert fixed, rows
    assert report["results"]["REMEDIATED"] == len(fixed)

    # findings of fixed nodes resolve through the lifecycle (docs/aws-behaviours.md §16)
    layout = sandbox.fleet["security_hub"]
    excluded = {(d["account_id"], d["region"]) for d in layout["disabled"] + layout["native_export"]}
    checked = 0
    for row in fixed:
        if (row["account_id"], row["region"]) in excluded:
            continue
        hub = run.members.get(row["account_id"]).client("securityhub", row["region"])
        fid = finding_id(row["account_id"], row["region"], row["instance_id"])
        (found,) = hub.get_findings(Filters={"Id": [{"Value": fid, "Comparison": "EQUALS"}]})["Findings"]
        assert found["RecordState"] == "ARCHIVED" and found["Compliance"]["Status"] == "PASSED"
        checked += 1
    assert checked and findings["resolved"] >= checked

    # the published report: summary with the remediation block, report.html with its section, latest pointers
    summary = _json(sandbox, "pc/latest/patch_compliance_remediate/summary.json")
    assert summary["run_id"] == "rem-1" and summary["remediation"]["results"]["REMEDIATED"] == len(fixed)
    assert summary["remediation"]["before"]["non_compliant"] == 6 and summary["security_hub"]["resolved"] >= checked
    assert _json(sandbox, "pc/latest/summary.json")["dag_id"] == "patch_compliance_scan"  # the fleet view stays
    html = sandbox.client("s3").get_object(Bucket=BUCKET, Key="pc/runs/rem-1/report.html")["Body"].read().decode()
    assert 'id="remediation"' in html and all(f'data-node="{r["instance_id"]}"' in html for r in rows)

    # the next scan sees the fixed nodes compliant
    _, next_report, _ = scan(sandbox, "base-2", START + timedelta(hours=3), config(**FAST))
    nodes = {
        _key(n): n
        for n in _parquet(sandbox, _json(sandbox, next_report["summary_uri"].split(f"{BUCKET}/")[1])["tables"]["nodes"])
    }
    assert all(nodes[_key(r)]["compliance_status"] == "COMPLIANT" for r in fixed)


def _ssm(run, row):
    return run.members.get(row["account_id"]).client("ssm", row["region"])
