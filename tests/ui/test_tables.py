"""Bounded reads of published Parquet (ui/tables.py): ranged GETs for the footer and the asked columns only,
filters applied by the scanner, paging that keeps one page, and no read outside the configured bucket/prefix."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from include.patch_compliance.ui.source import ReportStore, ReportUnavailable
from include.patch_compliance.ui.tables import distinct, open_table, rows_page
from tests.ui.summary_fixture import BUCKET, PREFIX

ROWS = 60_000
URI = f"s3://{BUCKET}/{PREFIX}/nodes/snapshot_date=2026-11-29/run=r1/part-0.parquet"


@pytest.fixture
def store(s3) -> tuple[ReportStore, int]:
    s3.create_bucket(Bucket=BUCKET)
    table = pa.table(
        {
            "account_id": [f"{i % 7:012d}" for i in range(ROWS)],
            "instance_id": [f"i-{i:017x}" for i in range(ROWS)],
            "wide": [f"{i:08d}" * 24 for i in range(ROWS)],  # incompressible: most of the file
        }
    )
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=1_000_000)  # one row group, as the publish step writes
    s3.put_object(Bucket=BUCKET, Key=URI.split(f"{BUCKET}/", 1)[1], Body=sink.getvalue())
    return ReportStore(s3, BUCKET, PREFIX, "aws"), len(sink.getvalue())


def test_a_page_reads_only_the_asked_columns_and_keeps_one_page(store) -> None:
    reports, size = store
    table = open_table(reports, {"nodes": URI}, "nodes")
    total, page = rows_page(
        table, ["account_id", "instance_id"], ds.field("account_id") == f"{3:012d}", offset=10, limit=5
    )
    expected = [f"i-{i:017x}" for i in range(3, ROWS, 7)]
    assert total == len(expected)
    assert [r["instance_id"] for r in page] == expected[10:15] and set(page[0]) == {"account_id", "instance_id"}
    print(f"\nread {table.file.bytes_read:,} of {size:,} bytes in {table.file.requests} ranged GETs")
    wide = table.fragment.metadata.row_group(0).column(2)
    assert wide.path_in_schema == "wide" and wide.total_compressed_size > size / 3
    # never fetched, beyond the tail that pyarrow's first 64 KiB footer read overlaps
    assert table.file.bytes_read <= size - wide.total_compressed_size + 64 * 1024


def test_distinct_values_for_the_menus(store) -> None:
    reports, _ = store
    table = open_table(reports, {"nodes": URI}, "nodes")
    assert distinct(table, ["account_id", "not_a_column"]) == {"account_id": [f"{i:012d}" for i in range(7)]}


@pytest.mark.parametrize(
    "uri",
    [
        f"s3://other-bucket/{PREFIX}/nodes/part-0.parquet",
        f"s3://{BUCKET}/elsewhere/nodes/part-0.parquet",
        f"s3://{BUCKET}/{PREFIX}/../secret/part-0.parquet",
        None,
    ],
)
def test_a_table_outside_the_configured_prefix_is_not_read(store, uri) -> None:
    reports, _ = store
    assert open_table(reports, {"nodes": uri} if uri else {}, "nodes") is None


def test_a_missing_table_object_names_its_key(store) -> None:
    reports, _ = store
    missing = f"s3://{BUCKET}/{PREFIX}/nodes/snapshot_date=2026-11-30/run=r9/part-0.parquet"
    with pytest.raises(ReportUnavailable) as caught:
        open_table(reports, {"nodes": missing}, "nodes")
    assert caught.value.problem.key.endswith("run=r9/part-0.parquet")
