"""summary.json (docs/architecture.md) and the per-run history entry the trend is built from."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from include.patch_compliance.transform.cves import top_cves
from include.patch_compliance.transform.rollups import compliant_pct
from include.patch_compliance.transform.schema import COVERAGE_STATUSES, SEVERITIES, UNRECOGNISED
from include.patch_compliance.transform.tags import by_tag

# What totals.compliant_pct is taken over: the totals field holding the denominator (every node, managed or not;
# unknown and unmanaged nodes count against it, docs/data-contract.md "Percentages").
COMPLIANT_PCT_OF = "nodes"


def _int(value: Any) -> int:
    return 0 if pd.isna(value) else int(value)


def _pct(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else round(float(value), 2)


def _iso(value: datetime) -> str:
    return pd.Timestamp(value).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def totals(tables: dict[str, pd.DataFrame]) -> dict[str, Any]:
    nodes, patches, accounts = tables["nodes"], tables["patches"], tables["accounts"]
    is_node = nodes["instance_id"].notna()
    status = nodes.loc[is_node, "compliance_status"].value_counts()
    coverage = nodes["coverage_status"].value_counts()
    severity = patches["severity"].value_counts()
    count = int(is_node.sum())
    compliant = _int(status.get("COMPLIANT", 0))
    unmanaged = _int(coverage.get("UNMANAGED", 0))
    return {
        "nodes": count,
        "managed": count - unmanaged,
        "unmanaged": unmanaged,
        "compliant_pct_of": COMPLIANT_PCT_OF,
        "compliant": compliant,
        "non_compliant": _int(status.get("NON_COMPLIANT", 0)),
        "unknown": _int(status.get("UNKNOWN", 0)),
        "compliant_pct": _pct(compliant_pct([compliant], [count])[0]),
        "unreachable_targets": _int(coverage.get("UNREACHABLE", 0)),
        "targets": len(accounts),
        "sla_breaches": int(patches["sla_breached"].sum()),
        "coverage": {c: _int(coverage.get(c, 0)) for c in COVERAGE_STATUSES},
        "severity": {s: _int(severity.get(s, 0)) for s in SEVERITIES},
    }


def by_ou(accounts: pd.DataFrame, *, with_sla: bool = False) -> list[dict[str, Any]]:
    cols = ["nodes", "compliant", "non_compliant", *(["sla_breaches"] if with_sla else [])]
    grouped = accounts.groupby(["ou_id", "ou_path"], observed=True, dropna=False)[cols].sum().reset_index()
    grouped = grouped.sort_values(["ou_path", "ou_id"])
    pct = compliant_pct(grouped["compliant"], grouped["nodes"])
    rows = []
    for (_, row), share in zip(grouped.iterrows(), pct, strict=True):  # one row per OU: a handful
        item = {"ou_id": row["ou_id"], "ou_path": row["ou_path"], **{c: _int(row[c]) for c in cols[:3]}}
        item["compliant_pct"] = _pct(share)
        if with_sla:
            item["sla_breaches"] = _int(row["sla_breaches"])
        rows.append(item)
    return rows


def worst_accounts(accounts: pd.DataFrame, limit: int = 10) -> list[dict[str, Any]]:
    """Account-regions with nodes, lowest compliant % first (then most non-compliant nodes)."""
    with_nodes = accounts[accounts["nodes"] > 0]
    ordered = with_nodes.sort_values(
        ["compliant_pct", "non_compliant", "account_id", "region"], ascending=[True, False, True, True]
    ).head(limit)
    keys = ("account_id", "account_name", "ou_path", "region")
    return [
        {
            **{k: row[k] for k in keys},
            "nodes": _int(row["nodes"]),
            "non_compliant": _int(row["non_compliant"]),
            "compliant_pct": _pct(row["compliant_pct"]),
        }
        for _, row in ordered.iterrows()
    ]


def unreachable_targets(nodes: pd.DataFrame) -> list[dict[str, Any]]:
    """Every account-region that could not be read: who, where, at which stage and with which error code."""
    down = nodes[(nodes["target_status"] == "UNREACHABLE").fillna(False)].sort_values(["account_id", "region"])
    keys = ("account_id", "account_name", "ou_path", "region", "wave")
    return [
        {
            **{k: _text(row[k]) for k in keys},
            "stage": _text(row["target_error_stage"]),
            "error_code": _text(row["target_error"]),
        }
        for _, row in down.iterrows()  # one row per unreachable target: a handful
    ]


def _text(value: Any) -> str | None:
    return None if value is None or pd.isna(value) else str(value)


def unrecognised_counts(tables: dict[str, pd.DataFrame]) -> dict[str, dict[str, int]]:
    """``{"<table>.<column>": {"<value as AWS sent it>": rows}}`` from the tables' ``unrecognised`` lists."""
    out: dict[str, dict[str, int]] = {}
    for name in sorted(tables):
        frame = tables[name]
        if UNRECOGNISED not in frame or frame.empty:
            continue
        flat = pc.list_flatten(pa.array(frame[UNRECOGNISED]))
        if not len(flat):
            continue
        for item in pc.value_counts(flat).to_pylist():
            column, _, value = item["values"].partition("=")
            out.setdefault(f"{name}.{column}", {})[value] = int(item["counts"])
    return {field: dict(sorted(values.items())) for field, values in sorted(out.items())}


