"""Assets for the published tables: the report task's outlets, the trends DAG's schedule."""

from __future__ import annotations

from airflow.sdk import Asset

from include.patch_compliance.config import reports_location

PUBLISHED_TABLES = ("nodes", "patches", "accounts", "commands", "compliance_items", "delta")


def table_assets() -> list[Asset]:
    bucket, prefix = reports_location()
    base = f"s3://{bucket}/{prefix}/" if prefix else f"s3://{bucket}/"
    return [Asset(name=f"patch_compliance_{t}", uri=f"{base}{t}/") for t in PUBLISHED_TABLES]


def nodes_asset() -> Asset:
    return table_assets()[0]
