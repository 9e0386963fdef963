"""After the Install waves: which nodes need a rescan, the ``remediation`` table (before/after per node) and the
summary block the report, summary.json and the page show."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from include.patch_compliance.transform.commands import outcome_label
from include.patch_compliance.transform.schema import REMEDIATION, REMEDIATION_RESULTS

NodeKey = tuple[str, str, str]  # (account_id, region, instance_id)
# Invocation StatusDetails after which the document never ran on the node, so a rescan would learn nothing new
# (docs/aws-behaviours.md §3).
NEVER_RAN = ("Undeliverable", "Delivery Timed Out", "Invalid Platform", "Terminated")
TERMINAL_DETAILS = ("Success", "Failed", "Execution Timed Out", "Cancelled", *NEVER_RAN)
# (remediation column, nodes column) pairs read before (the source report) and after (the verification).
COUNTS = {
    "missing": "missing_count",
    "failed": "failed_count",
    "pending_reboot": "installed_pending_reboot_count",
    "rejected": "installed_rejected_count",
    "installed": "installed_count",
}


def _time(value: Any) -> datetime | None:
    if value is None or value is pd.NaT or (isinstance(value, float) and pd.isna(value)):
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def latest_invocations(records: list[dict[str, Any]]) -> dict[NodeKey, dict[str, Any]]:
    """Each node's latest requested invocation among command outcome records (a retry may list one twice)."""
    out: dict[NodeKey, dict[str, Any]] = {}
    for rec in records:
        if not rec.get("instance_id"):
            continue
        key = (rec["account_id"], rec["region"], rec["instance_id"])
        if key not in out or str(rec.get("requested_at") or "") >= str(out[key].get("requested_at") or ""):
            out[key] = rec
    return out


def rescan_candidates(
    invocations: Mapping[NodeKey, dict[str, Any]], states: Mapping[NodeKey, dict[str, Any]]
) -> list[dict[str, str]]:
    """Nodes whose reported patch state is older than their finished Install (the Install did not rewrite it,
    e.g. it failed, or the node reported before its reboot): a Scan refreshes it. Compares AWS's own times only."""
    out = []
    for key, inv in sorted(invocations.items()):
        details = inv.get("status_details")
        if details not in TERMINAL_DETAILS or details in NEVER_RAN:
            continue
        requested = _time(inv.get("requested_at"))
        state = states.get(key)
        end = _time(state.get("OperationEndTime")) if state else None
        if state is None:
            reason = "no patch state after the Install"
        elif requested is not None and end is not None and end < requested:
            reason = f"patch state of {end:%Y-%m-%d %H:%M:%S} UTC is older than the Install ({requested:%H:%M:%S})"
        else:
            continue
        out.append({"account_id": key[0], "region": key[1], "instance_id": key[2], "reason": reason})
    return out


def _total(*counts: int | None) -> int | None:
    """The sum, or None when a count is unknown."""
    known = [c for c in counts if c is not None]
    return sum(known) if len(known) == len(counts) else None


def _count(row: Mapping[str, Any] | None, column: str) -> int | None:
    if row is None:
        return None
    value = row.get(column)
    return None if value is None or pd.isna(value) else int(value)


def result_of(compliance_after: str | None, after: Mapping[str, int | None]) -> str:
    """What the node is left as, from its verified state (the outcome column says what the Install did)."""
    if compliance_after == "COMPLIANT":
        return "REMEDIATED"
    if compliance_after != "NON_COMPLIANT":
        return "UNKNOWN"
    todo = (after["missing"] or 0) + (after["failed"] or 0)
    if todo == 0 and (after["pending_reboot"] or 0) > 0:
        return "PENDING_REBOOT"
    if todo == 0 and (after["rejected"] or 0) > 0:
        return "REJECTED_REMAINS"
    return "NOT_REMEDIATED"


def _records(frame: pd.DataFrame) -> dict[NodeKey, dict[str, Any]]:
    rows = frame[frame["instance_id"].notna()].astype(object).where(frame.notna(), None).to_dict("records")
    return {(r["account_id"], r["region"], r["instance_id"]): r for r in rows}


