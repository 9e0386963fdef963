"""The ``patches`` table: one row per node and non-compliant patch, with first_seen, age and SLA."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from include.patch_compliance.transform.keys import lookup, positions
from include.patch_compliance.transform.normalise import (
    blank_to_null,
    map_values,
    normalise_enum,
    normalise_severity,
    parse_time_strings,
    patch_state,
    plus_days,
    split_cves,
    take_targets,
    unrecognised_list,
    unrecognised_severity,
    whole_days_since,
)
from include.patch_compliance.transform.raw import PATCH, TARGET_FIELDS, keyed_items
from include.patch_compliance.transform.schema import (
    NON_COMPLIANT_STATES,
    PATCH_STATES,
    SEVERITIES,
    TS,
    UNKNOWN_VALUE,
    UNRECOGNISED,
)
from include.patch_compliance.transform.snapshot import PreviousSnapshot

# docs/aws-behaviours.md §7: KBId is not unique per node on Linux (versions/arches share it), so identity includes
# Title.
PATCH_KEY = ["account_id", "region", "instance_id", "kb_id", "title"]
# Set by date_patches: each row's position in the previous snapshot's patches (null: not there). The delta reads
# it instead of matching the two tables a second time; it is not a table column (conform drops it).
PREVIOUS_ROW = "_previous_row"
_STATE_RANK = {s: i for i, s in enumerate(NON_COMPLIANT_STATES)}  # FAILED first: keep the worst duplicate
_SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}


def check_sla_days(sla_days: dict[str, int]) -> dict[str, int]:
    missing = [s for s in SEVERITIES if s not in sla_days]
    bad = {k: v for k, v in sla_days.items() if not isinstance(v, int) or isinstance(v, bool) or v < 0}
    if missing or bad:
        raise ValueError(
            f"sla_days needs a non-negative int for each of {', '.join(SEVERITIES)} "
            f"(thresholds.sla_days); missing {missing}, invalid {bad}"
        )
    return sla_days


def patch_rows(
    raw_docs: list[dict],
    targets: pd.DataFrame,
    scan_times: pd.DataFrame,
    previous: PreviousSnapshot | None,
    *,
    now: datetime,
    sla_days: dict[str, int],
) -> pd.DataFrame:
    """Non-compliant patches of every node, normalised, deduplicated, aged. A patch in a state AWS may have
    added since (not in PATCH_STATES) is kept as state UNKNOWN (it is not shown to be compliant) with the raw
    state in its ``unrecognised`` list; an unrecognised vendor severity is UNSPECIFIED and listed there too.

    ``scan_times`` has (t, instance_id, last_scan_time, counts_available_security): a patch seen for the first
    time is dated by the scan that reported it (OperationEndTime), falling back to ``now``; AVAILABLE_SECURITY_UPDATE
    patches are kept on the nodes whose baseline counts them as non-compliant.
    """
    items = keyed_items(raw_docs, "patches", PATCH)
    state, raw_state = normalise_enum(items.column("State"), PATCH_STATES, patch_state)
    keep = pc.fill_null(pc.is_in(state, pa.array([*NON_COMPLIANT_STATES, UNKNOWN_VALUE])), False)
    # AVAILABLE_SECURITY_UPDATE rows are non-compliant where the node's baseline says so (aws-behaviours §37).
    owners = pd.DataFrame({"t": items.column("t").to_numpy(), "instance_id": items.column("instance_id").to_pylist()})
    counted = pc.fill_null(lookup(owners, scan_times, ["t", "instance_id"], "counts_available_security"), False)
    available = pc.and_(pc.fill_null(pc.equal(state, "AVAILABLE_SECURITY_UPDATE"), False), counted)
    keep = pc.or_(keep, available)
    items = items.filter(keep)
    state, raw_state = state.filter(keep), raw_state.filter(keep)
    t = items.column("t").combine_chunks()
    columns = {
        "t": t,
        **take_targets(targets, t.to_numpy(), list(TARGET_FIELDS)),
        "instance_id": items.column("instance_id").combine_chunks(),
        "kb_id": blank_to_null(items.column("KBId")),
        "title": blank_to_null(items.column("Title")),
        "classification": blank_to_null(items.column("Classification")),
        "vendor_severity": blank_to_null(items.column("Severity")),
        "severity": normalise_severity(items.column("Severity")),
        "state": state,
        "cve_ids": split_cves(items.column("CVEIds")),
        "installed_time": parse_time_strings(items.column("InstalledTime"), "patches[].InstalledTime"),
        UNRECOGNISED: unrecognised_list(
            len(t), {"state": raw_state, "severity": unrecognised_severity(items.column("Severity"))}
        ),
    }
    table = _dedupe(pa.table({k: pa.array(v) if isinstance(v, pd.Series) else v for k, v in columns.items()}))
    frame = table.to_pandas(types_mapper=pd.ArrowDtype)
    frame["t"] = frame["t"].to_numpy(dtype="int64")

    frame["last_scan_time"] = _arrow_series(lookup(frame, scan_times, ["t", "instance_id"], "last_scan_time").cast(TS))
    return date_patches(frame, previous, now=now, sla_days=sla_days)


def date_patches(
    frame: pd.DataFrame, previous: PreviousSnapshot | None, *, now: datetime, sla_days: dict[str, int]
) -> pd.DataFrame:
    """first_seen (carried from the previous snapshot, else the node's ``last_scan_time``, else ``now``), age and
    SLA columns, and ``PREVIOUS_ROW``. The report step runs it on the staged patches of every shard, with the
    previous snapshot."""
    now_ts = pd.Timestamp(now).tz_convert("UTC")
    observed = pa.array(frame["last_scan_time"]).cast(TS)
    if previous is not None and len(previous.patches):
        position = positions(frame, previous.patches, PATCH_KEY)
        carried = pc.take(pa.array(previous.patches["first_seen"]), position).cast(TS)
        observed = pc.coalesce(carried, observed)
    else:
        position = pa.nulls(len(frame), type=pa.int32())
    frame[PREVIOUS_ROW] = _arrow_series(position)
    frame["first_seen"] = _arrow_series(pc.coalesce(observed, pa.scalar(now_ts, type=TS)))
    return _age(frame, now_ts, sla_days)


def _dedupe(table: pa.Table) -> pa.Table:
    """One row per PATCH_KEY, sorted by PATCH_KEY: a sort of the key columns, then an adjacent-row comparison,
    then a single take of every column. Among duplicates the worst state wins, then the most severe severity,
    then the remaining columns decide, so the result never depends on the order AWS listed the items in."""
    if table.num_rows == 0:
        return table
    tiebreak = {
        "_rank": pa.array(map_values(table.column("state"), _STATE_RANK, len(_STATE_RANK))),
        "_severity": pa.array(map_values(table.column("severity"), _SEVERITY_RANK, len(_SEVERITY_RANK))),
        "_vendor": table.column("vendor_severity"),
        "_classification": table.column("classification"),
        "_installed": table.column("installed_time"),
        "_cves": pc.binary_join(table.column("cve_ids"), ","),
        "_unrecognised": pc.binary_join(table.column(UNRECOGNISED), ","),
    }
    keys = table.select(PATCH_KEY)
    for name, column in tiebreak.items():
        keys = keys.append_column(name, column)
    order = pc.sort_indices(keys, sort_keys=[(k, "ascending") for k in keys.column_names])
    ordered = keys.select(PATCH_KEY).take(order)
    first = np.ones(table.num_rows, dtype=bool)
    changed = np.zeros(table.num_rows - 1, dtype=bool)
    for name in PATCH_KEY:
        col = pc.fill_null(ordered.column(name).combine_chunks(), "\x00")  # nulls compare equal to each other
        changed |= pc.not_equal(col.slice(1), col.slice(0, len(col) - 1)).to_numpy(zero_copy_only=False)
    first[1:] = changed
    return table.take(order.filter(pa.array(first)))


def _age(frame: pd.DataFrame, now: pd.Timestamp, sla_days: dict[str, int]) -> pd.DataFrame:
    age = whole_days_since(now, frame["first_seen"])
    frame["age_days"] = _arrow_series(pc.max_element_wise(age, 0))
    sla = map_values(frame["severity"], sla_days, sla_days["UNSPECIFIED"])
    frame["sla_days"] = sla
    due = plus_days(frame["first_seen"], sla)
    frame["sla_due"] = _arrow_series(due)
    # Breached once the due time (first_seen + SLA days) has passed.
    frame["sla_breached"] = _arrow_series(pc.fill_null(pc.less(due, pa.scalar(now, type=due.type)), False))
    return frame


def _arrow_series(arr: pa.Array | pa.ChunkedArray) -> pd.Series:
    return pd.Series(arr, dtype=pd.ArrowDtype(arr.type))
