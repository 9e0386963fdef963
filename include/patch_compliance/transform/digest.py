"""The alert digest: what changed in a published run since the previous published run of the same DAG.

Counts (docs/alerts.md): nodes newly non-compliant and remediated (the run's ``delta`` table), patches newly past
their SLA, CRITICAL CVEs not exposed before, account-regions unreachable now (and newly so), account-regions with a
Security Hub error. The first run of a DAG has nothing to compare with: everything it finds counts as new.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from include.patch_compliance.transform.keys import present
from include.patch_compliance.transform.normalise import map_values
from include.patch_compliance.transform.patches import PATCH_KEY
from include.patch_compliance.transform.schema import SEVERITIES
from include.patch_compliance.transform.snapshot import PreviousSnapshot

NODE_KEY = ["account_id", "region", "instance_id"]
TARGET_KEY = ["account_id", "region"]
# The counts that make a run "changed" for alerts.send: on_change.
CHANGE_COUNTS = (
    "newly_non_compliant",
    "remediated",
    "new_sla_breaches",
    "new_critical_cves",
    "new_unreachable_targets",
    "security_hub_errors",
)


def _unreachable(nodes: pd.DataFrame) -> pd.DataFrame:
    return nodes.loc[(nodes["target_status"] == "UNREACHABLE").fillna(False), TARGET_KEY].drop_duplicates()


def change_digest(
    tables: dict[str, pd.DataFrame], previous: PreviousSnapshot | None, summary: dict[str, Any], *, top: int = 10
) -> dict[str, Any]:
    """The digest of a published run from its ``nodes``, ``patches``, ``cves`` and ``delta`` tables, its summary
    and the previous snapshot it was compared with (None on the first run)."""
    nodes, patches, cves, delta = (tables[n] for n in ("nodes", "patches", "cves", "delta"))
    is_node = nodes["instance_id"].notna()
    non_compliant = is_node & (nodes["compliance_status"] == "NON_COMPLIANT").fillna(False)
    breached = patches[patches["sla_breached"].fillna(False).astype(bool)]
    critical = cves[cves["severity"] == "CRITICAL"]
    unreachable = _unreachable(nodes)
    if previous is None:
        newly = non_compliant
        remediated = 0
        new_breaches = len(breached)
        new_critical = sorted(critical["cve_id"])
        new_unreachable = len(unreachable)
    else:
        changes = delta["change"].astype(object)
        new_ids = delta.loc[changes == "NEWLY_NON_COMPLIANT", NODE_KEY]
        newly = non_compliant & present(nodes, new_ids, NODE_KEY).to_numpy()
        remediated = int((changes == "REMEDIATED").sum())
        before = previous.patches[previous.patches["sla_breached"].fillna(False).astype(bool)]
        new_breaches = int((~present(breached, before, PATCH_KEY)).sum())
        seen = (
            set(pc.list_flatten(pa.array(previous.patches["cve_ids"])).to_pylist()) if len(previous.patches) else set()
        )
        new_critical = sorted(c for c in critical["cve_id"] if c not in seen)
        new_unreachable = int((~present(unreachable, _unreachable(previous.nodes), TARGET_KEY)).sum())
    hub = summary.get("security_hub") or {}
    counts = {
        "newly_non_compliant": int(np.asarray(newly).sum()),
        "remediated": remediated,
        "new_sla_breaches": new_breaches,
        "new_critical_cves": len(new_critical),
        "new_unreachable_targets": new_unreachable,
        "security_hub_errors": int(hub.get("errors") or 0),
        "unreachable_targets": len(unreachable),
    }
    totals = summary["totals"]
    return {
        "run_id": summary["run_id"],
        "dag_id": summary["dag_id"],
        "previous_run_id": previous.run_id if previous is not None else None,
        "report_url": summary.get("report_url"),
        "changed": any(counts[c] > 0 for c in CHANGE_COUNTS),
        "counts": counts,
        "totals": {k: totals[k] for k in ("nodes", "non_compliant", "compliant_pct", "sla_breaches")},
        "new_critical_cve_ids": new_critical[:top],
        "top_nodes": top_nodes(nodes, pd.Series(np.asarray(newly), index=nodes.index), top),
        "unreachable": [f"{u['account_id']}/{u['region']}" for u in summary.get("unreachable", [])][:top],
    }


def top_nodes(nodes: pd.DataFrame, newly: pd.Series, limit: int) -> list[dict[str, Any]]:
    """Non-compliant nodes, newly non-compliant first, then the most severe missing patch, the most SLA breaches,
    the most non-compliant patches, then by account, region and id."""
    bad = nodes[(nodes["compliance_status"] == "NON_COMPLIANT").fillna(False) & nodes["instance_id"].notna()]
    if bad.empty or limit <= 0:
        return []
    rank = map_values(bad["highest_missing_severity"], {s: i for i, s in enumerate(SEVERITIES)}, len(SEVERITIES))
    ordered = bad.assign(
        _new=~newly.loc[bad.index].astype(bool),
        _rank=np.asarray(rank),
        _breaches=-bad["sla_breaches"].fillna(0).astype("int64"),
        _patches=-bad["non_compliant_patches"].fillna(0).astype("int64"),
    ).sort_values(["_new", "_rank", "_breaches", "_patches", "account_id", "region", "instance_id"], kind="stable")
    out = []
    for index, row in ordered.head(limit).iterrows():  # at most `limit` rows
        out.append(
            {
                "instance_id": row["instance_id"],
                "instance_name": None if pd.isna(row["instance_name"]) else row["instance_name"],
                "account_id": row["account_id"],
                "region": row["region"],
                "highest_missing_severity": None
                if pd.isna(row["highest_missing_severity"])
                else row["highest_missing_severity"],
                "non_compliant_patches": int(
                    0 if pd.isna(row["non_compliant_patches"]) else row["non_compliant_patches"]
                ),
                "sla_breaches": int(0 if pd.isna(row["sla_breaches"]) else row["sla_breaches"]),
                "new": bool(newly.loc[index]),
            }
        )
    return out
