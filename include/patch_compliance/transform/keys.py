"""Multi-column key look-ups done in Arrow (hash lookups on one composite string key).

pandas merges on several Arrow string columns factorize every column and copy every column of both sides; for
1M-row patch tables these look-ups are 5-10x cheaper and never reorder the left side. Nulls in a key compare
equal to each other (unlike SQL joins), which is what row identity needs (a patch with no Title).
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

_NULL = "\x00"
_SEP = "\x1f"


def composite(frame: pd.DataFrame, keys: list[str]) -> pa.Array:
    parts = []
    for name in keys:
        arr = pa.array(frame[name])
        if not pa.types.is_string(arr.type):
            arr = arr.cast(pa.string())
        parts.append(pc.fill_null(arr, _NULL))
    if len(parts) == 1:
        return parts[0]
    return pc.binary_join_element_wise(*parts, _SEP)


def positions(left: pd.DataFrame, right: pd.DataFrame, keys: list[str]) -> pa.Array:
    """For each row of ``left``, the position of its key in ``right`` (the first if right repeats a key), null
    where there is no match. Aligned with ``left``; int32."""
    if len(left) == 0 or len(right) == 0:
        return pa.nulls(len(left), type=pa.int32())
    return pc.index_in(composite(left, keys), value_set=composite(right, keys))


def lookup(left: pd.DataFrame, right: pd.DataFrame, keys: list[str], column: str) -> pa.Array:
    """``right[column]`` for each row of ``left`` (matched on ``keys``; the first match if right repeats a key),
    null where there is no match. Aligned with ``left``."""
    if len(right) == 0:
        return pa.nulls(len(left), type=pa.array(right[column]).type)
    return pc.take(pa.array(right[column]), positions(left, right, keys))


def present(left: pd.DataFrame, right: pd.DataFrame, keys: list[str]) -> pd.Series:
    """Boolean mask over ``left``: does its key occur in ``right``?"""
    if len(left) == 0 or len(right) == 0:
        return pd.Series(False, index=left.index, dtype=bool)
    found = pc.is_in(composite(left, keys), value_set=composite(right, keys))
    return pd.Series(found.to_numpy(zero_copy_only=False), index=left.index, dtype=bool)
