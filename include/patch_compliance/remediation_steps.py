"""The remediation DAG's step bodies up to the verification: plain functions of a RunContext that tests call
without Airflow (publishing is in ``remediation_publish.py``).

select (opt-ins, change window, the latest published scan, filters, ``max_nodes``) → plan (canary, then the
config's waves) → per wave: gate → Install on the plan's InstanceIds (through the scan machinery, so retries reuse
the command) → wait → rescan of nodes whose state predates their Install → verify (collect every touched
account-region).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import date, datetime
from typing import Any

import pandas as pd
from botocore.exceptions import BotoCoreError, ClientError

from include.patch_compliance import run_staging, steps
from include.patch_compliance.aws import TargetUnreachable
from include.patch_compliance.collect.collector import collect_target, managed_nodes, patch_states
from include.patch_compliance.config import FleetConfig
from include.patch_compliance.discover.plan import Plan
from include.patch_compliance.publish.remediation import publish_selection
from include.patch_compliance.publish.report_files import latest_keys, read_parquet_bytes
from include.patch_compliance.records import Target
from include.patch_compliance.remediate.plan import RemediationPlan, plan_remediation
from include.patch_compliance.remediate.select import REASONS, Filters, Selection, select_nodes
from include.patch_compliance.remediate.verify import latest_invocations, rescan_candidates
from include.patch_compliance.remediate.window import window_state
from include.patch_compliance.runtime import RunContext
from include.patch_compliance.scan.command import ScanRequest, run_tag
from include.patch_compliance.storage import get_bytes, list_keys, object_exists, parse_s3_uri, s3_uri
from include.patch_compliance.transform.schema import NODES, PATCHES
from include.patch_compliance.vocab import RESCAN_WAVE

log = logging.getLogger("airflow.task")

SOURCE_DAG = "patch_compliance_scan"
# What the selection keeps of each chosen node: the plan's fields and the "before" figures.
SELECTED_COLUMNS = (
    "ou_id", "ou_path", "account_id", "account_name", "region", "wave", "instance_id", "instance_name",
    "platform_name", "compliance_status", "coverage_status", "highest_missing_severity", "missing_count",
    "failed_count", "installed_pending_reboot_count", "installed_rejected_count", "installed_count",
    "non_compliant_patches", "sla_breaches", "last_scan_time",
)  # fmt: skip
SHOWN_IN_LOG = 50


class RemediationRefused(ValueError):
    """The run must not send anything; the message names the setting or param to change."""


def check_opt_ins(cfg: FleetConfig) -> None:
    """Both opt-ins, or nothing runs (not even a dry run: it would show what a real run is about to do)."""
    settings = {"scan.allow_install": cfg.scan.allow_install, "remediation.enabled": cfg.remediation.enabled}
    off = [name for name, on in settings.items() if not on]
    if off:
        raise RemediationRefused(
            f"remediation refused, nothing was sent: the configuration has {' and '.join(f'{k}: false' for k in off)}. "
            "Remediation installs patches: set both scan.allow_install: true and remediation.enabled: true in the "
            "config file to allow it."
        )


def dry_run_of(params: Mapping[str, Any]) -> bool:
    """The ``dry_run`` param; null or absent is the default, a dry run."""
    value = params.get("dry_run")
    if value is None:
        return True
    if not isinstance(value, bool):
        raise RemediationRefused(f"param dry_run={value!r}: give true (plan only, the default) or false")
    return value


def source_report(run: RunContext) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]:
    """The latest published scan (``latest/patch_compliance_scan/summary.json``, written only after a complete
    publish) and its nodes and patches tables."""
    key = latest_keys(run.cfg.reports.prefix, SOURCE_DAG)[0]
    if not object_exists(run.hub, run.bucket, key):
        raise RemediationRefused(
            f"nothing to remediate from: {s3_uri(run.bucket, key)} does not exist; run {SOURCE_DAG} first"
        )
    summary = json.loads(get_bytes(run.hub, run.bucket, key))
    snapshot_date = date.fromisoformat(summary["snapshot_date"])
    frames = []
    for table in (NODES, PATCHES):
        bucket, table_key = parse_s3_uri(summary["tables"][table.name])
        frames.append(read_parquet_bytes(get_bytes(run.hub, bucket, table_key), table, snapshot_date))
    return summary, frames[0], frames[1]


def _json_rows(frame: pd.DataFrame, columns: tuple[str, ...]) -> list[dict[str, Any]]:
    shown = frame[[c for c in columns if c in frame.columns]].astype(object)
    return shown.where(shown.notna(), None).to_dict("records")


def selection_document(
    selection: Selection, source: dict[str, Any], filters: Filters, *, dry_run: bool, window: dict | None
) -> dict[str, Any]:
    return {
        "source": {k: source.get(k) for k in ("dag_id", "run_id", "snapshot_date", "generated_at", "tables")},
        "filters": filters.as_dict(),
        "dry_run": dry_run,
        "change_window": window,
        "selected": _json_rows(selection.selected, SELECTED_COLUMNS),
        "left_out_counts": selection.counts(),
        "left_out": _json_rows(selection.left_out, tuple(selection.left_out.columns)),
        "reasons": REASONS,
    }


def selection_lines(doc: dict[str, Any]) -> list[str]:
    """What the select task logs: the source, every chosen node, left-out candidates and counts by reason."""
    src = doc["source"]
    lines = [f"source: {src['dag_id']} run {src['run_id']} of {src['snapshot_date']}; filters {doc['filters']}"]
    lines += [
        f"selected {n['account_id']}/{n['region']}/{n['instance_id']} ({n.get('instance_name') or ''}): "
        f"{n['missing_count']} missing, {n['failed_count']} failed, highest {n.get('highest_missing_severity')}"
        for n in doc["selected"]
    ]
    candidates = [r for r in doc["left_out"] if r["compliance_status"] == "NON_COMPLIANT"]
    lines += [
        f"left out {r['account_id']}/{r['region']}/{r['instance_id']}: {r['reason']}: {REASONS[r['reason']]}"
        for r in candidates[:SHOWN_IN_LOG]
    ]
    if len(candidates) > SHOWN_IN_LOG:
        lines.append(f"... and {len(candidates) - SHOWN_IN_LOG} more non-compliant nodes left out (see selection.json)")
    lines.append(f"{len(doc['selected'])} selected; left out by reason: {doc['left_out_counts']}")
    return lines


def select(run: RunContext, params: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """Refuse (before reading anything) without both opt-ins or outside the change window, select from the
    latest scan, write the selection (staging and ``runs/<run>/selection.json``), refuse above
    ``remediation.max_nodes``, then write the plan. Returns the small XCom the DAG wires from."""
    cfg = run.cfg
    check_opt_ins(cfg)
    dry_run = dry_run_of(params)
    window = cfg.remediation.change_window
    state = window_state(window, now) if window else None
    if state is not None and not state.is_open and not dry_run:
        raise RemediationRefused(f"remediation refused, nothing was sent: {state.describe()}")
    filters = Filters.from_params(params)
    source, nodes, patches = source_report(run)
    selection = select_nodes(nodes, patches, filters, cfg.scan.reboot_option)
    doc = selection_document(selection, source, filters, dry_run=dry_run, window=state.as_dict() if state else None)
    run.put(run.key("selection"), doc)
    uri = publish_selection(run.hub, cfg.reports, doc, run_id=run.run_id)
    for line in selection_lines(doc):
        log.info(line)
    if state is not None:
        log.info(state.describe())
    count, cap = len(doc["selected"]), cfg.remediation.max_nodes
    if count > cap:
        raise RemediationRefused(
            f"remediation refused, nothing was sent: {count} nodes selected, above remediation.max_nodes {cap}. "
            "Narrow the selection (params ou_ids, accounts, regions, min_severity, classifications, cve_ids, tags, "
            f"max_nodes) or raise remediation.max_nodes; the selection is in {uri}"
        )
    plan = plan_remediation(doc["selected"], cfg.waves, cfg.remediation.canary, cfg.orchestration.shard_size)
    run.put(run.key("plan"), plan.as_dict())
    return {
        "dry_run": dry_run,
        "selected": count,
        "left_out": doc["left_out_counts"],
        "nodes_per_wave": {w: plan.nodes(w) for w in plan.waves},
        "waves": Plan(waves=plan.waves).shard_refs(),
        "source_run_id": source["run_id"],
        "selection_uri": uri,
        "change_window": doc["change_window"],
    }


def load_remediation_plan(run: RunContext) -> RemediationPlan:
    return RemediationPlan.from_dict(run.get(run.key("plan")))


def planned(run: RunContext) -> bool:
    """Whether select wrote this run's plan. The tasks after the waves run whatever the waves did (all_done), so
    they check this first: without a plan (select refused or broke) there is nothing to verify or publish."""
    key = run.key("plan")
    return key in list_keys(run.hub, run.bucket, key)


def gate(run: RunContext, wave: str, previous: str | None, now: datetime) -> dict[str, Any]:
    """Hold the wave when the previous one failed above ``remediation.max_failure_ratio``, or when the change
    window has closed since the run started (a wave never starts outside it)."""
    window = run.cfg.remediation.change_window
    state = window_state(window, now) if window else None
    refuse = state.describe() if state is not None and not state.is_open else None
    limit = run.cfg.remediation.max_failure_ratio
    return steps.wave_gate(
        run, wave, previous, "Install", setting="remediation.max_failure_ratio", limit=limit, refuse=refuse
    )


def wave_tag(run: RunContext, wave: str) -> str:
    """Each wave has its own Comment tag: one account-region may be in several waves, and a retry must find only
    its own wave's batches."""
    return run_tag(run.dag_id, f"{run.run_id}/{wave}")


