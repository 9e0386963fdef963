"""The ``accounts`` rollup: per OU / account / region counts by compliance, coverage and severity."""

from __future__ import annotations

import numpy as np
import pandas as pd

from include.patch_compliance.transform.schema import COVERAGE_STATUSES, SEVERITIES

GROUP = ["ou_id", "ou_path", "account_id", "account_name", "region"]


def compliant_pct(compliant: pd.Series | np.ndarray, nodes: pd.Series | np.ndarray) -> np.ndarray:
    """Compliant share of all nodes (unknown and unmanaged ones count against it), in percent with 2 decimals;
    NaN where there are no nodes."""
    compliant = np.asarray(compliant, dtype="float64")
    nodes = np.asarray(nodes, dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = np.where(nodes > 0, compliant * 100.0 / nodes, np.nan)
    return np.round(pct, 2)


def account_rows(nodes: pd.DataFrame, patches: pd.DataFrame, targets: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per target (account-region) with its OU; targets without nodes get zero counts."""
    is_node = nodes["instance_id"].notna()
    parts = pd.DataFrame(
        {
            **{name: nodes[name] for name in GROUP},
            "nodes": is_node.astype("int64"),
            "compliant": (is_node & (nodes["compliance_status"] == "COMPLIANT")).astype("int64"),
            "non_compliant": (is_node & (nodes["compliance_status"] == "NON_COMPLIANT")).astype("int64"),
            "unknown": (is_node & (nodes["compliance_status"] == "UNKNOWN")).astype("int64"),
            "unreachable_targets": (nodes["coverage_status"] == "UNREACHABLE").astype("int64"),
            **{
                f"coverage_{c.lower()}": (nodes["coverage_status"] == c).astype("int64")
                for c in COVERAGE_STATUSES
                if c != "UNREACHABLE"
            },
            "sla_breaches": nodes["sla_breaches"].fillna(0).astype("int64"),
        }
    )
    rollup = parts.groupby(GROUP, sort=False, dropna=False, observed=True).sum().reset_index()
    if targets is not None and len(targets):
        everyone = targets[GROUP].drop_duplicates(["account_id", "region"])
        rollup = everyone.merge(rollup, on=GROUP, how="left")
        counts = [c for c in parts.columns if c not in GROUP]
        rollup[counts] = rollup[counts].fillna(0).astype("int64")
    if len(patches):
        severity = patches.groupby(["account_id", "region", "severity"], observed=True).size().unstack("severity")
        severity = severity.reindex(columns=list(SEVERITIES)).fillna(0).astype("int64")
        severity.columns = [f"missing_{s.lower()}" for s in SEVERITIES]
        rollup = rollup.merge(severity.reset_index(), on=["account_id", "region"], how="left")
    for s in SEVERITIES:
        name = f"missing_{s.lower()}"
        rollup[name] = rollup[name].fillna(0).astype("int64") if name in rollup else 0
    rollup["compliant_pct"] = compliant_pct(rollup["compliant"], rollup["nodes"])
    return rollup
