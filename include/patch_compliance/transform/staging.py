"""Staged tables: each collect task normalises its shard into the report tables' columns and stages them as
Parquet; the report step reads them back with pyarrow datasets (docs/architecture.md, "Staged tables").

A staged table is its report table (``transform/schema.py``) without the run columns and without what only the
report step can compute across shards: first_seen, age and SLA (they need the previous snapshot), compliance and
coverage (computed again with the report's clock) and SLA breaches per node. It adds what the report step needs
to finish a row, and ``_doc``: the row's raw document within its shard, so the report keeps one document per
target when a target was collected twice.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from include.patch_compliance.transform.build import one_doc_per_target
from include.patch_compliance.transform.commands import commands_frame, node_invocations
from include.patch_compliance.transform.compliance import compliance_item_rows
from include.patch_compliance.transform.nodes import STATE_COLUMNS, node_rows, patch_state_frame
from include.patch_compliance.transform.patches import patch_rows
from include.patch_compliance.transform.raw import TARGET_FIELDS, targets_frame
from include.patch_compliance.transform.schema import (
    BOOL,
    COMMANDS,
    COMPLIANCE_ITEMS,
    I64,
    NODES,
    PATCHES,
    STR,
    TARGET,
    TS,
    TableSchema,
    to_arrow,
)

DOC = "_doc"
_RUN_COLUMNS = ("run_id", "dag_id", "snapshot_date")


def _staged(table: TableSchema, drop: tuple[str, ...] = (), extra: tuple = (), doc: bool = True) -> TableSchema:
    kept = tuple(c for c in table.columns if c[0] not in _RUN_COLUMNS + drop)
    return TableSchema(table.name, ((DOC, I64),) * doc + kept + extra, table.sort_by)


TARGETS = TableSchema(
    "targets",
    ((DOC, I64), *TARGET, ("wave", STR), ("target_status", STR), ("target_error", STR), ("collected_at", STR)),
    sort_by=(DOC,),
)
# The report step computes these node columns again (classify_nodes with its clock, breaches from dated patches).
NODE_REPORT_COLUMNS = ("compliance_status", "coverage_status", "scan_age_days", "sla_breaches")
# ... and these patch columns (date_patches with the previous snapshot).
PATCH_REPORT_COLUMNS = ("first_seen", "age_days", "sla_days", "sla_due", "sla_breached")
# Tables in write order: targets last, so a shard whose targets file exists has all of its tables.
STAGED: dict[str, TableSchema] = {
    "nodes": _staged(NODES, NODE_REPORT_COLUMNS, (("has_patch_state", BOOL), ("managed", BOOL), ("outcome", STR))),
    "patches": _staged(PATCHES, PATCH_REPORT_COLUMNS, (("last_scan_time", TS),)),
    "compliance_items": _staged(COMPLIANCE_ITEMS),
    "commands": _staged(COMMANDS, doc=False),  # every record is kept, as in the commands table
    "targets": TARGETS,
}
PARQUET_OPTIONS: dict[str, Any] = {"compression": "zstd", "use_dictionary": True, "write_statistics": True}


def stage_tables(
    raw_docs: list[dict],
    command_records: list[dict],
    *,
    now: datetime,
    sla_days: dict[str, int],
    stale_after_days: int,
) -> dict[str, pa.Table]:
    """One shard's raw documents (as JSON gives them back) and its command outcome records -> the staged tables.

    The same table functions as ``build_tables``; ``now``, ``sla_days`` and ``stale_after_days`` only feed the
    columns the report step computes again, which are not staged."""
    targets_frame(raw_docs)  # validates every document first
    raw_docs = one_doc_per_target(raw_docs)
    targets = targets_frame(raw_docs)
    commands = commands_frame(command_records)
    states = patch_state_frame(raw_docs)
    patches = patch_rows(raw_docs, targets, states[STATE_COLUMNS], None, now=now, sla_days=sla_days)
    nodes = node_rows(
        raw_docs, targets, states, node_invocations(commands), patches, now=now, stale_after_days=stale_after_days
    )
    targets = targets.assign(
        _doc=np.arange(len(targets), dtype=np.int64),
        collected_at=pd.Series([str(d.get("collected_at") or "") for d in raw_docs], dtype=pd.ArrowDtype(STR)),
    )
    frames = {
        "nodes": nodes.rename(columns={"t": DOC}),
        "patches": patches.rename(columns={"t": DOC}),
        "compliance_items": compliance_item_rows(raw_docs, targets).rename(columns={"t": DOC}),
        "commands": commands,
        "targets": targets,
    }
    return {name: to_arrow(frames[name], table) for name, table in STAGED.items()}


def stage_commands(command_records: list[dict]) -> pa.Table:
    """Command outcome records alone -> the staged commands table (a shard whose collect task did not stage)."""
    return to_arrow(commands_frame(command_records), STAGED["commands"])


def parquet_bytes(table: pa.Table) -> bytes:
    """A staged table as Parquet (fixed options: the same table gives the same bytes)."""
    sink = io.BytesIO()
    pq.write_table(table, sink, **PARQUET_OPTIONS)
    return sink.getvalue()


class StagingError(ValueError):
    """Staged tables that do not have the documented shape; names the shard and the table."""


@dataclass(frozen=True)
class StagedRun:
    """A run's staged shards in shard order: per shard, table name -> a Parquet file path or an Arrow table.

    A shard may lack tables (a shard that only has command records): they count as empty."""

    shards: tuple[dict[str, str | pa.Table], ...]

    @classmethod
    def from_docs(
        cls,
        raw_docs: list[dict],
        command_records: list[dict],
        *,
        now: datetime,
        sla_days: dict[str, int],
        stale_after_days: int,
    ) -> StagedRun:
        """All documents as one shard, in memory (what a single collect task would stage)."""
        tables = stage_tables(raw_docs, command_records, now=now, sla_days=sla_days, stale_after_days=stale_after_days)
        return cls((tables,))

    def table(
        self, name: str, columns: Sequence[str] | None = None, docs: dict[int, np.ndarray | None] | None = None
    ) -> pa.Table:
        """Table ``name`` of every shard, in shard order, with only ``columns``; with ``docs``, only the rows of
        those raw documents per shard index (None: all of that shard's; shards not in ``docs`` give nothing)."""
        schema = STAGED[name].arrow()
        columns = list(columns) if columns is not None else schema.names
        parts = []
        for index, shard in enumerate(self.shards):
            source = shard.get(name)
            if source is None or (docs is not None and index not in docs):
                continue
            data = ds.dataset(source, format="parquet") if isinstance(source, str) else ds.dataset(source)
            if data.schema.remove_metadata() != schema:
                raise StagingError(
                    f"staged table {name} of shard {index} ({source if isinstance(source, str) else 'in memory'}) "
                    f"does not have the staged schema; re-run that shard's collect task"
                )
            kept = docs[index] if docs is not None else None
            where = ds.field(DOC).isin(pa.array(kept, type=I64)) if kept is not None else None
            parts.append(data.to_table(columns=columns, filter=where))
        if not parts:
            return schema.empty_table().select(columns)
        return pa.concat_tables(parts)

    def one_doc_per_target(self) -> tuple[pd.DataFrame, dict[int, np.ndarray | None]]:
        """The targets of the documents kept (one per account_id/region, as ``build.one_doc_per_target`` keeps
        them over all shards in order), and those documents per shard index: None where a shard keeps all of its
        documents (the usual case; its tables are then read without a row filter)."""
        parts = []
        for index, shard in enumerate(self.shards):
            if shard.get("targets") is not None:
                part = StagedRun((shard,)).table("targets")
                parts.append(part.append_column("_shard", pa.array(np.full(part.num_rows, index, dtype=np.int64))))
        if not parts:
            empty = TARGETS.arrow().empty_table().to_pandas(types_mapper=pd.ArrowDtype)
            return empty[[*TARGET_FIELDS, "wave", "target_status", "target_error"]], {}
        frame = pa.concat_tables(parts).to_pandas(types_mapper=pd.ArrowDtype)
        frame["_ok"] = (frame["target_status"] == "OK").fillna(False).astype(bool)
        frame["_pos"] = np.arange(len(frame))
        ranked = frame.sort_values(["account_id", "region", "_ok", "collected_at", "_pos"], kind="stable")
        kept = ranked.drop_duplicates(["account_id", "region"], keep="last").sort_values("_pos")
        staged = frame["_shard"].value_counts()
        docs: dict[int, np.ndarray | None] = {
            int(shard): None if len(group) == staged[shard] else group[DOC].to_numpy(dtype=np.int64)
            for shard, group in kept.groupby("_shard", sort=True)
        }
        targets = kept[[*TARGET_FIELDS, "wave", "target_status", "target_error"]].reset_index(drop=True)
        return targets, docs
