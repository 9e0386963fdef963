"""Collect against the emulated organization: compliance read in bulk (ListResourceComplianceSummaries, then
ListComplianceItems only for NON_COMPLIANT nodes), the scan's node listing reused, every shard staged as Parquet,
and the report built from the staged Parquet alone (docs/aws-behaviours.md §10, §35; docs/architecture.md)."""

from __future__ import annotations

import io
import json
import math
import tempfile
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from include.patch_compliance import run_staging, steps
from include.patch_compliance.aws import paginate
from include.patch_compliance.scan.command import ScanRequest, run_tag, scan_record
from include.patch_compliance.storage import get_bytes, list_keys, parse_s3_uri, staging_prefix, to_jsonable
from include.patch_compliance.transform import build_tables
from include.patch_compliance.transform import staging as staging_module
from include.patch_compliance.transform.assemble import assemble_tables
from tests.orchestration.conftest import fleet_config, make_run, staged

SUMMARY_TYPES = [{"Key": "ComplianceType", "Values": ["Patch", "Association"], "Type": "EQUAL"}]


@pytest.fixture
def captured(monkeypatch):
    """The raw documents and command records each collect task staged (what the JSON path would have read)."""
    seen: dict[str, list] = {"docs": [], "commands": []}
    real = staging_module.stage_tables

    def spy(raw_docs, command_records, **kwargs):
        seen["docs"] += raw_docs
        seen["commands"] += command_records
        return real(raw_docs, command_records, **kwargs)

    monkeypatch.setattr(staging_module, "stage_tables", spy)
    return seen


def collect_all(run) -> list[dict]:
    plan = steps.plan_fleet(run)
    return [steps.collect_shard(run, ref) for refs in plan["waves"].values() for ref in refs]


def readable_targets(run) -> list[tuple[str, str]]:
    targets = staged(run, "targets")
    ok = targets[targets["target_status"] == "OK"]
    return list(zip(ok["account_id"], ok["region"], strict=True))


def test_compliance_is_read_in_bulk_and_items_only_for_non_compliant_nodes_aws_behaviours_26(sandbox):
    run = make_run("bulk-compliance", dag_id="patch_compliance_collect")
    steps.plan_fleet(run)
    sandbox.reset_calls()
    collect_all(run)
    calls = sandbox.calls()

    summary_pages = listings = item_pages = managed = 0
    for account, region in readable_targets(run):
        ssm = run.members.get(account).client("ssm", region)
        ids = {n["InstanceId"] for n in paginate(ssm, "describe_instance_information", "InstanceInformationList")}
        managed += len(ids)
        listings += max(1, math.ceil(len(ids) / 50))
        rows = list(
            paginate(
                ssm,
                "list_resource_compliance_summaries",
                "ResourceComplianceSummaryItems",
                Filters=SUMMARY_TYPES,
                MaxResults=50,
            )
        )
        summary_pages += max(1, math.ceil(len(rows) / 50)) if ids else 0
        for node in sorted({r["ResourceId"] for r in rows if r["Status"] == "NON_COMPLIANT"} & ids):
            types = [r["ComplianceType"] for r in rows if r["ResourceId"] == node and r["Status"] == "NON_COMPLIANT"]
            pages = ssm.get_paginator("list_compliance_items").paginate(
                ResourceIds=[node],
                ResourceTypes=["ManagedInstance"],
                Filters=[
                    {"Key": "ComplianceType", "Values": types, "Type": "EQUAL"},
                    {"Key": "Status", "Values": ["NON_COMPLIANT"], "Type": "EQUAL"},
                ],
                MaxResults=50,
            )
            item_pages += sum(1 for _ in pages)
    assert calls["ssm.ListResourceComplianceSummaries"] == summary_pages > 0  # one paged listing per target
    assert calls["ssm.ListComplianceItems"] == item_pages > 0  # NON_COMPLIANT nodes only, one page each here
    assert item_pages < managed  # the JSON path listed every managed node's items
    assert calls["ssm.DescribeInstanceInformation"] == listings  # no scan ran: collect lists the nodes itself


