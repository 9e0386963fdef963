"""Vectorised normalisation of API values as collect passed them through (docs/aws-behaviours.md §7-§10).

Raw documents hold AWS item dicts exactly as the APIs returned them, so every quirk is fixed here:
CamelCase and UPPER_SNAKE patch states, empty strings for "no value", epoch-0 timestamps, CVEIds as one
comma-separated string. Work is done on Arrow arrays (value mapping on the dictionary of distinct values, never
a Python loop over rows).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from include.patch_compliance.transform.schema import SEVERITIES, STR_LIST, TS, UNKNOWN_VALUE, VENDOR_SEVERITY

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_EMPTY_LIST = pa.scalar([], type=STR_LIST)
SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}  # 0 = most severe


def map_distinct(arr: pa.Array | pa.ChunkedArray, func: Callable[[str], str | None]) -> pa.Array:
    """Apply ``func`` to each distinct non-null string once and map the result back onto every row."""
    arr = combine_chunks(arr)
    if len(arr) == 0:
        return pa.array([], type=pa.string())
    encoded = pc.dictionary_encode(arr)
    mapped = pa.array([func(v) for v in encoded.dictionary.to_pylist()], type=pa.string())
    return pc.take(mapped, encoded.indices)


def combine_chunks(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(arr, pa.ChunkedArray):
        return arr.combine_chunks() if arr.num_chunks else pa.array([], type=arr.type)
    return arr


def patch_state(value: str) -> str | None:
    """'InstalledPendingReboot' (live service) and 'INSTALLED_PENDING_REBOOT' (API model) -> the latter
    (docs/aws-behaviours.md §7). Spaces are treated as word breaks too ('Not Applicable')."""
    text = value.strip()
    if not text:
        return None
    if text.isupper():
        return text.replace(" ", "_")
    return _CAMEL_BOUNDARY.sub("_", text.replace(" ", "_")).replace("__", "_").upper()


def normalise_states(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    return map_distinct(arr, patch_state)


def normalise_severity(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Vendor severities (Critical/Important/Moderate/Medium/Low/..., any case) -> CRITICAL..UNSPECIFIED.
    Null and unrecognised values (and Ubuntu priorities, SUSE 'n/a', ...) become UNSPECIFIED."""
    mapped = map_distinct(arr, lambda v: VENDOR_SEVERITY.get(v.strip().lower(), "UNSPECIFIED"))
    return pc.fill_null(mapped, "UNSPECIFIED")


def normalise_enum(
    arr: pa.Array | pa.ChunkedArray, known: tuple[str, ...], spell: Callable[[str], str | None] | None = None
) -> tuple[pa.Array, pa.Array]:
    """(normalised, unrecognised) for an AWS enum field. ``spell`` maps each distinct value to our spelling
    (default: as sent, trimmed); empty means no value (null). A value outside ``known`` becomes UNKNOWN in the
    first array and is kept as AWS sent it in the second (null elsewhere), for the row's ``unrecognised`` list:
    AWS adds enum values over time (docs/aws-behaviours.md §32), and a value we cannot read is never dropped."""
    raw = blank_to_null(arr)
    mapped = map_distinct(raw, spell) if spell else raw
    known_value = pc.is_in(mapped, value_set=pa.array(known, pa.string()))
    unknown = pc.and_(pc.is_valid(mapped), pc.invert(pc.fill_null(known_value, False)))
    normalised = pc.if_else(unknown, pa.scalar(UNKNOWN_VALUE), mapped)
    return normalised, pc.if_else(unknown, raw, pa.scalar(None, pa.string()))


def unrecognised_severity(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    """The vendor severity where VENDOR_SEVERITY does not know it (it still normalises to UNSPECIFIED), else null."""
    raw = blank_to_null(arr)
    return map_distinct(raw, lambda v: None if v.lower() in VENDOR_SEVERITY else v)


def unrecognised_list(length: int, fields: dict[str, pa.Array | pa.ChunkedArray | None]) -> pa.Array:
    """Per row, a list of "<column>=<raw value>" for every field whose value was not recognised (``fields`` maps a
    column to the second array of ``normalise_enum``); an empty list when all were. Built in Arrow: the labelled
    fields are interleaved row by row and their nulls dropped, no Python loop over rows."""
    parts = [(name, combine_chunks(raw)) for name, raw in fields.items() if raw is not None]
    if not parts or all(raw.null_count == len(raw) for _, raw in parts):
        return pa.ListArray.from_arrays(pa.array(np.zeros(length + 1, dtype=np.int32)), pa.array([], pa.string()))
    labelled = [pc.binary_join_element_wise(pa.scalar(f"{name}="), raw, "") for name, raw in parts]
    width = len(labelled)
    row_major = (np.arange(width)[None, :] * length + np.arange(length)[:, None]).ravel()
    values = pa.concat_arrays(labelled).take(pa.array(row_major))
    valid = values.is_valid().to_numpy(zero_copy_only=False)
    offsets = np.concatenate([[0], np.cumsum(valid.reshape(length, width).sum(axis=1))]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), values.filter(pa.array(valid)))


