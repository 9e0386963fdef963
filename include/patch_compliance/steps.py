"""The step bodies: plain functions of a RunContext that tests call without Airflow; ``orchestration/`` wraps them
in Airflow tasks and operators, and DAG files only wire those."""

from __future__ import annotations

import json
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from include.patch_compliance.aws.clients import GLOBAL_REGION
from include.patch_compliance.collect.collector import collect_target
from include.patch_compliance.discover.org import walk_organization
from include.patch_compliance.discover.plan import Plan, build_plan
from include.patch_compliance.runtime import RunContext
from include.patch_compliance.storage import (
    StorageError,
    download,
    list_keys,
    put_bytes,
    s3_uri,
    staged_key,
    staged_prefix,
    to_jsonable,
)
from include.patch_compliance.wait.status import failure_ratio

if TYPE_CHECKING:
    from include.patch_compliance.transform.staging import StagedRun

PARQUET = "application/vnd.apache.parquet"


def plan_fleet(run: RunContext, ou_ids: list[str] | None = None, regions: list[str] | None = None) -> dict[str, Any]:
    """Walk the organization, build the plan, store it in S3; return the small per-wave shard references."""
    units, accounts = walk_organization(run.hub.client("organizations", GLOBAL_REGION))
    plan = build_plan(units, accounts, run.cfg, ou_override=ou_ids or None, regions_override=regions or None)
    uri = run.put(run.key("plan"), plan.as_dict())
    return {
        "waves": plan.shard_refs(),
        "targets": len(plan.targets),
        "accounts": len({t.account_id for t in plan.targets}),
        "skipped": len(plan.skipped),
        "plan_uri": uri,
    }


def load_plan(run: RunContext) -> Plan:
    return Plan.from_dict(run.get(run.key("plan")))


def read_records(run: RunContext, kind: str, wave: str | None = None) -> list[dict[str, Any]]:
    """Every record of a staging kind for this run (all shards, optionally one wave), in key order."""
    out: list[dict[str, Any]] = []
    for key in list_keys(run.hub, run.bucket, run.prefix(kind, wave)):
        out += run.get(key)
    return out


def wave_gate(run: RunContext, wave: str, previous: str | None, operation: str) -> dict[str, Any]:
    """Decide whether a wave may start. Scan waves always may; an Install wave only when the previous wave's
    invocation failure ratio is at most ``scan.install_max_failure_ratio``. The decision is stored for the final
    gate, which fails the run after the reports are out."""
    decision: dict[str, Any] = {"wave": wave, "previous": previous, "operation": operation, "held": False}
    earlier = _gate_decision(run, previous) if previous else None
    if earlier and earlier.get("held"):
        decision.update(held=True, reason=f"wave {wave!r} held because wave {previous!r} was held")
    elif operation == "Install" and previous is not None:
        ratio, failed, total = failure_ratio(read_records(run, "commands", previous))
        limit = run.cfg.scan.install_max_failure_ratio
        decision.update(failure_ratio=ratio, failed=failed, invocations=total, limit=limit, held=ratio > limit)
        if decision["held"]:
            decision["reason"] = (
                f"wave {wave!r} held: Install failed on {failed} of {total} nodes ({ratio:.0%}) in wave "
                f"{previous!r}, above scan.install_max_failure_ratio {limit:.0%}"
            )
    run.put(run.key("gate", wave), decision)
    return decision


def _gate_decision(run: RunContext, wave: str) -> dict[str, Any] | None:
    key = run.key("gate", wave)
    return run.get(key) if key in list_keys(run.hub, run.bucket, key) else None


def collect_shard(run: RunContext, shard: dict[str, Any]) -> dict[str, Any]:
    """Collect every target of a shard (bounded concurrency), normalise the shard into the staged tables with its
    command outcomes, and stage them as Parquet (docs/architecture.md, "Staged tables")."""
    from include.patch_compliance.transform.staging import STAGED, parquet_bytes, stage_tables

    wave, number = shard["wave"], int(shard["shard"])
    targets = load_plan(run).waves[wave][number]
    listings = scan_listings(run, wave, number)
    with ThreadPoolExecutor(max_workers=run.cfg.orchestration.max_workers) as pool:
        docs = list(
            pool.map(
                lambda t: collect_target(
                    run.members.get, t.as_dict(), run.cfg.collect, listing=listings.get((t.account_id, t.region))
                ),
                targets,
            )
        )
    docs = to_jsonable(docs)  # the encoding the tables are built from (ISO-8601 times), as JSON staging gave it
    tables = stage_tables(
        docs,
        _shard_records(run, "commands", wave, number),
        now=run.run_after,
        sla_days=run.cfg.thresholds.sla_days,
        stale_after_days=run.cfg.collect.stale_after_days,
    )
    for name in STAGED:  # in STAGED order: targets last, so its presence means the shard is complete
        key = staged_key(run.cfg.reports.prefix, run.run_id, wave, number, name)
        put_bytes(
            run.hub,
            run.bucket,
            key,
            parquet_bytes(tables[name]),
            content_type=PARQUET,
            kms_key_id=run.cfg.reports.kms_key_id,
        )
    return {
        "wave": wave,
        "shard": number,
        "targets": len(docs),
        "nodes": sum(len(d["instance_information"]) for d in docs),
        "unreachable": sum(1 for d in docs if d["status"] == "UNREACHABLE"),
        "warnings": sum(len(d["warnings"]) for d in docs),
        "reused_listings": sum(1 for d in docs if d["listing_reused"]),
        "staged_uri": s3_uri(run.bucket, key.rsplit("/", 1)[0] + "/"),
    }