def test_small_fleet_staged_tables_equal_the_json_path_and_keep_the_non_compliant_items(sandbox, captured):
    run = make_run("json-vs-staged", dag_id="patch_compliance_collect")
    collect_all(run)
    kwargs = {
        "run_id": run.run_id,
        "dag_id": run.dag_id,
        "snapshot_date": run.run_after.date(),
        "now": run.run_after,
        "sla_days": run.cfg.thresholds.sla_days,
        "stale_after_days": run.cfg.collect.stale_after_days,
    }
    with tempfile.TemporaryDirectory() as workdir:
        new = assemble_tables(run_staging.staged_run(run, workdir), None, **kwargs)
    docs = captured["docs"]
    expected = build_tables(docs, captured["commands"], None, **kwargs)
    for name, frame in expected.items():
        pd.testing.assert_frame_equal(new[name], frame, obj=name)
    assert len(new["nodes"]) > 40 and len(new["compliance_items"]) > 0

    # The previous collector listed every item of every managed node: the table keeps its NON_COMPLIANT rows.
    full = []
    for doc in docs:
        items = {}
        if doc["status"] == "OK":
            ssm = run.members.get(doc["target"]["account_id"]).client("ssm", doc["target"]["region"])
            for node in sorted(n["InstanceId"] for n in doc["instance_information"]):
                items[node] = list(
                    paginate(
                        ssm,
                        "list_compliance_items",
                        "ComplianceItems",
                        ResourceIds=[node],
                        ResourceTypes=["ManagedInstance"],
                        Filters=SUMMARY_TYPES,
                        MaxResults=50,
                    )
                )
        full.append({**doc, "compliance_items": items})
    everything = build_tables(to_jsonable(full), captured["commands"], None, **kwargs)["compliance_items"]
    kept = everything[everything["status"] == "NON_COMPLIANT"].reset_index(drop=True)
    pd.testing.assert_frame_equal(new["compliance_items"], kept)
    assert len(kept) < len(everything)  # COMPLIANT and not-applicable items are no longer listed


def _scan(run, wave: str, number: int, listed_ago: timedelta = timedelta(0)) -> list[dict]:
    req = ScanRequest(operation="Scan", run_id=run.run_id, run_tag=run_tag(run.dag_id, run.run_id), scan=run.cfg.scan)
    targets = run_staging.load_plan(run).waves[wave][number]
    since = datetime.now(UTC) - timedelta(days=1)
    records = [scan_record(run.members.get, t, req, since, now=lambda: datetime.now(UTC) - listed_ago) for t in targets]
    run.put(run.key("scan", wave, number), records)
    return records


def test_collect_reuses_the_scan_node_listing_while_fresh(sandbox):
    run = make_run("listing-reuse")
    ref = steps.plan_fleet(run)["waves"]["rest"][0]
    records = _scan(run, ref["wave"], ref["shard"])
    scanned = [r for r in records if r["status"] in ("SENT", "NO_TARGETS")]
    assert scanned and all("instance_information" in r and r["listed_at"] for r in scanned)
    sandbox.reset_calls()
    result = steps.collect_shard(run, ref)
    assert sandbox.calls().get("ssm.DescribeInstanceInformation", 0) == 0
    assert result["reused_listings"] == len(scanned)
    reused = staged(run, "nodes")

    fresh = make_run("listing-reuse", fleet_config(collect={"node_listing_max_age_seconds": 0}))
    sandbox.reset_calls()
    assert steps.collect_shard(fresh, ref)["reused_listings"] == 0
    assert sandbox.calls()["ssm.DescribeInstanceInformation"] >= len(scanned)
    pd.testing.assert_frame_equal(staged(fresh, "nodes"), reused)  # same nodes either way (frozen clock)


def test_an_old_scan_listing_is_listed_again(sandbox):
    run = make_run("listing-stale", fleet_config(collect={"node_listing_max_age_seconds": 600}))
    ref = steps.plan_fleet(run)["waves"]["rest"][0]
    records = _scan(run, ref["wave"], ref["shard"], listed_ago=timedelta(minutes=11))
    sandbox.reset_calls()
    assert steps.collect_shard(run, ref)["reused_listings"] == 0
    assert sandbox.calls()["ssm.DescribeInstanceInformation"] >= sum(1 for r in records if r["status"] == "SENT")


def test_the_report_reads_the_staged_parquet_and_nothing_else(sandbox):
    run = make_run("report-from-parquet", dag_id="patch_compliance_collect")
    results = collect_all(run)
    keys = list_keys(run.hub, run.bucket, staging_prefix(run.cfg.reports.prefix, run.run_id))
    assert not [k for k in keys if "/raw/" in k]  # no JSON documents are staged any more
    staged_files = [k for k in keys if k.endswith(".parquet")]
    assert len(staged_files) == 5 * len(results)
    sandbox.reset_calls()
    report = steps.report(run)
    calls = sandbox.calls()
    # The staged tables and the plan (its skipped accounts); first run: no previous snapshot, no history to read.
    assert calls["s3.GetObject"] == len(staged_files) + 1
    assert report["staged_shards"] == len(results) and report["totals"]["nodes"] > 40


def test_reporting_a_run_again_from_its_staged_parquet_rewrites_the_same_bytes(sandbox):
    run = make_run("report-twice", dag_id="patch_compliance_scan")
    collect_all(run)
    first = steps.report(run)
    summary = json.loads(get_bytes(run.hub, *parse_s3_uri(first["summary_uri"])))
    uris = [*summary["tables"].values(), first["report_url"], first["summary_uri"]]
    before = {uri: get_bytes(run.hub, *parse_s3_uri(uri)) for uri in uris}
    again = steps.report(run)
    assert again == first
    assert {uri: get_bytes(run.hub, *parse_s3_uri(uri)) for uri in uris} == before


