"""Owner tags against the emulated organization: EC2 tags come with DescribeInstances (no extra call), hybrid
``mi-`` nodes' SSM tags with one ListTagsForResource per node (SSM API reference, ListTagsForResource); the report
has them in nodes.tags, the configured tag_<key> columns and summary.json by_tag."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest
from botocore.exceptions import ClientError

from include.patch_compliance import steps
from include.patch_compliance.collect.collector import managed_instance_tags
from include.patch_compliance.publish.report_files import run_key
from include.patch_compliance.storage import get_bytes
from tests.orchestration.conftest import BUCKET, fleet_config, make_run, staged

TAGS = ["Team", "Environment"]


def test_hybrid_nodes_tags_one_call_each_and_the_tables_have_them(sandbox):
    run = make_run("owner-tags", cfg=fleet_config(reports={"bucket": BUCKET, "prefix": "pc", "group_by_tags": TAGS}))
    plan = steps.plan_fleet(run)
    sandbox.reset_calls()
    results = [steps.collect_shard(run, ref) for refs in plan["waves"].values() for ref in refs]
    calls = sandbox.calls()
    info = staged(run, "nodes", ["account_id", "region", "instance_id", "resource_type", "tags"])
    hybrid = info[info["resource_type"] == "ManagedInstance"]
    assert len(hybrid) > 0, "the small fleet has hybrid nodes"
    assert calls["ssm.ListTagsForResource"] == len(hybrid) == sum(r["tag_calls"] for r in results)

    for _, row in hybrid.iterrows():
        ssm = run.members.get(row["account_id"]).client("ssm", row["region"])
        expected = {t["Key"]: t["Value"] for t in managed_instance_tags(ssm, row["instance_id"])}
        assert dict(row["tags"]) == expected and "Team" in expected and "Environment" in expected
    ec2_rows = info[info["resource_type"] == "EC2Instance"].head(5)
    for _, row in ec2_rows.iterrows():
        ec2 = run.members.get(row["account_id"]).client("ec2", row["region"])
        (reservation,) = ec2.describe_instances(InstanceIds=[row["instance_id"]])["Reservations"]
        expected = {t["Key"]: t["Value"] for t in reservation["Instances"][0].get("Tags", [])}
        assert dict(row["tags"]) == expected

    out = steps.report(run)
    summary = json.loads(get_bytes(run.hub, BUCKET, run_key("pc", run.run_id, "summary.json")))
    assert set(summary["by_tag"]) == set(TAGS)
    assert sum(r["nodes"] for r in summary["by_tag"]["Team"]) == summary["totals"]["nodes"] == out["totals"]["nodes"]
    nodes = pd.read_csv(io.BytesIO(get_bytes(run.hub, BUCKET, run_key("pc", run.run_id, "nodes.csv"))))
    assert list(nodes.columns)[-2:] == ["tag_team", "tag_environment"]
    managed = nodes[nodes["instance_id"].notna()]
    teams = managed["tag_team"].fillna("(none)").value_counts().to_dict()
    by_team = {r["value"] if r["value"] is not None else "(none)": r["nodes"] for r in summary["by_tag"]["Team"]}
    assert teams == by_team


def test_an_ec2_instance_id_is_not_a_managed_instance_for_list_tags(sandbox):
    run = make_run("owner-tags-ec2")
    info = staged(make_run("owner-tags"), "nodes", ["account_id", "region", "instance_id", "resource_type"])
    row = info[info["resource_type"] == "EC2Instance"].iloc[0]
    ssm = run.members.get(row["account_id"]).client("ssm", row["region"])
    with pytest.raises(ClientError) as err:
        managed_instance_tags(ssm, row["instance_id"])
    assert err.value.response["Error"]["Code"] == "InvalidResourceId"
