"""The ``patches`` table: one row per node and non-compliant patch, with first_seen, age and SLA."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from include.patch_compliance.transform.normalise import (
    blank_to_null,
    normalise_severity,
    normalise_states,
    parse_time_strings,
    plus_days,
    split_cves,
    whole_days_since,
)
from include.patch_compliance.transform.raw import PATCH, keyed_items
from include.patch_compliance.transform.schema import NON_COMPLIANT_STATES, SEVERITIES
from include.patch_compliance.transform.snapshot import PreviousSnapshot

# aws_domain §1.4: KBId is not unique per node on Linux (versions/arches share it), so identity includes Title.
PATCH_KEY = ["account_id", "region", "instance_id", "kb_id", "title"]
_STATE_RANK = {s: i for i, s in enumerate(NON_COMPLIANT_STATES)}  # FAILED first: keep the worst duplicate


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
    """Non-compliant patches of every node, normalised, deduplicated, aged.

    ``scan_times`` has (t, instance_id, last_scan_time): a patch seen for the first time is dated by the scan
    that reported it (OperationEndTime), falling back to ``now``.
    """
    items = keyed_items(raw_docs, "patches", PATCH)
    state = normalise_states(items.column("State"))
    keep = pc.fill_null(pc.is_in(state, pa.array(NON_COMPLIANT_STATES)), False)
    items = items.filter(keep)
    state = state.filter(keep)
    frame = pd.DataFrame(
        {
            "t": items.column("t").to_numpy(),
            "instance_id": _arrow_series(items.column("instance_id")),
            "kb_id": _arrow_series(blank_to_null(items.column("KBId"))),
            "title": _arrow_series(blank_to_null(items.column("Title"))),
            "classification": _arrow_series(blank_to_null(items.column("Classification"))),
            "vendor_severity": _arrow_series(blank_to_null(items.column("Severity"))),
            "severity": _arrow_series(normalise_severity(items.column("Severity"))),
            "state": _arrow_series(state),
            "cve_ids": _arrow_series(split_cves(items.column("CVEIds"))),
            "installed_time": _arrow_series(parse_time_strings(items.column("InstalledTime"))),
        }
    )
    target_cols = targets.iloc[frame["t"].to_numpy()].reset_index(drop=True)
    for name in ("ou_id", "ou_path", "account_id", "account_name", "region"):
        frame[name] = target_cols[name].to_numpy() if len(frame) else target_cols[name]
        frame[name] = frame[name].astype(pd.ArrowDtype(pa.string()))
    frame["_rank"] = frame["state"].map(_STATE_RANK).astype("int64") if len(frame) else pd.Series(dtype="int64")
    frame = frame.sort_values([*PATCH_KEY, "_rank"], kind="stable").drop_duplicates(PATCH_KEY, keep="first")
    frame = frame.drop(columns="_rank")

    frame = frame.merge(scan_times, on=["t", "instance_id"], how="left")
    now_ts = pd.Timestamp(now).tz_convert("UTC")
    observed = frame["last_scan_time"].fillna(now_ts) if len(frame) else frame["last_scan_time"]
    if previous is not None and len(previous.patches):
        earlier = previous.patches[[*PATCH_KEY, "first_seen"]].rename(columns={"first_seen": "_prev_first_seen"})
        earlier = earlier.drop_duplicates(PATCH_KEY)
        frame = frame.merge(earlier, on=PATCH_KEY, how="left")
        observed = frame["_prev_first_seen"].fillna(frame["last_scan_time"]).fillna(now_ts)
        frame = frame.drop(columns="_prev_first_seen")
    frame["first_seen"] = observed.astype(pd.ArrowDtype(pa.timestamp("us", "UTC")))
    return _age(frame, now_ts, sla_days)


def _age(frame: pd.DataFrame, now: pd.Timestamp, sla_days: dict[str, int]) -> pd.DataFrame:
    age = whole_days_since(now, frame["first_seen"])
    frame["age_days"] = _arrow_series(pc.max_element_wise(age, 0))
    sla = frame["severity"].astype(object).map(sla_days).to_numpy(dtype=np.int64, na_value=0)
    frame["sla_days"] = sla
    due = plus_days(frame["first_seen"], sla)
    frame["sla_due"] = _arrow_series(due)
    # Breached once the due time (first_seen + SLA days) has passed.
    frame["sla_breached"] = _arrow_series(pc.fill_null(pc.less(due, pa.scalar(now, type=due.type)), False))
    return frame


def _arrow_series(arr: pa.Array | pa.ChunkedArray) -> pd.Series:
    return pd.Series(arr, dtype=pd.ArrowDtype(arr.type))
