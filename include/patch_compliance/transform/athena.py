"""Athena DDL generated from ``schema.py``: ``include/athena/<table>.sql`` is this module's output, never edited
by hand (``python scripts/generate_athena.py`` rewrites it; a test checks the committed files are current)."""

from __future__ import annotations

from include.patch_compliance.transform.schema import (
    ATHENA_PARTITION_TYPE,
    PARTITION_COLUMN,
    TableSchema,
    athena_type,
)

# Partition projection on the snapshot date: no crawler, no MSCK REPAIR, a new day is queryable as soon as its
# files are written (Athena user guide, "Partition projection with Amazon Athena",
# https://docs.aws.amazon.com/athena/latest/ug/partition-projection.html).
PROJECTION_START = "2024-01-01"


def table_location(table: TableSchema, bucket: str = "<bucket>", prefix: str = "<prefix>") -> str:
    return f"s3://{bucket}/{prefix}/{table.name}/"


def projection_properties(table: TableSchema, bucket: str = "<bucket>", prefix: str = "<prefix>") -> dict[str, str]:
    """The TBLPROPERTIES of every table (also the Glue table's Parameters)."""
    p = PARTITION_COLUMN
    return {
        "projection.enabled": "true",
        f"projection.{p}.type": "date",
        f"projection.{p}.format": "yyyy-MM-dd",
        f"projection.{p}.range": f"{PROJECTION_START},NOW",
        f"projection.{p}.interval": "1",
        f"projection.{p}.interval.unit": "DAYS",
        "storage.location.template": f"{table_location(table, bucket, prefix)}{p}=${{{p}}}/",
        "parquet.compression": "SNAPPY",
    }


def create_table(table: TableSchema) -> str:
    """``CREATE EXTERNAL TABLE`` for one table, columns in schema order, the partition column apart."""
    columns = [(n, athena_type(t)) for n, t in table.columns if n != PARTITION_COLUMN]
    width = max(len(n) for n, _ in columns) + 3
    body = ",\n".join(f"  {f'`{n}`':<{width}}{typ}" for n, typ in columns)
    props = ",\n".join(f"  '{k}' = '{v}'" for k, v in projection_properties(table).items())
    return (
        f"-- {table.name}: {table.description}\n"
        "-- Generated from include/patch_compliance/transform/schema.py by scripts/generate_athena.py; do not edit.\n"
        "-- Columns and meanings: docs/data-contract.md.\n"
        "-- Replace <bucket>/<prefix> with reports.bucket/reports.prefix. Partition projection: no crawler and no\n"
        "-- MSCK REPAIR; new days appear by themselves.\n"
        f"CREATE EXTERNAL TABLE IF NOT EXISTS `{table.name}` (\n{body}\n)\n"
        f"PARTITIONED BY (`{PARTITION_COLUMN}` {ATHENA_PARTITION_TYPE})\n"
        "STORED AS PARQUET\n"
        f"LOCATION '{table_location(table)}'\n"
        f"TBLPROPERTIES (\n{props}\n);\n"
    )