def blank_to_null(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Empty or whitespace-only strings mean 'no value' in these APIs (docs/aws-behaviours.md §7, §10)."""
    arr = combine_chunks(arr)
    if not pa.types.is_string(arr.type) and not pa.types.is_large_string(arr.type):
        arr = arr.cast(pa.string())
    trimmed = pc.utf8_trim_whitespace(arr)
    return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)


def split_cves(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    """CVEIds is one string 'CVE-a,CVE-b' (docs/aws-behaviours.md §7) -> list<string>; null/empty -> []."""
    arr = blank_to_null(arr)
    trimmed = pc.utf8_trim(arr, characters=" ,;\t\n")
    parts = pc.split_pattern_regex(trimmed, r"[,;\s]+")
    empty = pc.fill_null(pc.equal(trimmed, ""), True)
    return pc.if_else(empty, _EMPTY_LIST, parts)


def parse_times(values: pa.Array | pa.ChunkedArray | pd.Series, field: str = "time") -> pa.Array:
    """ISO-8601 strings (or epoch seconds) -> timestamp[us, UTC]; '', null and the epoch (InstalledTime 0.0
    for Missing patches, docs/aws-behaviours.md §7) -> null. A non-empty string that is not a time raises ValueError."""
    series = values if isinstance(values, pd.Series) else pd.Series(combine_chunks(values), dtype=object)
    if series.empty:
        return pa.array([], type=TS)
    numeric = series.map(lambda v: isinstance(v, int | float) and not isinstance(v, bool))
    parsed = pd.Series(pd.NaT, index=series.index, dtype="datetime64[us, UTC]")
    text = series.where(~numeric)
    text = text.where(text.astype("string").str.strip().fillna("") != "")
    if text.notna().any():
        parsed = pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce").astype("datetime64[us, UTC]")
        bad = text[text.notna() & parsed.isna()]
        if len(bad):
            raise ValueError(
                f"{field}: {bad.iloc[0]!r} is not an ISO-8601 time (raw documents carry times as "
                "ISO-8601 strings, docs/architecture.md)"
            )
    if numeric.any():
        seconds = pd.to_numeric(series.where(numeric), errors="coerce")
        parsed = parsed.where(~numeric, pd.to_datetime(seconds, unit="s", utc=True).astype("datetime64[us, UTC]"))
    epoch = pd.Timestamp(0, tz="UTC")
    parsed = parsed.where(parsed != epoch)
    return pa.array(parsed, type=TS, from_pandas=True)


def parse_time_strings(arr: pa.Array | pa.ChunkedArray, field: str = "time") -> pa.Array:
    """Fast path for columns known to hold ISO strings only (the documented raw-document encoding)."""
    arr = blank_to_null(arr)
    if len(arr) == 0 or arr.null_count == len(arr):
        return pa.nulls(len(arr), type=TS)
    encoded = pc.dictionary_encode(arr)
    distinct = parse_times(encoded.dictionary, field)
    return pc.take(distinct, encoded.indices)


def severity_rank(arr: pa.Array) -> np.ndarray:
    """Rank per row (0 = CRITICAL); nulls rank after UNSPECIFIED."""
    ranks = map_distinct(arr, lambda v: str(SEVERITY_RANK.get(v, len(SEVERITIES))))
    return pc.fill_null(ranks, str(len(SEVERITIES))).cast(pa.int8()).to_numpy()


_US_PER_DAY = 86_400_000_000


def whole_days_since(now: pd.Timestamp, times: pd.Series) -> pa.Array:
    """Whole days from each timestamp to ``now`` (floor, int64, null stays null), computed in Arrow."""
    arr = pa.array(times).cast(TS)
    elapsed = pc.subtract(pa.scalar(now, type=TS), arr).cast(pa.int64())
    return pc.floor(pc.divide(elapsed.cast(pa.float64()), float(_US_PER_DAY))).cast(pa.int64())


def plus_days(times: pd.Series, days: np.ndarray) -> pa.Array:
    arr = pa.array(times).cast(TS)
    offset = pa.array(np.asarray(days, dtype=np.int64) * _US_PER_DAY).cast(pa.duration("us"))
    return pc.add(arr, offset)


def map_values(values: pd.Series | pa.Array, mapping: dict[str, int], default: int) -> np.ndarray:
    """int64 lookup of string values (on the distinct values only); unknown and null -> ``default``."""
    arr = combine_chunks(pa.array(values)) if isinstance(values, pd.Series) else combine_chunks(values)
    if len(arr) == 0:
        return np.zeros(0, dtype=np.int64)
    encoded = pc.dictionary_encode(arr)
    lookup = np.array([mapping.get(v, default) for v in encoded.dictionary.to_pylist()] + [default], dtype=np.int64)
    codes = pc.fill_null(encoded.indices, len(encoded.dictionary)).to_numpy()
    return lookup[codes]


def take_targets(targets: pd.DataFrame, t: np.ndarray, names: list[str]) -> dict[str, pd.Series]:
    """Target columns for each row index ``t`` (one Arrow take per column, strings stay Arrow)."""
    table = pa.Table.from_pandas(targets[names], preserve_index=False)
    taken = table.take(pa.array(np.asarray(t, dtype=np.int64)))
    return {n: pd.Series(taken.column(n), dtype=pd.ArrowDtype(taken.column(n).type)) for n in names}