def trend_point(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: entry.get(k) for k in ("run_id", "snapshot_date", "nodes", "compliant_pct")}


def _order(entry: dict[str, Any]) -> tuple[str, str, str]:
    return (str(entry.get("snapshot_date")), str(entry.get("generated_at") or ""), str(entry.get("run_id")))


def summarize(
    tables: dict[str, pd.DataFrame],
    *,
    run_id: str,
    dag_id: str,
    snapshot_date: date,
    generated_at: datetime,
    history: list[dict[str, Any]] | None = None,
    security_hub: dict[str, int] | None = None,
    report_url: str | None = None,
    table_uris: dict[str, str] | None = None,
    trend_runs: int = 30,
    worst: int = 10,
    skipped: list[dict[str, Any]] | None = None,
    group_by_tags: list[str] | tuple[str, ...] = (),
    top: int = 10,
) -> dict[str, Any]:
    """summary.json exactly as docs/architecture.md describes it. ``history`` holds earlier runs' history entries
    (``load_history``); the trend is those (minus this run, if re-run) plus this run, oldest first, at most
    ``trend_runs`` points. ``generated_at`` is passed in so a re-publish of the same run is byte-identical.
    ``skipped`` are the plan's accounts left out (suspended, excluded, in no wave), listed as they are.
    ``group_by_tags`` (reports.group_by_tags) gives ``by_tag``; ``top_cves`` holds the ``top`` CVEs by nodes."""
    total = totals(tables)
    current = {
        "run_id": run_id,
        "snapshot_date": snapshot_date.isoformat(),
        "generated_at": _iso(generated_at),
        "nodes": total["nodes"],
        "compliant_pct": total["compliant_pct"],
    }
    earlier = [h for h in (history or []) if h.get("run_id") != run_id and h.get("dag_id", dag_id) == dag_id]
    points = sorted([*earlier, current], key=_order)[-trend_runs:]
    return {
        "run_id": run_id,
        "dag_id": dag_id,
        "snapshot_date": snapshot_date.isoformat(),
        "generated_at": _iso(generated_at),
        "report_url": report_url,
        "totals": total,
        "by_ou": by_ou(tables["accounts"]),
        "worst_accounts": worst_accounts(tables["accounts"], worst),
        "top_cves": top_cves(tables["cves"], top),
        "by_tag": by_tag(tables["nodes"], group_by_tags),
        "trend": [trend_point(p) for p in points],
        "unreachable": unreachable_targets(tables["nodes"]),
        "skipped": [dict(s) for s in skipped or []],
        "unrecognised": unrecognised_counts(tables),
        "security_hub": security_hub,
        "tables": dict(table_uris or {}),
    }


def history_entry(summary: dict[str, Any], tables: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """What a later run needs from this one: its trend point, per-OU figures with SLA breaches (for
    fleet_daily) and where its tables are (for the previous snapshot)."""
    return {
        "run_id": summary["run_id"],
        "dag_id": summary["dag_id"],
        "snapshot_date": summary["snapshot_date"],
        "generated_at": summary["generated_at"],
        "nodes": summary["totals"]["nodes"],
        "compliant": summary["totals"]["compliant"],
        "compliant_pct": summary["totals"]["compliant_pct"],
        "sla_breaches": summary["totals"]["sla_breaches"],
        "by_ou": by_ou(tables["accounts"], with_sla=True),
        "tables": summary["tables"],
    }


__all__ = [
    "by_ou",
    "history_entry",
    "summarize",
    "totals",
    "unreachable_targets",
    "unrecognised_counts",
    "worst_accounts",
]