def test_command_outcomes_of_a_shard_that_was_never_staged_are_still_published(sandbox):
    run = make_run("report-commands-fallback", dag_id="patch_compliance_collect")
    collect_all(run)
    target = run_staging.load_plan(run).targets[0]
    record = {
        **{k: getattr(target, k) for k in ("ou_id", "ou_path", "account_id", "account_name", "region", "wave")},
        "command_id": None,
        "command_status": None,
        "command_status_details": None,
        "instance_id": None,
        "status": None,
        "status_details": None,
        "response_code": None,
        "requested_at": None,
        "started_at": None,
        "finished_at": None,
        "error": "collect never ran for this shard",
    }
    run.put(run.key("commands", target.wave, 99), [record])
    table = published(run, steps.report(run), "commands")
    assert list(table["error"]) == ["collect never ran for this shard"]


def published(run, report: dict, name: str) -> pd.DataFrame:
    summary = json.loads(get_bytes(run.hub, *parse_s3_uri(report["summary_uri"])))
    return pd.read_parquet(io.BytesIO(get_bytes(run.hub, *parse_s3_uri(summary["tables"][name]))))


def _stubbed_ssm():
    import boto3
    from botocore.stub import Stubber

    ssm = boto3.client("ssm", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    return ssm, Stubber(ssm)


def _item(node: str, ctype: str, status: str) -> dict:
    return {"ComplianceType": ctype, "ResourceType": "ManagedInstance", "ResourceId": node, "Id": "x", "Status": status}


def test_association_only_non_compliance_lists_association_items_aws_behaviours_26():
    from include.patch_compliance.collect.collector import compliance_items, non_compliant_types

    ssm, stub = _stubbed_ssm()
    summaries = [
        {"ComplianceType": "Patch", "ResourceId": "i-1", "Status": "COMPLIANT"},
        {"ComplianceType": "Association", "ResourceId": "i-1", "Status": "NON_COMPLIANT"},
        {"ComplianceType": "Patch", "ResourceId": "i-2", "Status": "NON_COMPLIANT"},
        {"ComplianceType": "Association", "ResourceId": "i-2", "Status": "NON_COMPLIANT"},
        {"ComplianceType": "Patch", "ResourceId": "i-3", "Status": "COMPLIANT"},
    ]
    stub.add_response(
        "list_resource_compliance_summaries",
        {"ResourceComplianceSummaryItems": summaries[:3], "NextToken": "t"},
        {"Filters": SUMMARY_TYPES, "MaxResults": 50},
    )
    stub.add_response(
        "list_resource_compliance_summaries",
        {"ResourceComplianceSummaryItems": summaries[3:]},
        {"Filters": SUMMARY_TYPES, "MaxResults": 50, "NextToken": "t"},
    )
    status = {"Key": "Status", "Values": ["NON_COMPLIANT"], "Type": "EQUAL"}
    stub.add_response(
        "list_compliance_items",
        {"ComplianceItems": [_item("i-1", "Association", "NON_COMPLIANT")]},
        {
            "ResourceIds": ["i-1"],
            "ResourceTypes": ["ManagedInstance"],
            "Filters": [{"Key": "ComplianceType", "Values": ["Association"], "Type": "EQUAL"}, status],
            "MaxResults": 50,
        },
    )
    with stub:
        flagged = non_compliant_types(ssm)
        assert flagged == {"i-1": ["Association"], "i-2": ["Patch", "Association"]}
        assert compliance_items(ssm, "i-1", flagged["i-1"]) == [_item("i-1", "Association", "NON_COMPLIANT")]
    stub.assert_no_pending_responses()


def test_a_refused_status_filter_lists_by_type_and_keeps_only_non_compliant_items_aws_behaviours_26():
    from include.patch_compliance.collect.collector import compliance_items

    ssm, stub = _stubbed_ssm()
    by_type = {"Key": "ComplianceType", "Values": ["Patch", "Association"], "Type": "EQUAL"}
    status = {"Key": "Status", "Values": ["NON_COMPLIANT"], "Type": "EQUAL"}
    common = {"ResourceIds": ["i-1"], "ResourceTypes": ["ManagedInstance"], "MaxResults": 50}
    stub.add_client_error(
        "list_compliance_items", "InvalidFilterKey", "bad key", expected_params={**common, "Filters": [by_type, status]}
    )
    items = [_item("i-1", "Patch", s) for s in ("COMPLIANT", "NON_COMPLIANT", "")]
    stub.add_response("list_compliance_items", {"ComplianceItems": items}, {**common, "Filters": [by_type]})
    with stub:
        assert compliance_items(ssm, "i-1", ["Association", "Patch"]) == [items[1]]
    stub.assert_no_pending_responses()
