"""The step bodies: plain functions of a RunContext that tests call without Airflow; ``orchestration/`` wraps them
in Airflow tasks and operators, and DAG files only wire those."""

from __future__ import annotations

import json
import logging
import tempfile
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from include.patch_compliance.aws.clients import GLOBAL_REGION
from include.patch_compliance.collect.collector import collect_target
from include.patch_compliance.discover.org import walk_organization
from include.patch_compliance.discover.plan import build_plan
from include.patch_compliance.run_staging import (
    load_plan,
    read_records,
    scan_listings,
    shard_records,
    staged,
    staged_run,
)
from include.patch_compliance.runtime import RunContext
from include.patch_compliance.storage import (
    get_bytes,
    list_keys,
    object_exists,
    parse_s3_uri,
    put_bytes,
    s3_uri,
    staged_key,
    to_jsonable,
)
from include.patch_compliance.vocab import FLEET_DAG_IDS
from include.patch_compliance.wait.status import failure_ratio

if TYPE_CHECKING:
    from include.patch_compliance.transform.staging import StagedRun

log = logging.getLogger(__name__)
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


def wave_gate(
    run: RunContext,
    wave: str,
    previous: str | None,
    operation: str,
    *,
    setting: str = "scan.install_max_failure_ratio",
    limit: float | None = None,
    refuse: str | None = None,
) -> dict[str, Any]:
    """Decide whether a wave may start. Scan waves always may; an Install wave only when the previous wave's
    invocation failure ratio is at most ``limit`` (default: the ``setting``, ``scan.install_max_failure_ratio``).
    ``refuse`` holds the wave with that reason (e.g. a closed change window). The decision is stored for the
    final gate, which fails the run after the reports are out."""
    decision: dict[str, Any] = {"wave": wave, "previous": previous, "operation": operation, "held": False}
    earlier = _gate_decision(run, previous) if previous else None
    if earlier and earlier.get("held"):
        decision.update(held=True, reason=f"wave {wave!r} held because wave {previous!r} was held")
    elif refuse:
        decision.update(held=True, reason=f"wave {wave!r} held: {refuse}")
    elif operation == "Install" and previous is not None:
        ratio, failed, total = failure_ratio(read_records(run, "commands", previous))
        limit = run.cfg.scan.install_max_failure_ratio if limit is None else limit
        decision.update(failure_ratio=ratio, failed=failed, invocations=total, limit=limit, held=ratio > limit)
        if decision["held"]:
            decision["reason"] = (
                f"wave {wave!r} held: Install failed on {failed} of {total} nodes ({ratio:.0%}) in wave "
                f"{previous!r}, above {setting} {limit:.0%}"
            )
    run.put(run.key("gate", wave), decision)
    return decision


def _gate_decision(run: RunContext, wave: str) -> dict[str, Any] | None:
    return staged(run, "gate", wave)


def collect_shard(run: RunContext, shard: dict[str, Any]) -> dict[str, Any]:
    """Collect every target of a shard (bounded concurrency), normalise the shard into the staged tables with its
    command outcomes, and stage them as Parquet (docs/architecture.md, "Staged tables")."""
    wave, number = shard["wave"], int(shard["shard"])
    docs = collect_docs(run, wave, number)
    key = stage_shard(run, wave, number, docs)
    return {
        "wave": wave,
        "shard": number,
        "targets": len(docs),
        "nodes": sum(len(d["instance_information"]) for d in docs),
        "unreachable": sum(1 for d in docs if d["status"] == "UNREACHABLE"),
        "warnings": sum(len(d["warnings"]) for d in docs),
        "reused_listings": sum(1 for d in docs if d["listing_reused"]),
        "tag_calls": sum(len(d.get("node_tags", [])) for d in docs)
        + sum(1 for d in docs for w in d["warnings"] if w["stage"] == "node_tags"),
        "staged_uri": s3_uri(run.bucket, key.rsplit("/", 1)[0] + "/"),
    }


def collect_docs(run: RunContext, wave: str, number: int) -> list[dict[str, Any]]:
    """The raw documents of one shard's targets (bounded concurrency), in memory, as JSON would give them back."""
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
    return to_jsonable(docs)  # the encoding the tables are built from (ISO-8601 times), as JSON staging gave it


