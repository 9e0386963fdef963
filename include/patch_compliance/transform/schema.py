"""THE single source of truth for report tables: columns, Arrow types, sort order, value vocabularies.

Every table leaves ``build_tables`` through :func:`conform` (exact columns, pyarrow-backed dtypes, sorted rows),
the Parquet writer derives its schema from here, and a test keeps ``include/athena/*.sql`` and
``docs/data-contract.md`` in agreement with this module.

``snapshot_date`` is a column of every in-memory table, but in S3 it is the Hive partition key
(``<table>/snapshot_date=YYYY-MM-DD/run=<safe run id>/part-0.parquet``), so it is not stored inside the files;
``run`` (the safe run id) exists only in the path.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pyarrow as pa

from include.patch_compliance.transform.enums import (  # noqa: F401 - the vocabularies live with the tables
    COMMAND_STATUSES,
    COMPLIANCE_ITEM_STATUSES,
    COMPLIANCE_SEVERITIES,
    COVERAGE_STATUSES,
    DELTA_CHANGES,
    EC2_STATES,
    INVOCATION_STATUSES,
    NON_COMPLIANT_STATES,
    PATCH_COMPLIANCE_STATUSES,
    PATCH_OPERATIONS,
    PATCH_STATES,
    PING_STATUSES,
    PLATFORM_TYPES,
    REMEDIATION_RESULTS,
    RESOURCE_TYPES,
    UNKNOWN_VALUE,
    UNRECOGNISED,
    VENDOR_SEVERITY,
)
from include.patch_compliance.vocab import SEVERITIES  # noqa: F401

STR = pa.string()
I64 = pa.int64()
F64 = pa.float64()
BOOL = pa.bool_()
TS = pa.timestamp("us", tz="UTC")
DATE = pa.date32()
STR_LIST = pa.list_(pa.string())
STR_MAP = pa.map_(pa.string(), pa.string())

ATHENA_TYPES = {
    STR: "string",
    I64: "bigint",
    F64: "double",
    BOOL: "boolean",
    TS: "timestamp",
    DATE: "date",
    STR_LIST: "array<string>",
    STR_MAP: "map<string,string>",
}
PARTITION_COLUMN = "snapshot_date"
# Athena projects the date partition as a string 'YYYY-MM-DD' (partition projection, type date).
ATHENA_PARTITION_TYPE = "string"


@dataclass(frozen=True)
class TableSchema:
    name: str
    columns: tuple[tuple[str, pa.DataType], ...]
    sort_by: tuple[str, ...]
    description: str = ""  # one line: what a row is (the Athena DDL's and the Glue table's comment)

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.columns]

    def arrow(self, *, with_partition: bool = True) -> pa.Schema:
        return pa.schema([pa.field(n, t) for n, t in self.columns if with_partition or n != PARTITION_COLUMN])

    def dtypes(self) -> dict[str, pd.ArrowDtype]:
        return {name: pd.ArrowDtype(typ) for name, typ in self.columns}


def _cols(*groups: tuple[tuple[str, pa.DataType], ...]) -> tuple[tuple[str, pa.DataType], ...]:
    return tuple(col for group in groups for col in group)


RUN = (("run_id", STR), ("dag_id", STR), ("snapshot_date", DATE))
TARGET = (("ou_id", STR), ("ou_path", STR), ("account_id", STR), ("account_name", STR), ("region", STR))

NODES = TableSchema(
    "nodes",
    _cols(
        RUN,
        TARGET,
        (
            ("wave", STR),
            ("target_status", STR),
            ("target_error", STR),
            ("target_error_stage", STR),
            ("instance_id", STR),
            ("instance_name", STR),
            ("resource_type", STR),
            ("platform_type", STR),
            ("platform_name", STR),
            ("platform_version", STR),
            ("agent_version", STR),
            ("ping_status", STR),
            ("last_ping_time", TS),
            ("ec2_state", STR),
            ("patch_group", STR),
            ("baseline_id", STR),
            ("compliance_status", STR),
            ("coverage_status", STR),
            ("critical_non_compliant_count", I64),
            ("security_non_compliant_count", I64),
            ("other_non_compliant_count", I64),
            ("missing_count", I64),
            ("failed_count", I64),
            ("installed_pending_reboot_count", I64),
            ("installed_rejected_count", I64),
            ("installed_count", I64),
            ("installed_other_count", I64),
            ("not_applicable_count", I64),
            ("available_security_update_count", I64),
            ("available_security_updates_compliance", STR),
            ("last_operation", STR),
            ("last_scan_time", TS),
            ("scan_age_days", I64),
            ("command_id", STR),
            ("invocation_status", STR),
            ("invocation_status_details", STR),
            ("highest_missing_severity", STR),
            ("non_compliant_patches", I64),
            ("sla_breaches", I64),
            ("tags", STR_MAP),
            (UNRECOGNISED, STR_LIST),
        ),
    ),
    sort_by=("ou_path", "account_id", "region", "instance_id"),
    description="one row per node per run (and one row per unreachable account-region, instance_id null).",
)

PATCHES = TableSchema(
    "patches",
    _cols(
        RUN,
        TARGET,
        (
            ("instance_id", STR),
            ("kb_id", STR),
            ("title", STR),
            ("classification", STR),
            ("vendor_severity", STR),
            ("severity", STR),
            ("state", STR),
            ("cve_ids", STR_LIST),
            ("installed_time", TS),
            ("first_seen", TS),
            ("age_days", I64),
            ("sla_days", I64),
            ("sla_due", TS),
            ("sla_breached", BOOL),
            (UNRECOGNISED, STR_LIST),
        ),
    ),
    sort_by=("account_id", "region", "instance_id", "kb_id", "title"),
    description="one row per node and non-compliant patch per run, with first_seen, age and SLA.",
)

ACCOUNTS = TableSchema(
    "accounts",
    _cols(
        RUN,
        TARGET,
        (
            ("nodes", I64),
            ("compliant", I64),
            ("non_compliant", I64),
            ("unknown", I64),
            ("compliant_pct", F64),
            ("unreachable_targets", I64),
            *((f"coverage_{c.lower()}", I64) for c in COVERAGE_STATUSES if c != "UNREACHABLE"),
            *((f"missing_{s.lower()}", I64) for s in SEVERITIES),
            ("sla_breaches", I64),
        ),
    ),
    sort_by=("ou_path", "account_id", "region"),
    description="one row per account-region per run: counts by compliance, coverage and severity.",
)

COMMANDS = TableSchema(
    "commands",
    _cols(
        RUN,
        TARGET,
        (
            ("wave", STR),
            ("command_id", STR),
            ("command_status", STR),
            ("command_status_details", STR),
            ("instance_id", STR),
            ("status", STR),
            ("status_details", STR),
            ("outcome", STR),
            ("response_code", I64),
            ("requested_at", TS),
            ("started_at", TS),
            ("finished_at", TS),
            ("error", STR),
            (UNRECOGNISED, STR_LIST),
        ),
    ),
    sort_by=("account_id", "region", "command_id", "instance_id", "requested_at"),
    description="one row per SSM invocation outcome (or per target that could not be sent to) per run.",
)

COMPLIANCE_ITEMS = TableSchema(
    "compliance_items",
    _cols(
        RUN,
        TARGET,
        (
            ("instance_id", STR),
            ("compliance_type", STR),
            ("item_id", STR),
            ("title", STR),
            ("status", STR),
            ("severity", STR),
            ("patch_state", STR),
            ("classification", STR),
            ("patch_severity", STR),
            ("patch_baseline_id", STR),
            ("patch_group", STR),
            ("document_name", STR),
            ("cve_ids", STR_LIST),
            ("installed_time", TS),
            ("execution_id", STR),
            ("execution_type", STR),
            ("execution_time", TS),
            (UNRECOGNISED, STR_LIST),
        ),
    ),
    sort_by=("account_id", "region", "instance_id", "compliance_type", "item_id", "title"),
    description="ListComplianceItems rows (Patch and Association types) per node per run.",
)

DELTA = TableSchema(
    "delta",
    _cols(
        RUN,
        (
            ("previous_run_id", STR),
            ("change", STR),
        ),
        TARGET,
        (
            ("instance_id", STR),
            ("kb_id", STR),
            ("title", STR),
            ("severity", STR),
            ("previous_status", STR),
            ("current_status", STR),
        ),
    ),
    sort_by=("change", "account_id", "region", "instance_id", "kb_id", "title"),
    description="changes against the previous run of the same DAG.",
)

CVES = TableSchema(
    "cves",
    _cols(
        RUN,
        (
            ("cve_id", STR),
            ("severity", STR),
            ("nodes", I64),
            ("accounts", I64),
            ("patches", I64),
            ("sla_breaches", I64),
            ("first_seen", TS),
            ("max_age_days", I64),
            ("account_ids", STR_LIST),
            ("ou_paths", STR_LIST),
            ("kb_ids", STR_LIST),
            ("titles", STR_LIST),
        ),
    ),
    sort_by=("cve_id",),
    description="one row per CVE id of the run's non-compliant patches: exposed nodes, accounts, age and SLA.",
)

FLEET_DAILY = TableSchema(
    "fleet_daily",
    (
        ("snapshot_date", DATE),
        ("ou_id", STR),
        ("ou_path", STR),
        ("run_id", STR),
        ("nodes", I64),
        ("compliant", I64),
        ("compliant_pct", F64),
        ("sla_breaches", I64),
    ),
    sort_by=("snapshot_date", "ou_path", "ou_id"),
    description="one row per day and OU (last run of the day), rebuilt by the trends DAG.",
)

REMEDIATION = TableSchema(
    "remediation",
    _cols(
        RUN,
        TARGET,
        (
            ("wave", STR),
            ("instance_id", STR),
            ("instance_name", STR),
            ("platform_name", STR),
            ("source_run_id", STR),
            ("reboot_option", STR),
            ("command_id", STR),
            ("invocation_status", STR),
            ("invocation_status_details", STR),
            ("outcome", STR),
            ("requested_at", TS),
            ("finished_at", TS),
            ("compliance_before", STR),
            ("compliance_after", STR),
            ("missing_before", I64),
            ("missing_after", I64),
            ("failed_before", I64),
            ("failed_after", I64),
            ("pending_reboot_before", I64),
            ("pending_reboot_after", I64),
            ("rejected_before", I64),
            ("rejected_after", I64),
            ("installed_before", I64),
            ("installed_after", I64),
            ("patches_installed", I64),
            ("reboot_needed", BOOL),
            ("last_operation_after", STR),
            ("last_scan_time_after", TS),
            ("rescanned", BOOL),
            ("result", STR),
            ("error", STR),
        ),
    ),
    sort_by=("ou_path", "account_id", "region", "instance_id"),
    description="one row per node a remediation run selected: Install outcome, before/after patch counts.",
)

# Tables written per run by publish_reports, in write order.
RUN_TABLES: dict[str, TableSchema] = {
    t.name: t for t in (NODES, PATCHES, ACCOUNTS, COMMANDS, COMPLIANCE_ITEMS, DELTA, CVES)
}
ALL_TABLES: dict[str, TableSchema] = {**RUN_TABLES, FLEET_DAILY.name: FLEET_DAILY, REMEDIATION.name: REMEDIATION}


def athena_type(arrow_type: pa.DataType) -> str:
    try:
        return ATHENA_TYPES[arrow_type]
    except KeyError:
        raise ValueError(f"no Athena type for Arrow type {arrow_type}; add it to ATHENA_TYPES") from None


def empty_frame(table: TableSchema) -> pd.DataFrame:
    return table.arrow().empty_table().to_pandas(types_mapper=pd.ArrowDtype)


def conform(frame: pd.DataFrame, table: TableSchema, *, sort: bool = True) -> pd.DataFrame:
    """Exactly the table's columns, in order, as pyarrow-backed dtypes, rows sorted by the table's sort key
    (``sort=False`` keeps the frame's order, for inputs that are only looked up in).

    Raises ValueError naming missing columns (a bug in the builder, not bad input)."""
    missing = [n for n in table.names if n not in frame.columns]
    if missing:
        raise ValueError(f"table {table.name}: missing columns {missing}")
    arrow = pa.Table.from_pandas(frame[table.names], preserve_index=False)
    arrow = arrow.cast(table.arrow())
    if sort and arrow.num_rows:
        arrow = arrow.sort_by([(c, "ascending") for c in table.sort_by])
    return arrow.to_pandas(types_mapper=pd.ArrowDtype)


def to_arrow(frame: pd.DataFrame, table: TableSchema, *, with_partition: bool = True) -> pa.Table:
    """The frame as an Arrow table with the documented schema and no pandas metadata (stable bytes)."""
    names = [n for n in table.names if with_partition or n != PARTITION_COLUMN]
    arrow = pa.Table.from_pandas(frame[names], preserve_index=False).cast(table.arrow(with_partition=with_partition))
    return arrow.replace_schema_metadata(None)
