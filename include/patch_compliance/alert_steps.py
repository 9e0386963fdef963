"""The alert step: after publishing, build the run's change digest and deliver it through the configured
notifiers (docs/alerts.md). Runs as a task (trigger rule all_done) before the final gate, on the worker."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import date
from typing import Any

from include.patch_compliance.runtime import RunContext
from include.patch_compliance.storage import get_bytes, object_exists, parse_s3_uri

log = logging.getLogger(__name__)
ALERT_KIND = "alert"  # the run's staging record: the digest and the channels it was delivered to


def run_digest(run: RunContext, failed_tasks: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """The digest of this run: the change digest of what it published, or a failure digest when it published
    nothing; ``failure`` also holds the failed tasks and the final gate's reasons."""
    from include.patch_compliance import steps
    from include.patch_compliance.publish.report_files import read_parquet_bytes, run_key
    from include.patch_compliance.publish.reports import load_previous_snapshot
    from include.patch_compliance.transform.digest import change_digest
    from include.patch_compliance.transform.tags import run_tables

    reports = run.cfg.reports
    reasons = [f"tasks failed: {', '.join(failed_tasks)}"] if failed_tasks else []
    summary_key = run_key(reports.prefix, run.run_id, "summary.json")
    if not object_exists(run.hub, run.bucket, summary_key):
        reasons.append("nothing was published (see the report task's log); latest/ still shows the last good run")
        return {"run_id": run.run_id, "dag_id": run.dag_id, "failure": "; ".join(reasons), "changed": True}
    summary = json.loads(get_bytes(run.hub, run.bucket, summary_key))
    snapshot_date = date.fromisoformat(summary["snapshot_date"])
    schemas = run_tables(reports.group_by_tags)
    tables = {}
    for name in ("nodes", "patches", "cves", "delta"):
        bucket, key = parse_s3_uri(summary["tables"][name])
        tables[name] = read_parquet_bytes(get_bytes(run.hub, bucket, key), schemas[name], snapshot_date)
    previous = load_previous_snapshot(
        run.hub, reports, run.dag_id, exclude_run_id=run.run_id, on_or_before=snapshot_date
    )
    digest = change_digest(tables, previous, summary, top=run.cfg.alerts.top_nodes)
    try:
        steps.final_gate(run, summary["totals"])
    except RuntimeError as exc:
        reasons.append(f"final gate: {exc}")
    if reasons:
        digest["failure"] = "; ".join(reasons)
    return digest


def alert(
    run: RunContext,
    *,
    failed_tasks: list[str] | tuple[str, ...] = (),
    aws_conn_id: str | None = None,
    channels: dict[str, Callable[[dict], Any]] | None = None,
) -> dict[str, Any]:
    """Build the digest, decide (``alerts.send``; always on failure) and deliver it to each configured channel
    not yet delivered for this run: a retried task never sends the same digest twice (the run's staging record
    ``alert`` lists each channel as it is delivered; staging, so a run that published nothing still publishes
    nothing). ``channels`` replaces the notifiers (tests)."""
    from include.patch_compliance.publish.alerts import notifiers, should_send

    cfg = run.cfg.alerts
    if cfg.sns is None and cfg.slack is None and channels is None:
        return {"sent": [], "reason": "no alert channel configured (alerts.sns, alerts.slack)"}
    digest = run_digest(run, failed_tasks)
    send, why = should_send(cfg, digest)
    record_key = run.key(ALERT_KIND)
    delivered: list[str] = []
    if object_exists(run.hub, run.bucket, record_key):
        delivered = list(run.get(record_key).get("sent", []))
    result = {"send": send, "reason": why, "counts": digest.get("counts"), "failure": digest.get("failure")}
    if not send:
        log.info("no alert: %s", why)
        return {**result, "sent": []}
    targets = channels if channels is not None else notifiers(cfg, digest, aws_conn_id=aws_conn_id)
    sent = []
    for name, notify in targets.items():
        if name in delivered:
            log.info("alert already delivered to %s for this run; not sending it again", name)
            continue
        notify({})
        delivered.append(name)
        sent.append(name)
        run.put(record_key, {"digest": digest, "sent": delivered})
    return {**result, "sent": sent}
