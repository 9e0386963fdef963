"""Three runs of the whole pipeline (plan → scan → wait → collect → report → Security Hub) on the emulated org,
with a node fixed (the emulator's remediate call, then a real Scan) and a node terminated between runs: findings are
created once, updated (later UpdatedAt) without duplicates, resolved as PASSED/ARCHIVED, and archived when gone."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import pyarrow.parquet as pq

from include.patch_compliance import run_staging, steps
from include.patch_compliance.scan.command import ScanRequest, run_tag, scan_record
from include.patch_compliance.wait.status import outcome_records, shard_progress
from tests.orchestration.conftest import BUCKET, fleet_config, make_run

START = datetime.now(UTC).replace(microsecond=0)


def full_run(sandbox, run_id: str, run_after: datetime):
    run = make_run(run_id, fleet_config(security_hub={"skip_if_native_export": True}))
    run.run_after = run_after
    plan = steps.plan_fleet(run)
    req = ScanRequest(operation="Scan", run_id=run_id, run_tag=run_tag(run.dag_id, run_id), scan=run.cfg.scan)
    for wave, refs in plan["waves"].items():
        for ref in refs:
            targets = run_staging.load_plan(run).waves[wave][ref["shard"]]
            records = [scan_record(run.members.get, t, req, START - timedelta(days=1)) for t in targets]
            run.put(run.key("scan", wave, ref["shard"]), records)
            for _ in range(60):
                if shard_progress(run.members.get, records).done:
                    break
                sandbox.admin("advance", seconds=300)
            run.put(run.key("commands", wave, ref["shard"]), outcome_records(run.members.get, records))
            steps.collect_shard(run, ref)
    report = steps.report(run)
    findings = steps.security_hub(run)
    return run, report, findings


def nodes_table(sandbox, report):
    summary = json.loads(
        sandbox.client("s3").get_object(Bucket=BUCKET, Key=report["summary_uri"].split(f"{BUCKET}/")[1])["Body"].read()
    )
    key = summary["tables"]["nodes"].split(f"{BUCKET}/")[1]
    return pq.read_table(io.BytesIO(sandbox.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read())).to_pylist()


def finding(run, account_id, region, instance_id):
    hub = run.members.get(account_id).client("securityhub", region)
    found = hub.get_findings(
        Filters={"Id": [{"Value": f"{account_id}/{region}/{instance_id}/patch-compliance", "Comparison": "EQUALS"}]}
    )["Findings"]
    assert len(found) == 1, found
    return found[0]


def our_findings(run, account_id, region):
    hub = run.members.get(account_id).client("securityhub", region)
    filters = {"GeneratorId": [{"Value": "patch-compliance/node-patch-state", "Comparison": "EQUALS"}]}
    return [f for page in hub.get_paginator("get_findings").paginate(Filters=filters) for f in page["Findings"]]


def test_create_update_resolve_and_archive_across_three_runs(sandbox):
    run1, report1, sh1 = full_run(sandbox, "life-1", START)
    assert sh1["created"] > 2 and sh1["failed"] == 0
    layout = sandbox.fleet["security_hub"]
    excluded = {(d["account_id"], d["region"]) for d in layout["disabled"] + layout["native_export"]}
    candidates = [
        n
        for n in nodes_table(sandbox, report1)
        if n["compliance_status"] == "NON_COMPLIANT"
        and n["coverage_status"] == "SCANNED"
        and (n["account_id"], n["region"]) not in excluded
    ]
    fixed, gone = candidates[0], candidates[1]
    assert finding(run1, fixed["account_id"], fixed["region"], fixed["instance_id"])["RecordState"] == "ACTIVE"
    before = {(n["account_id"], n["region"]): len(our_findings(run1, n["account_id"], n["region"])) for n in candidates}

    sandbox.admin("remediate", account_id=fixed["account_id"], region=fixed["region"], instance_id=fixed["instance_id"])
    sandbox.admin("terminate", account_id=gone["account_id"], region=gone["region"], instance_id=gone["instance_id"])
    run2, report2, sh2 = full_run(sandbox, "life-2", START + timedelta(days=1))
    assert sh2["created"] == 0 and sh2["resolved"] >= 2 and sh2["updated"] >= sh1["created"] - 2

    resolved = finding(run2, fixed["account_id"], fixed["region"], fixed["instance_id"])
    assert resolved["RecordState"] == "ARCHIVED"
    assert resolved["Compliance"]["Status"] == "PASSED"
    assert resolved["Severity"]["Label"] == "INFORMATIONAL"
    archived = finding(run2, gone["account_id"], gone["region"], gone["instance_id"])
    assert archived["RecordState"] == "ARCHIVED"

    still = candidates[2]  # non-compliant in every run
    first_update = finding(run2, still["account_id"], still["region"], still["instance_id"])["UpdatedAt"]
    run3, _, sh3 = full_run(sandbox, "life-3", START + timedelta(days=2))
    assert sh3["created"] == 0 and sh3["failed"] == 0
    again = finding(run3, still["account_id"], still["region"], still["instance_id"])
    assert again["RecordState"] == "ACTIVE" and again["UpdatedAt"] > first_update
    after = {key: len(our_findings(run3, *key)) for key in before}
    assert after == before  # one finding per node, never a duplicate
