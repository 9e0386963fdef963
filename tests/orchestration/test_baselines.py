"""Baseline-aware compliance on the emulated organization (docs/aws-behaviours.md §37): GetPatchBaseline once per
distinct baseline per account-region, the setting on every node, and Windows nodes with available security
updates non-compliant exactly where their baseline says NON_COMPLIANT."""

from __future__ import annotations

import io
import json

import pyarrow.parquet as pq
import pytest
from botocore.exceptions import ClientError

from include.patch_compliance import steps
from include.patch_compliance.collect.collector import baseline_setting
from include.patch_compliance.publish.report_files import run_key
from include.patch_compliance.storage import get_bytes, parse_s3_uri
from tests.orchestration.conftest import BUCKET, make_run, staged

COLUMNS = [
    "account_id",
    "region",
    "instance_id",
    "baseline_id",
    "available_security_update_count",
    "available_security_updates_compliance",
    "missing_count",
    "failed_count",
    "installed_pending_reboot_count",
    "installed_rejected_count",
]


def test_one_call_per_baseline_and_the_setting_decides(sandbox):
    run = make_run("baselines", dag_id="patch_compliance_collect")
    plan = steps.plan_fleet(run)
    sandbox.reset_calls()
    for refs in plan["waves"].values():
        for ref in refs:
            steps.collect_shard(run, ref)
    calls = sandbox.calls()
    nodes = staged(run, "nodes", COLUMNS)
    scanned = nodes[nodes["baseline_id"].notna()]
    distinct = scanned.drop_duplicates(["account_id", "region", "baseline_id"])
    assert calls["ssm.GetPatchBaseline"] == len(distinct) > 0
    assert set(scanned["available_security_updates_compliance"]) == {"COMPLIANT", "NON_COMPLIANT"}
    for _, row in distinct.head(4).iterrows():
        ssm = run.members.get(row["account_id"]).client("ssm", row["region"])
        setting = baseline_setting(ssm, row["baseline_id"])["AvailableSecurityUpdatesComplianceStatus"]
        same = scanned[(scanned["account_id"] == row["account_id"]) & (scanned["baseline_id"] == row["baseline_id"])]
        assert set(same["available_security_updates_compliance"]) == {setting}

    steps.report(run)
    summary = json.loads(get_bytes(run.hub, BUCKET, run_key("pc", run.run_id, "summary.json")))
    published = {}
    for name in ("nodes", "patches"):
        bucket, key = parse_s3_uri(summary["tables"][name])
        published[name] = pq.read_table(io.BytesIO(get_bytes(run.hub, bucket, key))).to_pandas()
    nodes, patches = published["nodes"], published["patches"]
    others = nodes[["missing_count", "failed_count", "installed_pending_reboot_count", "installed_rejected_count"]]
    only_available = (nodes["available_security_update_count"].fillna(0) > 0) & (others.fillna(0).sum(axis=1) == 0)
    counted = nodes[only_available & (nodes["available_security_updates_compliance"] == "NON_COMPLIANT")]
    ignored = nodes[only_available & (nodes["available_security_updates_compliance"] == "COMPLIANT")]
    assert len(counted) > 0 and len(ignored) > 0, "the small fleet has both kinds of Windows node"
    assert set(counted["compliance_status"]) == {"NON_COMPLIANT"}
    assert set(ignored["compliance_status"]) == {"COMPLIANT"}
    rows = patches[patches["state"] == "AVAILABLE_SECURITY_UPDATE"]
    assert set(rows["instance_id"]) >= set(counted["instance_id"])
    assert not set(rows["instance_id"]) & set(ignored["instance_id"])
    per_node = rows.groupby("instance_id").size()
    for _, node in counted.iterrows():
        assert per_node[node["instance_id"]] == node["available_security_update_count"]


def test_an_unknown_baseline_does_not_exist(sandbox):
    run = make_run("baselines-missing", dag_id="patch_compliance_collect")
    account = next(a["id"] for a in sandbox.fleet["accounts"] if a["has_role"] and a["state"] == "ACTIVE")
    ssm = run.members.get(account).client("ssm", "us-east-1")
    with pytest.raises(ClientError) as err:
        baseline_setting(ssm, "pb-00000000000000000")
    assert err.value.response["Error"]["Code"] == "DoesNotExistException"
