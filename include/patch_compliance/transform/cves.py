"""The ``cves`` table: one row per CVE id the run's non-compliant patches carry, with its exposure.

Built from the dated ``patches`` table alone (both the whole-run and the staged path call it on the same frame), so
it needs no staging of its own. A patch row with several CVE ids counts towards each of them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from include.patch_compliance.transform.keys import composite
from include.patch_compliance.transform.normalise import map_values
from include.patch_compliance.transform.schema import CVES, SEVERITIES, empty_frame

NODE = ["account_id", "region", "instance_id"]
# List columns of the table -> the patches column whose distinct values (sorted, nulls left out) they hold.
LISTS = {"account_ids": "account_id", "ou_paths": "ou_path", "kb_ids": "kb_id", "titles": "title"}


def cve_rows(patches: pd.DataFrame) -> pd.DataFrame:
    """The CVE rollup of a dated patches frame (first_seen, age_days and sla_breached set), sorted by cve_id."""
    cves = pa.array(patches["cve_ids"]) if len(patches) else pa.array([], type=pa.list_(pa.string()))
    flat = pc.list_flatten(cves)
    if not len(flat):
        return empty_frame(CVES).drop(columns=["run_id", "dag_id", "snapshot_date"])
    rows = pc.list_parent_indices(cves)
    rank = map_values(patches["severity"], {s: i for i, s in enumerate(SEVERITIES)}, len(SEVERITIES) - 1)
    exploded = pa.table(
        {
            "cve_id": flat,
            "node": pc.take(composite(patches, NODE), rows),
            "rank": pc.take(pa.array(np.asarray(rank, dtype=np.int64)), rows),
            "breached": pc.take(pa.array(patches["sla_breached"]).cast(pa.int64()), rows),
            "first_seen": pc.take(pa.array(patches["first_seen"]), rows),
            "age_days": pc.take(pa.array(patches["age_days"]), rows),
            **{column: pc.take(pa.array(patches[column]), rows) for column in LISTS.values()},
        }
    )
    exploded = exploded.filter(pc.invert(pc.fill_null(pc.equal(exploded.column("cve_id"), ""), True)))
    only_valid = pc.CountOptions(mode="only_valid")
    totals = exploded.group_by("cve_id").aggregate(
        [
            ("node", "count_distinct", only_valid),
            ("account_id", "count_distinct", only_valid),
            ("rank", "min"),
            ("breached", "sum"),
            ("breached", "count"),
            ("first_seen", "min"),
            ("age_days", "max"),
        ]
    )
    frame = totals.to_pandas(types_mapper=pd.ArrowDtype).rename(
        columns={
            "node_count_distinct": "nodes",
            "account_id_count_distinct": "accounts",
            "breached_sum": "sla_breaches",
            "breached_count": "patches",
            "first_seen_min": "first_seen",
            "age_days_max": "max_age_days",
        }
    )
    frame["severity"] = np.asarray(SEVERITIES, dtype=object)[frame.pop("rank_min").to_numpy(dtype=np.int64)]
    for name, column in LISTS.items():
        frame = frame.merge(_distinct_sorted(exploded, column, name), on="cve_id", how="left")
    return frame.sort_values("cve_id", kind="stable").reset_index(drop=True)


def _distinct_sorted(exploded: pa.Table, column: str, name: str) -> pd.DataFrame:
    """cve_id -> the sorted distinct non-null values of ``column`` as a list (one ordered pass, no Python loop).
    The (cve_id, value) pairs are made distinct before sorting: far fewer rows than patches to sort."""
    pairs = exploded.select(["cve_id", column]).group_by(["cve_id", column]).aggregate([])
    ordered = pairs.sort_by([("cve_id", "ascending"), (column, "ascending")])
    grouped = ordered.group_by("cve_id", use_threads=False).aggregate(
        [(column, "distinct", pc.CountOptions(mode="only_valid"))]
    )
    return grouped.rename_columns(["cve_id", name]).to_pandas(types_mapper=pd.ArrowDtype)


def top_cves(cves: pd.DataFrame, limit: int = 10) -> list[dict]:
    """summary.json ``top_cves``: the CVEs on the most nodes (then the most severe, then by id)."""
    if cves.empty:
        return []
    rank = map_values(cves["severity"], {s: i for i, s in enumerate(SEVERITIES)}, len(SEVERITIES) - 1)
    ordered = cves.assign(_rank=np.asarray(rank)).sort_values(
        ["nodes", "_rank", "cve_id"], ascending=[False, True, True], kind="stable"
    )
    out = []
    for _, row in ordered.head(limit).iterrows():  # at most `limit` rows
        first_seen = row["first_seen"]
        out.append(
            {
                "cve_id": row["cve_id"],
                "severity": row["severity"],
                "nodes": int(row["nodes"]),
                "accounts": int(row["accounts"]),
                "patches": int(row["patches"]),
                "sla_breaches": int(row["sla_breaches"]),
                "first_seen": None if pd.isna(first_seen) else first_seen.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "max_age_days": None if pd.isna(row["max_age_days"]) else int(row["max_age_days"]),
                "kb_ids": list(row["kb_ids"]),
                "titles": list(row["titles"]),
                "account_ids": list(row["account_ids"]),
                "ou_paths": list(row["ou_paths"]),
            }
        )
    return out
