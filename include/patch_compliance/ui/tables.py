"""Bounded reads of a run's published Parquet tables for the page: only the columns and rows a page needs.

The file is read through the ReportStore's own boto3 client with ranged GETs (``S3RangeFile``): the footer, then
only the column chunks asked for, which pyarrow's dataset scanner filters batch by batch (``batches``). Own
range reader rather than pyarrow's S3FileSystem: this way the page keeps one S3 client, the Airflow connection's
credentials, endpoint and retries, and the same error messages (``ReportUnavailable``) as every other read.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.dataset as ds

from include.patch_compliance.ui.source import Problem, ReportStore, ReportUnavailable

BATCH_ROWS = 8192


class S3RangeFile(io.RawIOBase):
    """A read-only, seekable file over one S3 object: each read is one ranged GetObject."""

    def __init__(self, store: ReportStore, key: str) -> None:
        super().__init__()
        self.store, self.key = store, key
        self.length = store.size(key)
        self.position = 0
        self.requests = 0
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.length}[whence]
        self.position = max(base + offset, 0)
        return self.position

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        count = min(len(buffer), self.length - self.position)
        if count <= 0:
            return 0
        data = self.store.byte_range(self.key, self.position, self.position + count - 1)
        buffer[: len(data)] = data
        self.position += len(data)
        self.requests += 1
        self.bytes_read += len(data)
        return len(data)


@dataclass
class Table:
    """One published Parquet file of a run, opened (footer read) but not loaded."""

    name: str
    key: str
    file: S3RangeFile
    fragment: ds.ParquetFileFragment

    @property
    def columns(self) -> list[str]:
        return list(self.fragment.physical_schema.names)


def open_table(store: ReportStore, tables: dict[str, str], name: str) -> Table | None:
    """The run's table ``name`` from summary.json ``tables``; None when the run did not publish it (an older
    producer) or names a location outside the configured bucket/prefix."""
    key = store.table_key(tables.get(name))
    if key is None:
        return None
    handle = S3RangeFile(store, key)
    try:
        fragment = ds.ParquetFileFormat().make_fragment(pa.PythonFile(handle, mode="r"))
        fragment.physical_schema  # noqa: B018 - reads the footer now, so a broken file fails here, named
    except ReportUnavailable:
        raise
    except (OSError, pa.ArrowException) as exc:
        problem = Problem(store.bucket, key, "InvalidParquet", str(exc), "Re-run the publish step of this run.")
        raise ReportUnavailable(problem) from exc
    return Table(name, key, handle, fragment)


def batches(table: Table, columns: Sequence[str], where: ds.Expression | None = None) -> Iterator[pa.RecordBatch]:
    """The rows matching ``where``, only ``columns`` (those the file has), in file order, batch by batch."""
    present = [c for c in columns if c in table.columns]
    yield from table.fragment.to_batches(columns=present, filter=where, batch_size=BATCH_ROWS)


def rows_page(
    table: Table, columns: Sequence[str], where: ds.Expression | None, *, offset: int, limit: int
) -> tuple[int, list[dict]]:
    """(rows matching, the ``limit`` rows from ``offset`` as dicts): memory holds one batch and one page."""
    total, page = 0, list[dict]()
    for batch in batches(table, columns, where):
        start, end = total, total + batch.num_rows
        if end > offset and len(page) < limit:
            lo = max(offset - start, 0)
            page.extend(batch.slice(lo, limit - len(page)).to_pylist())
        total = end
    return total, page


def distinct(table: Table, columns: Sequence[str], where: ds.Expression | None = None) -> dict[str, list[str]]:
    """Sorted distinct non-empty values per column (for the filter menus)."""
    seen: dict[str, set[str]] = {c: set() for c in columns if c in table.columns}
    for batch in batches(table, list(seen), where):
        for name in seen:
            seen[name].update(v for v in batch.column(name).unique().to_pylist() if v not in (None, ""))
    return {name: sorted(values) for name, values in seen.items()}
