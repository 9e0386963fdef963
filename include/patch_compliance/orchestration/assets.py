"""Assets for the published tables: the report task's outlets, the trends DAG's schedule.

The URIs use an ``x-`` scheme on purpose: Airflow hands an asset URI with a provider's scheme (``s3://``) to that
provider's normaliser when the asset is created, and the amazon provider's imports the S3 hook and boto3, in every
DAG file that declares the asset, at every parse (docs/aws-behaviours.md §28). The S3 location of each table is in
the asset's ``extra``.
"""

from __future__ import annotations

from airflow.sdk import Asset

from include.patch_compliance.dag_layout import dag_layout

PUBLISHED_TABLES = ("nodes", "patches", "accounts", "commands", "compliance_items", "delta")
ASSET_SCHEME = "x-patch-compliance"


def table_assets() -> list[Asset]:
    layout = dag_layout()
    base = f"{layout.bucket}/{layout.prefix}/" if layout.prefix else f"{layout.bucket}/"
    return [
        Asset(name=f"patch_compliance_{t}", uri=f"{ASSET_SCHEME}://{base}{t}", extra={"s3_uri": f"s3://{base}{t}/"})
        for t in PUBLISHED_TABLES
    ]


def nodes_asset() -> Asset:
    return table_assets()[0]
