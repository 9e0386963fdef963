"""Report files as bytes (no S3 here): Parquet per table, nodes.csv, summary JSON, the published key layout.

Bytes are stable for the same input: rows are already sorted by ``conform``, the Arrow schema carries no pandas
metadata, compression/page settings are fixed and nothing reads the clock.
"""

from __future__ import annotations

import io
import json
from datetime import date
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from include.patch_compliance.storage import join_key, safe_run_id
from include.patch_compliance.transform.schema import PARTITION_COLUMN, TableSchema, to_arrow

PARQUET_OPTIONS: dict[str, Any] = {
    "compression": "snappy",
    "use_dictionary": True,
    "write_statistics": True,
    "version": "2.6",
    "data_page_version": "1.0",
    "row_group_size": 1_000_000,
}


def table_key(prefix: str, table: str, snapshot_date: date, run_id: str | None) -> str:
    """``<prefix>/<table>/snapshot_date=YYYY-MM-DD/run=<safe run id>/part-0.parquet`` (no run for fleet_daily)."""
    parts = [prefix, table, f"{PARTITION_COLUMN}={snapshot_date.isoformat()}"]
    if run_id is not None:
        parts.append(f"run={safe_run_id(run_id)}")
    return join_key(*parts, "part-0.parquet")


def run_key(prefix: str, run_id: str, name: str) -> str:
    return join_key(prefix, "runs", safe_run_id(run_id), name)


def history_key(prefix: str, dag_id: str, snapshot_date: date, run_id: str) -> str:
    return join_key(
        prefix, "history", dag_id, f"{PARTITION_COLUMN}={snapshot_date.isoformat()}", f"run={safe_run_id(run_id)}.json"
    )


def latest_keys(prefix: str, dag_id: str) -> tuple[str, str]:
    """(per-DAG pointer, global pointer); written in this order, last of all."""
    return join_key(prefix, "latest", dag_id, "summary.json"), join_key(prefix, "latest", "summary.json")


def parquet_bytes(frame: pd.DataFrame, table: TableSchema) -> bytes:
    """The table without the partition column (it is in the path), with the documented Arrow schema."""
    arrow = to_arrow(frame, table, with_partition=False)
    sink = io.BytesIO()
    pq.write_table(arrow, sink, **PARQUET_OPTIONS)
    return sink.getvalue()


def read_parquet_bytes(body: bytes, table: TableSchema, snapshot_date: date) -> pd.DataFrame:
    """Inverse of ``parquet_bytes``: the in-memory frame, partition column restored from the path value."""
    arrow = pq.read_table(io.BytesIO(body), schema=table.arrow(with_partition=False))
    frame = arrow.to_pandas(types_mapper=pd.ArrowDtype)
    frame[PARTITION_COLUMN] = pd.Series([snapshot_date] * len(frame), dtype=pd.ArrowDtype(pa.date32()))
    return frame[table.names]


# OWASP "CSV Injection": a cell starting with one of these is a formula to spreadsheet programs.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formulas(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """Prefix ``'`` to every string cell a spreadsheet would evaluate (``=HYPERLINK(...)``, ``+cmd``, ``@SUM``)."""
    first = pc.utf8_slice_codeunits(column, 0, 1)
    formula = pc.fill_null(pc.is_in(first, value_set=pa.array(FORMULA_START)), False)
    if not pc.any(formula).as_py():
        return column
    return pc.if_else(formula, pc.binary_join_element_wise("'", column, ""), column)


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """CSV (pyarrow's writer: pandas' is ~10x slower on Arrow columns) with ISO-8601 UTC times
    ('2026-11-29T03:00:00Z'), quotes only where needed, empty cells for nulls, and no cell that a spreadsheet
    would run as a formula (``neutralise_formulas``, docs/data-contract.md)."""
    arrow = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)
    for i, field in enumerate(arrow.schema):
        if pa.types.is_timestamp(field.type):
            seconds = arrow.column(i).cast(pa.timestamp("s", "UTC"), safe=False)  # whole seconds
            arrow = arrow.set_column(i, field.name, pc.strftime(seconds, "%Y-%m-%dT%H:%M:%SZ"))
        elif pa.types.is_map(field.type):
            arrow = arrow.set_column(i, field.name, neutralise_formulas(_map_text(arrow.column(i).combine_chunks())))
        elif pa.types.is_list(field.type):
            arrow = arrow.set_column(i, field.name, neutralise_formulas(pc.binary_join(arrow.column(i), ",")))
        elif pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
            arrow = arrow.set_column(i, field.name, neutralise_formulas(arrow.column(i)))
    sink = io.BytesIO()
    pa_csv.write_csv(arrow, sink, write_options=pa_csv.WriteOptions(quoting_style="needed"))
    return sink.getvalue()


def _map_text(maps: pa.MapArray) -> pa.Array:
    """A map cell as ``key=value`` pairs joined by ``;`` in key order (``Environment=prod;Team=payments``)."""
    pairs = pc.binary_join_element_wise(maps.keys, pc.fill_null(maps.items, ""), "=")
    lists = pa.ListArray.from_arrays(maps.offsets, pairs, mask=maps.is_null())
    return pc.binary_join(lists, ";")


def json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=False, ensure_ascii=False, default=str) + "\n").encode()