def scan_listings(run: RunContext, wave: str, shard: int) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """The scan's node listing per (account_id, region) of this shard, where it is at most
    ``collect.node_listing_max_age_seconds`` old (none for the collect DAG, or for tag-targeted scans)."""
    max_age = run.cfg.collect.node_listing_max_age_seconds
    if max_age <= 0:
        return {}
    now = datetime.now(UTC)
    fresh = {}
    for rec in _shard_records(run, "scan", wave, shard):
        listing, listed_at = rec.get("instance_information"), rec.get("listed_at")
        if listing is not None and listed_at and (now - datetime.fromisoformat(listed_at)).total_seconds() <= max_age:
            fresh[(rec["target"]["account_id"], rec["target"]["region"])] = listing
    return fresh


def _shard_records(run: RunContext, kind: str, wave: str, shard: int) -> list[dict[str, Any]]:
    """A shard's staged JSON records of ``kind``; [] when the step that writes them did not run for it."""
    key = run.key(kind, wave, shard)
    return run.get(key) if key in list_keys(run.hub, run.bucket, key) else []


def staged_run(run: RunContext, workdir: str, tables: tuple[str, ...] | None = None) -> StagedRun:
    """Download every complete staged shard (its targets table is written last) into ``workdir``, only
    ``tables`` (default all). The command outcomes of a shard whose collect task never staged it are normalised
    here, one shard at a time, so they are not lost (the only JSON the report step reads)."""
    from include.patch_compliance.transform.staging import STAGED, StagedRun, stage_commands

    wanted = tuple(STAGED) if tables is None else tables
    base = staged_prefix(run.cfg.reports.prefix, run.run_id)
    shards: dict[str, dict[str, str]] = {}
    for key in list_keys(run.hub, run.bucket, base):
        folder, name = key[len(base) :].rsplit("/", 1)
        shards.setdefault(folder, {})[name.removesuffix(".parquet")] = key
    out: list[dict[str, Any]] = []
    for index, folder in enumerate(sorted(f for f, names in shards.items() if "targets" in names)):
        missing = [name for name in wanted if name not in shards[folder]]
        if missing:
            raise StorageError(
                f"staged shard {s3_uri(run.bucket, base + folder)}/ lacks {missing}; re-run that shard's collect task"
            )
        os.makedirs(os.path.join(workdir, str(index)))
        out.append(
            {
                name: download(run.hub, run.bucket, shards[folder][name], os.path.join(workdir, str(index), name))
                for name in wanted
            }
        )
    if "commands" in wanted:
        done = {folder for folder, names in shards.items() if "targets" in names}
        commands_base = run.prefix("commands")
        for key in list_keys(run.hub, run.bucket, commands_base):
            if key[len(commands_base) :].removesuffix(".json.gz") not in done:
                out.append({"commands": stage_commands(run.get(key))})
    return StagedRun(tuple(out))


def final_gate(run: RunContext, totals: dict[str, Any]) -> str:
    """Fail the run (after everything was published) when too many targets were unreachable or a wave was held.
    Returns a one-line verdict; raises RuntimeError with every reason otherwise."""
    reasons = []
    targets = int(totals.get("targets") or 0)
    unreachable = int(totals.get("unreachable_targets") or 0)
    ratio = unreachable / targets if targets else 0.0
    limit = run.cfg.thresholds.max_unreachable_ratio
    if ratio > limit:
        reasons.append(
            f"{unreachable} of {targets} account-regions unreachable ({ratio:.0%}), above "
            f"thresholds.max_unreachable_ratio {limit:.0%}; see the unreachable list in the report"
        )
    for key in list_keys(run.hub, run.bucket, run.prefix("gate")):
        decision = run.get(key)
        if decision.get("held"):
            reasons.append(decision["reason"])
    if reasons:
        raise RuntimeError("; ".join(reasons))
    return f"ok: {unreachable} of {targets} account-regions unreachable ({ratio:.0%} <= {limit:.0%})"


