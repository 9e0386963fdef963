"""The remediation DAG's publish step bodies: the remediation table and report, and the Security Hub lifecycle of
the touched account-regions (fixed nodes' findings resolve as PASSED/ARCHIVED)."""

from __future__ import annotations

import json
from datetime import date
from typing import Any, NamedTuple

import pandas as pd

from include.patch_compliance import run_staging
from include.patch_compliance.publish.remediation import publish_remediation
from include.patch_compliance.publish.report_files import json_bytes, latest_keys, read_parquet_bytes, run_key
from include.patch_compliance.remediate.plan import RemediationPlan
from include.patch_compliance.remediate.verify import latest_invocations, remediation_rows, remediation_summary
from include.patch_compliance.remediation_steps import load_remediation_plan
from include.patch_compliance.runtime import RunContext
from include.patch_compliance.storage import get_bytes, list_keys, parse_s3_uri, put_bytes
from include.patch_compliance.transform.build import build_tables
from include.patch_compliance.transform.schema import NODES, PATCHES, REMEDIATION, conform
from include.patch_compliance.transform.snapshot import PreviousSnapshot
from include.patch_compliance.transform.summary import summarize
from include.patch_compliance.vocab import RESCAN_WAVE

NodeKey = tuple[str, str, str]
NOT_MANAGED = "not sent: not a managed node when its wave started (DescribeInstanceInformation did not list it)"


class Verified(NamedTuple):
    tables: dict[str, pd.DataFrame]  # the report tables of the touched account-regions, after the run
    remediation: pd.DataFrame  # the remediation table
    block: dict[str, Any]  # summary.json's "remediation"
    docs: list[dict[str, Any]]  # the verification's raw documents


def _optional(run: RunContext, kind: str, default: Any) -> Any:
    key = run.key(kind)
    return run.get(key) if key in list_keys(run.hub, run.bucket, key) else default


def _source_snapshot(run: RunContext, source: dict[str, Any]) -> PreviousSnapshot:
    """The scan the selection came from: the delta and first-seen dates compare against it."""
    day = date.fromisoformat(source["snapshot_date"])
    frames = []
    for table in (NODES, PATCHES):
        bucket, key = parse_s3_uri(source["tables"][table.name])
        frames.append(read_parquet_bytes(get_bytes(run.hub, bucket, key), table, day))
    return PreviousSnapshot(source["run_id"], day, frames[0], frames[1])


def _not_sent(run: RunContext, plan: RemediationPlan) -> dict[NodeKey, str]:
    """Why a planned node got no Install, from its wave's scan records (unreachable, refused, not managed)."""
    out: dict[NodeKey, str] = {}
    for wave, by_target in plan.instance_ids.items():
        records = {
            (r["target"]["account_id"], r["target"]["region"]): r for r in run_staging.read_records(run, "scan", wave)
        }
        for (account_id, region), ids in by_target.items():
            rec = records.get((account_id, region))
            if rec is None:
                continue
            err = rec.get("error")
            reason = f"not sent: {err['stage']}: {err['code']}: {err['message']}" if err else NOT_MANAGED
            out.update({(account_id, region, i): reason for i in ids})
    return out


def _waves(run: RunContext, plan: RemediationPlan, installs: dict[NodeKey, dict]) -> list[dict[str, Any]]:
    decisions = {d["wave"]: d for d in (run.get(k) for k in list_keys(run.hub, run.bucket, run.prefix("gate")))}
    out = []
    for wave in plan.waves:
        mine = [inv for key, inv in installs.items() if inv.get("wave") == wave]
        decision = decisions.get(wave, {})
        out.append(
            {
                "wave": wave,
                "nodes": plan.nodes(wave),
                "invocations": len(mine),
                "failed": sum(1 for inv in mine if inv.get("status") != "Success"),
                "held": bool(decision.get("held")),
                "reason": decision.get("reason"),
            }
        )
    return out


