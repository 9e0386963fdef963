"""Publish a run's reports to S3 and read earlier runs back (previous snapshot, history for the trend).

Write order matters: tables, run files, the history entry, then the ``latest/`` pointers LAST (per-DAG, then
global), so a reader following ``latest/`` never sees a half-written run; a publish that fails before its per-DAG
pointer is written deletes what it wrote (``publish_reports``). Every object gets SSE
(storage.sse_args). Keys depend only on (prefix, table, snapshot_date, run id), so re-publishing a run
overwrites the same keys with the same bytes.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

import pandas as pd

from include.patch_compliance.aws import AwsContext
from include.patch_compliance.config import ReportsConfig
from include.patch_compliance.publish.report_files import (
    csv_bytes,
    history_key,
    json_bytes,
    latest_keys,
    parquet_bytes,
    read_parquet_bytes,
    run_key,
    table_key,
)
from include.patch_compliance.publish.report_html import render_html
from include.patch_compliance.storage import (
    StorageError,
    delete_keys,
    get_bytes,
    join_key,
    list_keys,
    object_exists,
    parse_s3_uri,
    put_bytes,
    s3_uri,
)
from include.patch_compliance.transform.schema import FLEET_DAILY, NODES, PATCHES, RUN_TABLES
from include.patch_compliance.transform.snapshot import PreviousSnapshot
from include.patch_compliance.transform.summary import history_entry
from include.patch_compliance.transform.tags import run_tables

if TYPE_CHECKING:
    from include.patch_compliance.transform.staging import StagedRun

PARQUET = "application/vnd.apache.parquet"


def report_uris(reports: ReportsConfig, *, run_id: str, snapshot_date: date) -> dict[str, str]:
    """Where publish_reports puts each table and the report page (also what summary.json points at)."""
    uris = {name: s3_uri(reports.bucket, table_key(reports.prefix, name, snapshot_date, run_id)) for name in RUN_TABLES}
    uris["report.html"] = s3_uri(reports.bucket, run_key(reports.prefix, run_id, "report.html"))
    return uris


def publish_reports(
    ctx: AwsContext,
    reports: ReportsConfig,
    tables: dict[str, pd.DataFrame],
    summary: dict[str, Any],
    *,
    run_id: str,
    dag_id: str,
    snapshot_date: date,
) -> dict[str, str]:
    """Write Parquet per table, nodes.csv, report.html, summary.json, the history entry and the latest pointers.
    Returns {name: s3 uri}. ``summary`` comes from ``summarize``; its report_url/tables are filled in here.

    All or nothing for readers: every body is rendered before the first write (a table that cannot be encoded
    fails with nothing written), and if a write fails before the run's ``latest/<dag_id>`` pointer is in place,
    the objects this attempt wrote are deleted again, so no table object of a failed publish stays under the
    table prefixes (Athena reads a day's partition folder whole) and the history never lists it. Deleting on
    failure rather than staging and copying: S3 cannot make several objects appear at once either way (there is
    no multi-object commit), a copy loop can fail between tables just like a put loop, and copying doubles the
    requests. A run that was already published completely (its summary.json exists) is not deleted on a failed
    re-publish: its keys keep that earlier, complete publication.
    """
    missing = [name for name in RUN_TABLES if name not in tables]
    if missing:
        raise ValueError(f"publish_reports needs every table from build_tables; missing {missing}")
    if summary.get("run_id") != run_id or summary.get("dag_id") != dag_id:
        raise ValueError(
            f"summary is for run {summary.get('run_id')!r} of {summary.get('dag_id')!r}, not {run_id!r} of {dag_id!r}"
        )
    locations = report_uris(reports, run_id=run_id, snapshot_date=snapshot_date)
    summary = {
        **summary,
        "report_url": locations["report.html"],
        "tables": {name: locations[name] for name in RUN_TABLES},
    }
    summary_body = json_bytes(summary)
    per_dag, global_key = latest_keys(reports.prefix, dag_id)
    # (name, key, body, content type) in write order; everything is rendered before anything is written.
    objects = [
        (name, table_key(reports.prefix, name, snapshot_date, run_id), parquet_bytes(tables[name], table), PARQUET)
        for name, table in run_tables(reports.group_by_tags).items()
    ]
    objects += [
        ("nodes.csv", run_key(reports.prefix, run_id, "nodes.csv"), csv_bytes(tables["nodes"]), "text/csv"),
        (
            "report.html",
            run_key(reports.prefix, run_id, "report.html"),
            render_html(summary, tables),
            "text/html; charset=utf-8",
        ),
        ("summary.json", run_key(reports.prefix, run_id, "summary.json"), summary_body, "application/json"),
        (
            "history",
            history_key(reports.prefix, dag_id, snapshot_date, run_id),
            json_bytes(history_entry(summary, tables)),
            "application/json",
        ),
        ("latest/" + dag_id, per_dag, summary_body, "application/json"),  # the commit point
    ]
    republish = object_exists(ctx, reports.bucket, run_key(reports.prefix, run_id, "summary.json"))

    def put(key: str, body: bytes, content_type: str) -> str:
        return put_bytes(ctx, reports.bucket, key, body, content_type=content_type, kms_key_id=reports.kms_key_id)

    written: dict[str, str] = {}
    attempted: list[str] = []  # the failing put too: a PutObject that timed out may still have landed
    try:
        for name, key, body, content_type in objects:
            attempted.append(key)
            written[name] = put(key, body, content_type)
    except Exception as exc:
        if not republish:
            _roll_back(ctx, reports.bucket, attempted, exc)
        raise
    written["latest"] = put(global_key, summary_body, "application/json")
    return written


def _roll_back(ctx: AwsContext, bucket: str, keys: list[str], cause: BaseException) -> None:
    """Delete what a failed publish wrote; if that fails too, say which objects are left (on ``cause``)."""
    try:
        delete_keys(ctx, bucket, keys)
    except StorageError as exc:
        cause.add_note(f"and the rollback failed, these objects of the failed publish are left: {keys} ({exc})")
    else:
        cause.add_note(f"nothing of this publish is left: the {len(keys)} objects written before it were deleted")


def _history_keys(ctx: AwsContext, reports: ReportsConfig, dag_id: str) -> list[str]:
    return [
        k
        for k in list_keys(ctx, reports.bucket, join_key(reports.prefix, "history", dag_id) + "/")
        if k.endswith(".json")
    ]


def _order(entry: dict[str, Any]) -> tuple[str, str, str]:
    return (str(entry.get("snapshot_date")), str(entry.get("generated_at") or ""), str(entry.get("run_id")))


def _read_entry(ctx: AwsContext, reports: ReportsConfig, key: str) -> dict[str, Any]:
    try:
        entry = json.loads(get_bytes(ctx, reports.bucket, key))
    except ValueError as exc:
        raise StorageError(f"{s3_uri(reports.bucket, key)} is not a JSON history entry: {exc}") from exc
    for field in ("run_id", "snapshot_date", "tables"):
        if field not in entry:
            raise StorageError(f"{s3_uri(reports.bucket, key)}: history entry has no {field!r}")
    return entry


def load_history(
    ctx: AwsContext, reports: ReportsConfig, dag_id: str, *, limit: int | None = None
) -> list[dict[str, Any]]:
    """The newest ``limit`` (default reports.history_runs) history entries of ``dag_id``, oldest first.
    Keys sort by snapshot date, so only the last days are read."""
    limit = reports.history_runs if limit is None else limit
    keys = _history_keys(ctx, reports, dag_id)
    if limit <= 0 or not keys:
        return []
    # A few extra keys so that several runs on the boundary day are ordered by generated_at, not by name.
    entries = [_read_entry(ctx, reports, key) for key in keys[-(limit + 5) :]]
    return sorted(entries, key=_order)[-limit:]


def load_previous_snapshot(
    ctx: AwsContext,
    reports: ReportsConfig,
    dag_id: str,
    *,
    exclude_run_id: str | None = None,
    on_or_before: date | None = None,
) -> PreviousSnapshot | None:
    """The latest published run of ``dag_id`` other than ``exclude_run_id`` (pass the current run id so a re-run
    does not compare with itself) and not after ``on_or_before``; None on the first run."""
    keys = _history_keys(ctx, reports, dag_id)
    by_date: dict[str, list[str]] = {}
    for key in keys:
        day = key.rsplit("snapshot_date=", 1)[-1].split("/", 1)[0]
        by_date.setdefault(day, []).append(key)
    for day in sorted(by_date, reverse=True):
        if on_or_before is not None and day > on_or_before.isoformat():
            continue
        entries = [_read_entry(ctx, reports, key) for key in by_date[day]]
        entries = [e for e in entries if e["run_id"] != exclude_run_id]
        if entries:
            entry = max(entries, key=_order)
            return _snapshot(ctx, entry)
    return None


def _snapshot(ctx: AwsContext, entry: dict[str, Any]) -> PreviousSnapshot:
    snapshot_date = date.fromisoformat(entry["snapshot_date"])
    frames = {}
    for table in (NODES, PATCHES):
        uri = entry["tables"].get(table.name)
        if not uri:
            raise StorageError(f"history entry of run {entry['run_id']!r} has no {table.name} table URI")
        bucket, key = parse_s3_uri(uri)
        frames[table.name] = read_parquet_bytes(get_bytes(ctx, bucket, key), table, snapshot_date)
    return PreviousSnapshot(entry["run_id"], snapshot_date, frames["nodes"], frames["patches"])


def publish_fleet_daily(ctx: AwsContext, reports: ReportsConfig, frame: pd.DataFrame) -> dict[str, str]:
    """One Parquet per day: ``<prefix>/fleet_daily/snapshot_date=YYYY-MM-DD/part-0.parquet`` (rewritten daily,
    idempotent). Returns {YYYY-MM-DD: uri}."""
    written = {}
    for day, rows in frame.groupby("snapshot_date", sort=True, observed=True):
        key = table_key(reports.prefix, FLEET_DAILY.name, day, None)
        written[day.isoformat()] = put_bytes(
            ctx,
            reports.bucket,
            key,
            parquet_bytes(rows, FLEET_DAILY),
            content_type=PARQUET,
            kms_key_id=reports.kms_key_id,
        )
    return written


class PublishedRun(NamedTuple):
    tables: dict[str, pd.DataFrame]
    summary: dict[str, Any]
    written: dict[str, str]  # name -> s3 URI
    previous: PreviousSnapshot | None  # what the delta and first_seen were computed against


def build_and_publish(
    ctx: AwsContext,
    reports: ReportsConfig,
    staged: StagedRun,
    *,
    run_id: str,
    dag_id: str,
    now: datetime,
    sla_days: dict[str, int],
    stale_after_days: int,
    skipped: list[dict[str, Any]] | None = None,
) -> PublishedRun:
    """The report step: previous snapshot of this DAG (never this run itself), the tables assembled from the
    collect tasks' staged shards, summary with the trend, then every object. ``now`` is the run's clock, so
    re-running a run rewrites the same bytes. ``skipped``: the plan's accounts left out, listed in summary.json
    and the report."""
    from include.patch_compliance.transform.assemble import assemble_tables
    from include.patch_compliance.transform.summary import summarize

    snapshot_date = now.date()
    previous = load_previous_snapshot(ctx, reports, dag_id, exclude_run_id=run_id, on_or_before=snapshot_date)
    tables = assemble_tables(
        staged,
        previous,
        run_id=run_id,
        dag_id=dag_id,
        snapshot_date=snapshot_date,
        now=now,
        sla_days=sla_days,
        stale_after_days=stale_after_days,
        group_by_tags=reports.group_by_tags,
    )
    summary = summarize(
        tables,
        run_id=run_id,
        dag_id=dag_id,
        snapshot_date=snapshot_date,
        generated_at=now,
        history=load_history(ctx, reports, dag_id),
        trend_runs=reports.history_runs,
        skipped=skipped,
        group_by_tags=reports.group_by_tags,
    )
    written = publish_reports(ctx, reports, tables, summary, run_id=run_id, dag_id=dag_id, snapshot_date=snapshot_date)
    return PublishedRun(tables, summary, written, previous)
