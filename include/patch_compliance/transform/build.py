"""``build_tables``: raw documents + command records (+ the previous snapshot) -> the report tables, the whole run
in memory. The report step builds the same tables from the collect tasks' staged Parquet (``assemble.py``); this
is the reference that path is tested against, and what the table tests and ``make bench`` call."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

import pandas as pd

from include.patch_compliance.transform.commands import commands_frame, node_invocations
from include.patch_compliance.transform.compliance import compliance_item_rows
from include.patch_compliance.transform.cves import cve_rows
from include.patch_compliance.transform.delta import delta_rows
from include.patch_compliance.transform.nodes import STATE_COLUMNS, node_rows, patch_state_frame
from include.patch_compliance.transform.patches import check_sla_days, patch_rows
from include.patch_compliance.transform.raw import RawDataError, targets_frame
from include.patch_compliance.transform.rollups import account_rows
from include.patch_compliance.transform.schema import conform
from include.patch_compliance.transform.snapshot import PreviousSnapshot
from include.patch_compliance.transform.tags import run_tables, with_tag_columns


def build_tables(
    raw_docs: list[dict],
    command_records: list[dict],
    previous: PreviousSnapshot | None,
    *,
    run_id: str,
    dag_id: str,
    snapshot_date: date,
    now: datetime,
    sla_days: dict[str, int],
    stale_after_days: int,
    group_by_tags: Sequence[str] = (),
) -> dict[str, pd.DataFrame]:
    """All per-run tables (nodes, patches, accounts, commands, compliance_items, delta, cves), each conformed to
    ``transform/schema.py``. Pure: the same inputs give the same frames (``now`` is the only clock)."""
    _check_inputs(raw_docs, command_records)
    check_run_args(run_id, dag_id, snapshot_date, now, stale_after_days)
    check_sla_days(sla_days)
    targets = targets_frame(raw_docs)  # validates every document first
    raw_docs = one_doc_per_target(raw_docs)
    targets = targets_frame(raw_docs)
    commands = commands_frame(command_records)
    states = patch_state_frame(raw_docs)
    patches = patch_rows(raw_docs, targets, states[STATE_COLUMNS], previous, now=now, sla_days=sla_days)
    nodes = node_rows(
        raw_docs, targets, states, node_invocations(commands), patches, now=now, stale_after_days=stale_after_days
    )
    tables = {
        "nodes": with_tag_columns(nodes, group_by_tags),
        "patches": patches,
        "accounts": account_rows(nodes, patches, targets),
        "commands": commands,
        "compliance_items": compliance_item_rows(raw_docs, targets),
        "delta": delta_rows(nodes, patches, previous),
        "cves": cve_rows(patches),
    }
    schemas = run_tables(group_by_tags)
    out = {}
    for name, frame in tables.items():
        frame = frame.assign(run_id=run_id, dag_id=dag_id, snapshot_date=snapshot_date)
        out[name] = conform(frame, schemas[name])
    return out


def one_doc_per_target(raw_docs: list[dict]) -> list[dict]:
    """One document per (account_id, region): a retried collect shard may have produced the same target twice.
    A readable (OK) document beats an UNREACHABLE one, then the latest ``collected_at`` wins."""
    best: dict[tuple[str, str], tuple[tuple[bool, str], int]] = {}
    for i, doc in enumerate(raw_docs):
        key = (doc["target"]["account_id"], doc["target"]["region"])
        rank = (doc["status"] == "OK", str(doc.get("collected_at") or ""))
        if key not in best or rank >= best[key][0]:
            best[key] = (rank, i)
    keep = sorted(i for _, i in best.values())
    return raw_docs if len(keep) == len(raw_docs) else [raw_docs[i] for i in keep]


def _check_inputs(raw_docs: object, command_records: object) -> None:
    if not isinstance(raw_docs, list):
        raise RawDataError(f"raw_docs must be a list of raw collection documents, got {type(raw_docs).__name__}")
    if not isinstance(command_records, list):
        raise RawDataError(f"command_records must be a list, got {type(command_records).__name__}")


def check_run_args(run_id: str, dag_id: str, snapshot_date: date, now: datetime, stale_after_days: int) -> None:
    """The run's identity and clock, as every table needs them; ValueError names the argument."""
    if not run_id or not dag_id:
        raise ValueError("run_id and dag_id must be non-empty strings (the Airflow run id and DAG id)")
    if not isinstance(snapshot_date, date) or isinstance(snapshot_date, datetime):
        raise ValueError(f"snapshot_date must be a datetime.date, got {snapshot_date!r}")
    if not isinstance(now, datetime) or now.tzinfo is None:
        raise ValueError(f"now must be a timezone-aware datetime (UTC), got {now!r}")
    if not isinstance(stale_after_days, int) or stale_after_days < 1:
        raise ValueError(f"stale_after_days must be an int >= 1 (collect.stale_after_days), got {stale_after_days!r}")