def remediation_rows(
    selected: list[dict[str, Any]],
    after_nodes: pd.DataFrame,
    installs: Mapping[NodeKey, dict[str, Any]],
    *,
    wave_of: Mapping[NodeKey, str],
    held: Mapping[str, str],
    not_sent: Mapping[NodeKey, str],
    rescanned: set[NodeKey],
    source_run_id: str,
    reboot_option: str,
) -> pd.DataFrame:
    """One row per selected node (``selected``: the source report's node rows). ``installs``: each node's Install
    invocation record; ``held``: wave -> the gate's reason; ``not_sent``: why a node got no Install."""
    after = _records(after_nodes)
    rows = []
    for before in selected:
        key = (before["account_id"], before["region"], before["instance_id"])
        wave = wave_of.get(key)
        inv = installs.get(key)
        now_row = after.get(key)
        counts_after = {name: _count(now_row, col) for name, col in COUNTS.items()}
        compliance_after = now_row.get("compliance_status") if now_row else None
        error = None
        if inv is None and wave is not None and wave in held:
            result, outcome, error = "HELD", "HELD", held[wave]
        elif inv is None:
            result, outcome = "NOT_SENT", "NOT_SENT"
            error = not_sent.get(key, "no Install was sent: the wave's install task did not run")
        else:
            result = result_of(compliance_after, counts_after)
            outcome = outcome_label(inv.get("status_details") or inv.get("status") or "") or "UNKNOWN"
            error = inv.get("error")
        installed = _total(_count(before, COUNTS["installed"]), _count(before, COUNTS["pending_reboot"]))
        installed_after = _total(counts_after["installed"], counts_after["pending_reboot"])
        gained = (
            max(0, installed_after - installed)
            if inv is not None and installed is not None and installed_after is not None
            else None
        )
        row = {
            **{k: before.get(k) for k in ("ou_id", "ou_path", "account_id", "account_name", "region")},
            "wave": wave,
            "instance_id": key[2],
            "instance_name": before.get("instance_name"),
            "platform_name": before.get("platform_name"),
            "source_run_id": source_run_id,
            "reboot_option": reboot_option,
            "command_id": inv.get("command_id") if inv else None,
            "invocation_status": inv.get("status") if inv else None,
            "invocation_status_details": inv.get("status_details") if inv else None,
            "outcome": outcome,
            "requested_at": _time(inv.get("requested_at")) if inv else None,
            "finished_at": _time(inv.get("finished_at")) if inv else None,
            "compliance_before": before.get("compliance_status"),
            "compliance_after": compliance_after,
            "patches_installed": gained,
            "reboot_needed": None if counts_after["pending_reboot"] is None else counts_after["pending_reboot"] > 0,
            "last_operation_after": now_row.get("last_operation") if now_row else None,
            "last_scan_time_after": _time(now_row.get("last_scan_time")) if now_row else None,
            "rescanned": key in rescanned,
            "result": result,
            "error": error,
        }
        for name, column in COUNTS.items():
            row[f"{name}_before"] = _count(before, column)
            row[f"{name}_after"] = counts_after[name]
        rows.append(row)
    columns = [n for n in REMEDIATION.names if n not in ("run_id", "dag_id", "snapshot_date")]
    return pd.DataFrame(rows, columns=columns)


def _sum(table: pd.DataFrame, column: str) -> int:
    return int(table[column].fillna(0).astype("int64").sum()) if len(table) else 0


def remediation_summary(table: pd.DataFrame, waves: list[dict[str, Any]], limit: int = 200) -> dict[str, Any]:
    """The ``remediation`` block of summary.json: before/after totals, results, waves and the first nodes."""
    results = table["result"].value_counts() if len(table) else pd.Series(dtype="int64")
    sent = table[table["command_id"].notna()] if len(table) else table
    node_columns = [
        "account_id", "region", "instance_id", "instance_name", "wave", "outcome", "result", "compliance_before",
        "compliance_after", "missing_before", "missing_after", "failed_before", "failed_after",
        "pending_reboot_after", "patches_installed", "reboot_needed", "rescanned", "error",
    ]  # fmt: skip
    shown = table[node_columns].head(limit).astype(object)
    return {
        "selected": len(table),
        "sent": len(sent),
        "before": {
            "non_compliant": int((table["compliance_before"] == "NON_COMPLIANT").sum()) if len(table) else 0,
            **{name: _sum(table, f"{name}_before") for name in ("missing", "failed", "pending_reboot", "rejected")},
        },
        "after": {
            "compliant": int((table["compliance_after"] == "COMPLIANT").sum()) if len(table) else 0,
            "non_compliant": int((table["compliance_after"] == "NON_COMPLIANT").sum()) if len(table) else 0,
            **{name: _sum(table, f"{name}_after") for name in ("missing", "failed", "pending_reboot", "rejected")},
        },
        "results": {r: int(results.get(r, 0)) for r in REMEDIATION_RESULTS},
        "patches_installed": _sum(table, "patches_installed"),
        "reboot_needed": int(table["reboot_needed"].fillna(False).astype(bool).sum()) if len(table) else 0,
        "rescanned": int(table["rescanned"].fillna(False).astype(bool).sum()) if len(table) else 0,
        "waves": waves,
        "nodes": shown.where(shown.notna(), None).to_dict("records"),
        "nodes_shown": min(limit, len(table)),
    }