def _managed(run: RunContext, target: Target, ids: list[str]) -> list[str]:
    """The ids still managed now (SendCommand refuses a whole batch over one stopped node, §29); an account or
    call that fails keeps them all, and the send records why."""
    try:
        ssm = run.members.get(target.account_id).client("ssm", target.region)
        listed = {n["InstanceId"] for n in managed_nodes(ssm)}
    except (TargetUnreachable, ClientError, BotoCoreError):
        return ids
    gone = [i for i in ids if i not in listed]
    if gone:
        log.warning("%s/%s: not sent to %s: no longer managed nodes", target.account_id, target.region, gone)
    return [i for i in ids if i in listed]


def install_request(run: RunContext, wave: str, shard: int) -> tuple[list[Target], ScanRequest]:
    """One shard of a remediation wave: its targets and an Install request naming exactly their nodes."""
    plan = load_remediation_plan(run)
    targets = plan.waves[wave][shard]
    wanted = plan.instance_ids.get(wave, {})
    with ThreadPoolExecutor(max_workers=run.cfg.orchestration.max_workers) as pool:
        kept = list(pool.map(lambda t: _managed(run, t, wanted.get((t.account_id, t.region), [])), targets))
    ids = {(t.account_id, t.region): k for t, k in zip(targets, kept, strict=True)}
    req = ScanRequest("Install", run.run_id, wave_tag(run, wave), run.cfg.scan, instance_ids=ids)
    return targets, req