def report(run: RunContext) -> dict[str, Any]:
    """Assemble the run's tables from the collect tasks' staged Parquet (and the previous snapshot of this DAG)
    and publish them. The run's stable clock (``run_after``) makes a re-run byte-identical."""
    from include.patch_compliance.publish.reports import build_and_publish

    reports = run.cfg.reports
    with tempfile.TemporaryDirectory(prefix="pc-report-") as workdir:
        staged = staged_run(run, workdir)
        published = build_and_publish(
            run.hub,
            reports,
            staged,
            run_id=run.run_id,
            dag_id=run.dag_id,
            now=run.run_after,
            sla_days=run.cfg.thresholds.sla_days,
            stale_after_days=run.cfg.collect.stale_after_days,
        )
    written = published.written
    return {
        "totals": published.summary["totals"],
        "report_url": written["report.html"],
        "summary_uri": written["summary.json"],
        "run_prefix": written["report.html"].split(f"s3://{reports.bucket}/", 1)[1].rsplit("/", 1)[0],
        "staged_shards": len(staged.shards),
    }


def scanned_targets(run: RunContext) -> set[tuple[str, str]]:
    """(account_id, region) of every target a collect task staged as readable (OK), read from the staged targets
    tables (three of their columns)."""
    with tempfile.TemporaryDirectory(prefix="pc-targets-") as workdir:
        targets = staged_run(run, workdir, ("targets",)).table("targets", ["account_id", "region", "target_status"])
    return {
        (account, region)
        for account, region, status in zip(*(targets.column(i).to_pylist() for i in range(3)), strict=True)
        if status == "OK"
    }


def security_hub(run: RunContext) -> dict[str, Any]:
    """Import/update/resolve one finding per node in its own account-region, then record the counts next to the
    report and in summary.json (and the latest pointers)."""
    from include.patch_compliance.publish.report_files import json_bytes, latest_keys, read_parquet_bytes, run_key
    from include.patch_compliance.publish.securityhub import publish_findings
    from include.patch_compliance.storage import get_bytes, parse_s3_uri, put_bytes
    from include.patch_compliance.transform.schema import NODES, PATCHES

    reports = run.cfg.reports
    summary = json.loads(get_bytes(run.hub, run.bucket, run_key(reports.prefix, run.run_id, "summary.json")))
    snapshot_date = date.fromisoformat(summary["snapshot_date"])
    frames = {}
    for table in (NODES, PATCHES):
        bucket, key = parse_s3_uri(summary["tables"][table.name])
        frames[table.name] = read_parquet_bytes(get_bytes(run.hub, bucket, key), table, snapshot_date)
    scanned = scanned_targets(run)
    result = publish_findings(
        run.members.get,
        frames["nodes"],
        frames["patches"],
        cfg=run.cfg.security_hub,
        run_id=run.run_id,
        now=run.run_after,
        partition=run.hub.partition,
        scanned_targets=sorted(scanned),
    )
    outcome = result.as_dict()
    counts = {k: outcome[k] for k in ("created", "updated", "resolved", "failed", "skipped")}

    def put(key: str, obj: Any) -> None:
        put_bytes(
            run.hub, run.bucket, key, json_bytes(obj), content_type="application/json", kms_key_id=reports.kms_key_id
        )

    put(run_key(reports.prefix, run.run_id, "security_hub.json"), outcome)
    summary["security_hub"] = counts
    put(run_key(reports.prefix, run.run_id, "summary.json"), summary)
    for key in latest_keys(reports.prefix, run.dag_id):  # still this run: re-point with the counts
        put(key, summary)
    return {
        **counts,
        "enabled": outcome["enabled"],
        "errors": outcome["errors"][:20],
        "failed_findings": outcome["failed_findings"][:20],
    }


def trends(run: RunContext) -> dict[str, Any]:
    """Rebuild fleet_daily from the published history of both DAGs and publish it."""
    from include.patch_compliance.publish.reports import load_history, publish_fleet_daily
    from include.patch_compliance.transform.trends import fleet_daily

    reports = run.cfg.reports
    history = [
        e
        for dag_id in ("patch_compliance_scan", "patch_compliance_collect")
        for e in load_history(run.hub, reports, dag_id, limit=reports.history_runs)
    ]
    frame = fleet_daily(history)
    written = publish_fleet_daily(run.hub, reports, frame)
    return {"days": len(written), "rows": len(frame), "uris": written}