def stage_shard(run: RunContext, wave: str, number: int, docs: list[dict[str, Any]]) -> str:
    """Normalise a shard's raw documents with its staged command outcomes and write its staged tables; returns
    the key of the last one written (the targets table, whose presence means the shard is complete)."""
    from include.patch_compliance.transform.staging import STAGED, parquet_bytes, stage_tables

    tables = stage_tables(
        docs,
        shard_records(run, "commands", wave, number),
        now=run.run_after,
        sla_days=run.cfg.thresholds.sla_days,
        stale_after_days=run.cfg.collect.stale_after_days,
    )
    for name in STAGED:  # in STAGED order: targets last
        key = staged_key(run.cfg.reports.prefix, run.run_id, wave, number, name)
        put_bytes(
            run.hub,
            run.bucket,
            key,
            parquet_bytes(tables[name]),
            content_type=PARQUET,
            kms_key_id=run.cfg.reports.kms_key_id,
        )
    return key


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
    hub_reason = _security_hub_reason(run)
    if hub_reason:
        reasons.append(hub_reason)
    if reasons:
        raise RuntimeError("; ".join(reasons))
    return f"ok: {unreachable} of {targets} account-regions unreachable ({ratio:.0%} <= {limit:.0%})"


def _security_hub_reason(run: RunContext) -> str | None:
    """Why Security Hub fails the run: account-regions with an error (a failed Patch Manager export check, a
    disabled hub, refused calls) above ``thresholds.max_securityhub_error_ratio``; None when within it or when
    the step wrote nothing (disabled, or it failed and its task says so)."""
    from include.patch_compliance.publish.report_files import run_key

    key = run_key(run.cfg.reports.prefix, run.run_id, "security_hub.json")
    if not object_exists(run.hub, run.bucket, key):
        return None
    outcome = json.loads(get_bytes(run.hub, run.bucket, key))
    failing = sorted({(e["account_id"], e["region"]) for e in outcome.get("errors", [])}, key=str)
    targets = max(int(outcome.get("targets") or 0), len(failing))
    ratio = len(failing) / targets if targets else 0.0
    limit = run.cfg.thresholds.max_securityhub_error_ratio
    if ratio <= limit:
        return None
    first: dict[tuple[str, str], str] = {}
    for e in outcome["errors"]:
        first.setdefault((e["account_id"], e["region"]), f"{e['stage']}: {e['code']}")
    shown = ", ".join(f"{a}/{r} ({first[(a, r)]})" for a, r in failing[:5])
    return (
        f"Security Hub failed in {len(failing)} of {targets} account-regions ({ratio:.0%}), above "
        f"thresholds.max_securityhub_error_ratio {limit:.0%}: {shown}{' ...' if len(failing) > 5 else ''}; "
        f"see {key}"
    )


class NothingToPublish(RuntimeError):
    """The run has nothing that may replace the published reports; the message says why. ``latest/``, the
    history and the tables stay as the last good run left them."""


def check_publishable(staged: StagedRun, *, discovered: bool) -> None:
    """Raise NothingToPublish unless discover succeeded and at least one account-region was read (a staged
    target with status OK). Some waves failing is fine (what was collected is published and the final gate fails
    the run); a run that was refused, failed in discover or read nothing would publish an empty fleet, move
    ``latest/`` and become the previous snapshot, so the next good run would report every node and patch as new."""
    kept = "nothing was published: latest/, the history and the tables still show the last good run"
    if not discovered:
        raise NothingToPublish(f"discover did not succeed in this run (refused or failed: see its log), so {kept}")
    targets = staged.table("targets", ["target_status", "target_error"])
    statuses = targets.column(0).to_pylist()
    if "OK" not in statuses:
        codes = sorted({str(code) for code in targets.column(1).to_pylist()})
        raise NothingToPublish(
            f"no account-region was collected in this run ({len(statuses)} staged, all unreachable: {codes}); {kept}"
        )


