"""fleet_daily: one row per day and OU (nodes, compliant %, SLA breaches) for the trends DAG."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import pandas as pd

from include.patch_compliance.transform.rollups import compliant_pct
from include.patch_compliance.transform.schema import FLEET_DAILY, conform, empty_frame


def fleet_daily(history: Sequence[dict[str, Any]] | Sequence[pd.DataFrame]) -> pd.DataFrame:
    """From history entries (``load_history``; summary.json dicts work too, without SLA figures) or from nodes
    tables. When a day has several runs, the last one wins: the latest ``generated_at`` for entries, the last
    frame given for nodes tables."""
    if not history:
        return empty_frame(FLEET_DAILY)
    if all(isinstance(h, pd.DataFrame) for h in history):
        return _from_nodes(list(history))
    if all(isinstance(h, dict) for h in history):
        return _from_entries(list(history))
    raise TypeError("fleet_daily takes a list of history entries (dicts) or a list of nodes DataFrames, not a mix")


def _from_entries(entries: list[dict[str, Any]]) -> pd.DataFrame:
    rows = []
    for entry in entries:  # one entry per run (tens), one row per OU
        for ou in entry.get("by_ou") or []:
            rows.append(
                {
                    "snapshot_date": date.fromisoformat(str(entry["snapshot_date"])),
                    "_order": str(entry.get("generated_at") or ""),
                    "run_id": entry["run_id"],
                    "ou_id": ou["ou_id"],
                    "ou_path": ou["ou_path"],
                    "nodes": ou["nodes"],
                    "compliant": ou["compliant"],
                    "sla_breaches": ou.get("sla_breaches"),
                }
            )
    if not rows:
        return empty_frame(FLEET_DAILY)
    frame = pd.DataFrame(rows).sort_values(["snapshot_date", "_order", "run_id"])
    last_run = frame.groupby("snapshot_date")["run_id"].transform("last")
    frame = frame[frame["run_id"] == last_run].drop(columns="_order")
    frame["compliant_pct"] = compliant_pct(frame["compliant"], frame["nodes"])
    frame["sla_breaches"] = frame["sla_breaches"].astype("Int64")
    return conform(frame, FLEET_DAILY)


def _from_nodes(tables: list[pd.DataFrame]) -> pd.DataFrame:
    nodes = pd.concat([t.assign(_order=i) for i, t in enumerate(tables)], ignore_index=True)
    last = nodes.groupby("snapshot_date")["_order"].transform("max")
    nodes = nodes[nodes["_order"] == last]
    is_node = nodes["instance_id"].notna()
    parts = pd.DataFrame(
        {
            "snapshot_date": nodes["snapshot_date"],
            "ou_id": nodes["ou_id"],
            "ou_path": nodes["ou_path"],
            "run_id": nodes["run_id"],
            "nodes": is_node.astype("int64"),
            "compliant": (is_node & (nodes["compliance_status"] == "COMPLIANT")).astype("int64"),
            "sla_breaches": nodes["sla_breaches"].fillna(0).astype("int64"),
        }
    )
    frame = (
        parts.groupby(["snapshot_date", "ou_id", "ou_path", "run_id"], observed=True, dropna=False).sum().reset_index()
    )
    frame["compliant_pct"] = compliant_pct(frame["compliant"], frame["nodes"])
    return conform(frame, FLEET_DAILY)
