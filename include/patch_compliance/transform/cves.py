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
from include.patch_compliance.transform.normalise import combine_chunks, map_values
from include.patch_compliance.transform.schema import CVES, SEVERITIES, empty_frame

NODE = ["account_id", "region", "instance_id"]
# List columns of the table -> the patches column whose distinct values (sorted, nulls left out) they hold.
LISTS = {"account_ids": "account_id", "ou_paths": "ou_path", "kb_ids": "kb_id", "titles": "title"}


def cve_rows(patches: pd.DataFrame) -> pd.DataFrame:
    """The CVE rollup of a dated patches frame (first_seen, age_days and sla_breached set), sorted by cve_id."""
    cves = _combined(patches["cve_ids"]) if len(patches) else pa.array([], type=pa.list_(pa.string()))
    flat = pc.list_flatten(cves)
    named = pc.fill_null(pc.not_equal(flat, ""), False)  # an empty or null id names no CVE
    flat, rows = flat.filter(named), pc.list_parent_indices(cves).filter(named)
    if not len(flat):
        return empty_frame(CVES).drop(columns=["run_id", "dag_id", "snapshot_date"])
    # Strings are ranked once; grouping, counting and sorting then run on integers (the exploded rows are several
    # times the patch rows, and hashing or sorting their strings was most of the report step's time).
    cve_rank, cve_ids = _ranks(flat)
    cve = cve_rank.to_numpy()
    rank = map_values(patches["severity"], {s: i for i, s in enumerate(SEVERITIES)}, len(SEVERITIES) - 1)
    exploded = pa.table(
        {
            "cve": cve_rank,
            "rank": pc.take(pa.array(np.asarray(rank, dtype=np.int64)), rows),
            "breached": pc.take(pa.array(patches["sla_breached"]).cast(pa.int64()), rows),
            "first_seen": pc.take(pa.array(patches["first_seen"]), rows),
            "age_days": pc.take(pa.array(patches["age_days"]), rows),
        }
    )
    totals = (
        exploded.group_by("cve")
        .aggregate(
            [
                ("rank", "min"),
                ("breached", "sum"),
                ("breached", "count"),
                ("first_seen", "min"),
                ("age_days", "max"),
            ]
        )
        .sort_by("cve")
    )
    frame = pd.DataFrame(
        {
            "cve_id": _series(cve_ids),  # the ranks are 0..n-1 in cve_id order, one group each
            "nodes": _distinct_counts(cve, len(cve_ids), _codes(composite(patches, NODE)), rows),
            "accounts": _distinct_counts(cve, len(cve_ids), _codes(pa.array(patches["account_id"])), rows),
            "sla_breaches": _series(totals.column("breached_sum")),
            "patches": _series(totals.column("breached_count")),
            "first_seen": _series(totals.column("first_seen_min")),
            "max_age_days": _series(totals.column("age_days_max")),
            "severity": np.asarray(SEVERITIES, dtype=object)[totals.column("rank_min").to_numpy()],
        }
    )
    for name, column in LISTS.items():
        value_rank, distinct = _ranks(_combined(patches[column]))
        pairs = _distinct_pairs(cve, pc.take(value_rank, rows))
        counts = np.bincount(pairs // _WIDTH, minlength=len(cve_ids))
        offsets = pa.array(np.concatenate([[0], np.cumsum(counts)]).astype(np.int32))
        frame[name] = _series(pa.ListArray.from_arrays(offsets, distinct.take(pa.array(pairs % _WIDTH))))
    return frame


# A (CVE, value) pair as one int64: CVE rank * _WIDTH + value code; codes are int32, so they fit below _WIDTH.
_WIDTH = 2**32


def _distinct_pairs(cve: np.ndarray, values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """The distinct (cve, value) pairs of the rows with a value, encoded and sorted (sorted by CVE, then value).
    Integers sorted with numpy, then adjacent duplicates dropped: far cheaper than hashing or sorting strings."""
    value = _combined(values)
    valid = pc.is_valid(value).to_numpy(zero_copy_only=False)
    keys = np.sort(cve[valid].astype(np.int64) * _WIDTH + value.filter(valid).to_numpy().astype(np.int64))
    keep = np.ones(len(keys), dtype=bool)
    keep[1:] = keys[1:] != keys[:-1]
    return keys[keep]


def _distinct_counts(cve: np.ndarray, cves: int, codes: pa.Array, rows: pa.Array) -> pd.Series:
    """Per CVE rank, how many distinct codes its rows carry (nulls not counted)."""
    counts = np.bincount(_distinct_pairs(cve, pc.take(codes, rows)) // _WIDTH, minlength=cves)
    return pd.Series(counts.astype(np.int64), dtype=pd.ArrowDtype(pa.int64()))


def _combined(values: pd.Series | pa.Array | pa.ChunkedArray) -> pa.Array:
    return combine_chunks(pa.array(values) if isinstance(values, pd.Series) else values)


def _codes(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """An int32 code per value, equal values equal codes (a hash pass, no sort); null stays null."""
    return pc.dictionary_encode(_combined(values)).indices


def _series(arr: pa.Array | pa.ChunkedArray) -> pd.Series:
    return pd.Series(arr, dtype=pd.ArrowDtype(arr.type))


def _ranks(values: pa.Array) -> tuple[pa.Array, pa.Array]:
    """(each value's position among the sorted distinct values, those sorted distinct values); null stays null."""
    encoded = pc.dictionary_encode(values)
    order = pc.sort_indices(encoded.dictionary).to_numpy()
    position = np.empty(len(order), dtype=np.int64)
    position[order] = np.arange(len(order), dtype=np.int64)
    return pc.take(pa.array(position), encoded.indices), encoded.dictionary.take(pa.array(order))


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