def report(run: RunContext, *, discovered: bool = True) -> dict[str, Any]:
    """Assemble the run's tables from the collect tasks' staged Parquet (and the previous snapshot of this DAG)
    and publish them. The run's stable clock (``run_after``) makes a re-run byte-identical. Raises
    NothingToPublish (before writing anything) when the run has nothing publishable (``check_publishable``)."""
    from include.patch_compliance.publish.reports import build_and_publish

    reports = run.cfg.reports
    with tempfile.TemporaryDirectory(prefix="pc-report-") as workdir:
        staged = staged_run(run, workdir)
        check_publishable(staged, discovered=discovered)
        published = build_and_publish(
            run.hub,
            reports,
            staged,
            run_id=run.run_id,
            dag_id=run.dag_id,
            now=run.run_after,
            sla_days=run.cfg.thresholds.sla_days,
            stale_after_days=run.cfg.collect.stale_after_days,
            skipped=load_plan(run).skipped,
        )
    unrecognised = published.summary["unrecognised"]
    if unrecognised:
        log.warning(
            "values AWS sent that this version does not know (kept as UNKNOWN, counted in summary.json "
            "under unrecognised): %s",
            json.dumps(unrecognised, sort_keys=True),
        )
    written = published.written
    return {
        "totals": published.summary["totals"],
        "report_url": written["report.html"],
        "summary_uri": written["summary.json"],
        "run_prefix": written["report.html"].split(f"s3://{reports.bucket}/", 1)[1].rsplit("/", 1)[0],
        "staged_shards": len(staged.shards),
    }


def security_hub(run: RunContext) -> dict[str, Any]:
    """Import/update/resolve one finding per node in its own account-region, then record the counts next to the
    report and in summary.json (and the latest pointers). Reads the published tables as Arrow, only the columns
    the findings use, and streams account by account (each member context released when its account is done)."""
    from include.patch_compliance.publish.report_files import json_bytes, latest_keys, run_key
    from include.patch_compliance.publish.securityhub import PATCH_FIELDS, publish_findings

    reports = run.cfg.reports
    summary = json.loads(get_bytes(run.hub, run.bucket, run_key(reports.prefix, run.run_id, "summary.json")))
    accounts = _published_table(run, summary, "accounts", ["account_id", "region", "unreachable_targets"])
    collected = [
        (a, r)
        for a, r, unreachable in zip(*(accounts[c].to_pylist() for c in accounts.column_names), strict=True)
        if not unreachable
    ]
    result = publish_findings(
        run.members.get,
        _published_table(run, summary, "nodes"),
        _published_table(run, summary, "patches", list(PATCH_FIELDS)),
        cfg=run.cfg.security_hub,
        run_id=run.run_id,
        now=run.run_after,
        partition=run.hub.partition,
        scanned_targets=sorted(collected),
        max_workers=run.cfg.orchestration.max_workers,
        release=run.members.release,
    )
    outcome = result.as_dict()
    counts = {k: outcome[k] for k in ("created", "updated", "resolved", "failed", "skipped", "targets")}
    counts["errors"] = result.error_targets()  # account-regions with an error (the final gate's ratio)

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
        **{k: v for k, v in counts.items() if k != "errors"},
        "error_targets": counts["errors"],
        "enabled": outcome["enabled"],
        "errors": outcome["errors"][:20],
        "failed_findings": outcome["failed_findings"][:20],
    }


def _published_table(run: RunContext, summary: dict[str, Any], name: str, columns: list[str] | None = None) -> Any:
    """One of this run's published tables (summary.json names them) as an Arrow table of ``columns``."""
    import io

    import pyarrow.parquet as pq

    bucket, key = parse_s3_uri(summary["tables"][name])
    return pq.read_table(io.BytesIO(get_bytes(run.hub, bucket, key)), columns=columns)


def trends(run: RunContext) -> dict[str, Any]:
    """Rebuild fleet_daily from the published history of both DAGs and publish it."""
    from include.patch_compliance.publish.reports import load_history, publish_fleet_daily
    from include.patch_compliance.transform.trends import fleet_daily

    reports = run.cfg.reports
    history = [
        e for dag_id in FLEET_DAG_IDS for e in load_history(run.hub, reports, dag_id, limit=reports.history_runs)
    ]
    frame = fleet_daily(history)
    written = publish_fleet_daily(run.hub, reports, frame)
    return {"days": len(written), "rows": len(frame), "uris": written}