def verified(run: RunContext) -> Verified:
    """Everything staged by the run, as tables: pure and deterministic, so report and security_hub both rebuild
    it instead of passing frames through XCom."""
    selection = run.get(run.key("selection"))
    plan = load_remediation_plan(run)
    docs = _optional(run, "verify", [])
    records = run_staging.read_records(run, "commands")
    snapshot_date = run.run_after.date()
    tables = build_tables(
        docs,
        records,
        _source_snapshot(run, selection["source"]),
        run_id=run.run_id,
        dag_id=run.dag_id,
        snapshot_date=snapshot_date,
        now=run.run_after,
        sla_days=run.cfg.thresholds.sla_days,
        stale_after_days=run.cfg.collect.stale_after_days,
    )
    installs = latest_invocations([r for r in records if r.get("wave") != RESCAN_WAVE])
    waves = _waves(run, plan, installs)
    rescanned = {
        (n["account_id"], n["region"], n["instance_id"]) for n in _optional(run, "rescan", {"nodes": []})["nodes"]
    }
    rows = remediation_rows(
        selection["selected"],
        tables["nodes"],
        installs,
        wave_of=plan.wave_of(),
        held={w["wave"]: w["reason"] for w in waves if w["held"]},
        not_sent=_not_sent(run, plan),
        rescanned=rescanned,
        source_run_id=selection["source"]["run_id"],
        reboot_option=run.cfg.scan.reboot_option,
    )
    table = conform(rows.assign(run_id=run.run_id, dag_id=run.dag_id, snapshot_date=snapshot_date), REMEDIATION)
    block = remediation_summary(table, waves)
    block.update(
        source_run_id=selection["source"]["run_id"],
        source_dag_id=selection["source"]["dag_id"],
        source_snapshot_date=selection["source"]["snapshot_date"],
        reboot_option=run.cfg.scan.reboot_option,
        dry_run=False,
        left_out=selection["left_out_counts"],
    )
    return Verified(tables, table, block, docs)


def report(run: RunContext) -> dict[str, Any]:
    """Publish the remediation table, report.html and summary.json (with the remediation block)."""
    v = verified(run)
    summary = summarize(
        v.tables, run_id=run.run_id, dag_id=run.dag_id, snapshot_date=run.run_after.date(), generated_at=run.run_after
    )
    summary["remediation"] = v.block
    written = publish_remediation(
        run.hub,
        run.cfg.reports,
        v.remediation,
        summary,
        v.tables,
        run_id=run.run_id,
        dag_id=run.dag_id,
        snapshot_date=run.run_after.date(),
    )
    bucket_prefix = f"s3://{run.bucket}/"
    return {
        "totals": summary["totals"],
        "results": v.block["results"],
        "selected": v.block["selected"],
        "sent": v.block["sent"],
        "report_url": written["report.html"],
        "summary_uri": written["summary.json"],
        "table_uri": written[REMEDIATION.name],
        "run_prefix": written["report.html"].removeprefix(bucket_prefix).rsplit("/", 1)[0],
    }


def security_hub(run: RunContext) -> dict[str, Any]:
    """The findings lifecycle on the touched account-regions' fresh state, then the counts in summary.json."""
    from include.patch_compliance.publish.securityhub import publish_findings

    v = verified(run)
    scanned = sorted({(d["target"]["account_id"], d["target"]["region"]) for d in v.docs if d["status"] == "OK"})
    result = publish_findings(
        run.members.get,
        v.tables["nodes"],
        v.tables["patches"],
        cfg=run.cfg.security_hub,
        run_id=run.run_id,
        now=run.run_after,
        partition=run.hub.partition,
        scanned_targets=scanned,
    ).as_dict()
    counts = {k: result[k] for k in ("created", "updated", "resolved", "failed", "skipped")}
    reports = run.cfg.reports

    def put(key: str, obj: Any) -> None:
        body = json_bytes(obj)
        put_bytes(run.hub, run.bucket, key, body, content_type="application/json", kms_key_id=reports.kms_key_id)

    summary_key = run_key(reports.prefix, run.run_id, "summary.json")
    summary = json.loads(get_bytes(run.hub, run.bucket, summary_key))
    summary["security_hub"] = counts
    put(run_key(reports.prefix, run.run_id, "security_hub.json"), result)
    put(summary_key, summary)
    put(latest_keys(reports.prefix, run.dag_id)[0], summary)  # still this run: re-point with the counts
    return {**counts, "enabled": result["enabled"], "errors": result["errors"][:20]}
