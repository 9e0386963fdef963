"""The report tables as the Security Hub step reads them: Arrow, one account's rows at a time.

The step never turns a whole fleet's ``nodes`` or ``patches`` into Python objects: the table stays columnar
(Arrow-backed frames convert without a copy), each account's rows are a contiguous slice, and only the slice
of the account being published becomes dicts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

log = logging.getLogger(__name__)

Target = tuple[str, str]
Slices = dict[str, tuple[int, int]]


def as_arrow(frame: pd.DataFrame | pa.Table, columns: tuple[str, ...], name: str) -> pa.Table:
    """The table as Arrow, naive timestamps marked UTC (our tables' convention). A column of mixed Python
    objects Arrow cannot type is kept as text."""
    if isinstance(frame, pd.DataFrame):
        try:
            table = pa.Table.from_pandas(frame, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
            table = pa.table({str(name): _column(frame[name]) for name in frame.columns})
    elif isinstance(frame, pa.Table):
        table = frame
    else:
        raise TypeError(f"{name} must be the {name} report table (pandas or Arrow), got {type(frame).__name__}")
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise ValueError(
            f"{name} table lacks columns {missing}; pass the {name} table built by transform.build_tables "
            f"(transform/schema.py)"
        )
    for index, column in enumerate(table.schema):
        if pa.types.is_timestamp(column.type) and column.type.tz is None:
            table = table.set_column(
                index, column.name, table.column(index).cast(pa.timestamp(column.type.unit, "UTC"))
            )
    return table.replace_schema_metadata(None)


def _column(series: pd.Series) -> pa.Array:
    values = [_clean(v) for v in series.tolist()]
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())


def by_account(table: pa.Table) -> tuple[pa.Table, Slices]:
    """The table with each account's rows next to each other, and (offset, length) per account. Our tables are
    sorted by (ou_path,) account_id already, so this is a check; anything else is sorted once."""
    slices = _account_runs(table)
    if slices is None:
        table = table.sort_by([("account_id", "ascending")])
        slices = _account_runs(table)
    return table, slices or {}


def _account_runs(table: pa.Table) -> Slices | None:
    """(offset, length) per account, or None when some account's rows are not contiguous."""
    if not table.num_rows:
        return {}
    encoded = pc.run_end_encode(table["account_id"].combine_chunks())
    accounts = [str(a) for a in encoded.values.to_pylist()]
    if len(accounts) != len(set(accounts)):
        return None
    ends = encoded.run_ends.to_pylist()
    return {a: (start, end - start) for a, start, end in zip(accounts, [0, *ends[:-1]], ends, strict=True)}


def rows(table: pa.Table, where: tuple[int, int] | None) -> list[dict]:
    """One account's rows as plain dicts (missing values None, aware datetimes, lists as lists)."""
    return table.slice(*where).to_pylist() if where else []


def targets_of(
    node_rows: list[dict], scanned_targets: Iterable[Target]
) -> tuple[dict[Target, list[dict]], set[Target]]:
    """Node rows per (account, region), and the targets that were not collected (a row with no instance_id)."""
    targets: dict[Target, list[dict]] = {(a, r): [] for a, r in scanned_targets}
    uncollected: set[Target] = set()
    seen: set[tuple[str, str, str]] = set()
    for row in node_rows:
        key = (row["account_id"], row["region"])
        targets.setdefault(key, [])
        if row["instance_id"] is None:
            uncollected.add(key)
        elif (*key, row["instance_id"]) in seen:
            log.warning("nodes table lists %s/%s/%s twice; using the first row", *key, row["instance_id"])
        else:
            seen.add((*key, row["instance_id"]))
            targets[key].append(row)
    return targets, uncollected


def _clean(value: Any) -> Any:
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_clean(v) for v in value]
    if value is None:
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        return value
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    if isinstance(value, np.integer):
        return int(value)
    return value