def _states(run: RunContext, account_id: str, region: str, ids: list[str]) -> dict[tuple[str, str, str], dict]:
    try:
        ssm = run.members.get(account_id).client("ssm", region)
        return {(account_id, region, s["InstanceId"]): s for s in patch_states(ssm, ids)}
    except (TargetUnreachable, ClientError, BotoCoreError) as exc:
        log.warning("%s/%s: patch states not read, no rescan there: %s", account_id, region, exc)
        return {}


def rescan_decision(run: RunContext) -> list[dict[str, str]]:
    """Nodes to rescan, decided once per run and stored, so a retry rescans the same nodes (and finds its
    commands) instead of deciding again on states its own first attempt may have refreshed."""
    key = run.key("rescan")
    if key in list_keys(run.hub, run.bucket, key):
        return run.get(key)["nodes"]
    installs = latest_invocations(
        [r for r in run_staging.read_records(run, "commands") if r.get("wave") != RESCAN_WAVE]
    )
    by_target: dict[tuple[str, str], list[str]] = {}
    for account_id, region, instance_id in installs:
        by_target.setdefault((account_id, region), []).append(instance_id)
    with ThreadPoolExecutor(max_workers=run.cfg.orchestration.max_workers) as pool:
        parts = list(
            pool.map(lambda item: _states(run, item[0][0], item[0][1], sorted(item[1])), sorted(by_target.items()))
        )
    states = {k: v for part in parts for k, v in part.items()}
    nodes = rescan_candidates(installs, states)
    run.put(key, {"nodes": nodes})
    for node in nodes:
        log.info("rescan %s/%s/%s: %s", node["account_id"], node["region"], node["instance_id"], node["reason"])
    return nodes


def rescan_request(run: RunContext) -> tuple[list[Target], ScanRequest]:
    """A Scan of exactly the nodes ``rescan_decision`` chose, one target per account-region."""
    nodes = rescan_decision(run)
    known = {
        (t.account_id, t.region): t for shards in load_remediation_plan(run).waves.values() for s in shards for t in s
    }
    ids: dict[tuple[str, str], list[str]] = {}
    for node in nodes:
        ids.setdefault((node["account_id"], node["region"]), []).append(node["instance_id"])
    targets = [replace(known[k], wave=RESCAN_WAVE) for k in sorted(ids)]
    return targets, ScanRequest("Scan", run.run_id, wave_tag(run, RESCAN_WAVE), run.cfg.scan, instance_ids=ids)


def touched_targets(plan: RemediationPlan) -> list[Target]:
    """Every account-region of the plan once (its first wave), in plan order."""
    seen: dict[tuple[str, str], Target] = {}
    for shards in plan.waves.values():
        for shard in shards:
            for t in shard:
                seen.setdefault((t.account_id, t.region), t)
    return list(seen.values())


def verify(run: RunContext) -> dict[str, Any]:
    """Collect every touched account-region after the Installs and rescans (all of its nodes: the report and the
    Security Hub lifecycle need the whole account-region) and store the raw documents."""
    targets = touched_targets(load_remediation_plan(run))
    with ThreadPoolExecutor(max_workers=run.cfg.orchestration.max_workers) as pool:
        docs = list(pool.map(lambda t: collect_target(run.members.get, t.as_dict(), run.cfg.collect), targets))
    uri = run.put(run.key("verify"), docs)
    return {
        "targets": len(docs),
        "nodes": sum(len(d["instance_information"]) for d in docs),
        "unreachable": sum(1 for d in docs if d["status"] == "UNREACHABLE"),
        "raw_uri": uri,
    }
