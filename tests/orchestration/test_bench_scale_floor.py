"""bench/bench_scale.py's floor: the fewest calls the documented page limits allow, from ground truth and the
run's plan and tables (a wrong floor would make the benchmark's ratios meaningless)."""

from __future__ import annotations

import pandas as pd

from bench import bench_scale


def _fleet():
    return {
        "root_id": "r-1",
        "ous": [{"id": "ou-a", "parent_id": "r-1"}, {"id": "ou-b", "parent_id": "r-1"}],
        "accounts": [
            {"id": "111111111111", "ou_id": "ou-a", "state": "ACTIVE", "has_role": True},
            {"id": "222222222222", "ou_id": "ou-b", "state": "ACTIVE", "has_role": False},
        ],
        "security_hub": {"disabled": [{"account_id": "111111111111", "region": "eu-west-1"}], "native_export": []},
    }


def _node(i, types=("Patch",)):
    return {"instance_id": f"i-{i:017x}", "managed": True, "terminated": False, "compliance_types": list(types)}


def test_the_floor_follows_the_page_limits():
    a, b = "111111111111", "222222222222"
    targets = [{"account_id": acct, "region": region} for acct in (a, b) for region in ("us-east-1", "eu-west-1")]
    plan = {"waves": {"all": [targets[:2], targets[2:]]}}
    truth = {
        (a, "us-east-1"): [_node(i, ("Patch", "Association")) for i in range(51)],  # 102 summaries: 3 pages
        (a, "eu-west-1"): [_node(i) for i in range(3)] + [{**_node(99), "managed": False}],
    }
    ids = [f"i-{i:017x}" for i in range(51)]
    tables = {
        "nodes": pd.DataFrame(
            {"account_id": a, "region": "us-east-1", "instance_id": ids, "coverage_status": "SCANNED"}
        ),
        "patches": pd.DataFrame({"account_id": a, "region": "us-east-1", "instance_id": [ids[0]] * 101 + [ids[1]]}),
        "compliance_items": pd.DataFrame({"account_id": a, "region": "us-east-1", "instance_id": [ids[0]] * 51}),
        "commands": pd.DataFrame({"command_id": ["c1"] * 51 + ["c2"] * 3}),
    }
    floor = bench_scale.floors(_fleet(), truth, plan, tables)
    assert floor["organizations.ListOrganizationalUnitsForParent"] == 3  # root and both OUs, one page each
    assert floor["ssm.DescribeInstanceInformation"] == 2 + 1  # 51 nodes: 2 pages; 3 managed: 1 (no call for b)
    assert floor["ssm.SendCommand"] == 2 + 1
    assert floor["ssm.ListResourceComplianceSummaries"] == 3 + 1
    assert floor["ssm.DescribeInstancePatches"] == 2 + 1  # 101 patches: 2 pages of 100; 1 patch: 1
    assert floor["ssm.ListComplianceItems"] == 2  # 51 items: 2 pages of 50
    assert floor["ssm.ListCommandInvocations"] == 2 + 1
    # scan + collect for both accounts in both shards, trigger + resume for the reachable one, security_hub once
    assert floor["sts.AssumeRole"] == 2 * 2 + 2 * 1 + 1
    assert floor["securityhub.BatchImportFindings"] == 1  # 51 findings in us-east-1; eu-west-1's hub is off


def test_pokes_are_counted_from_the_trigger_log_lines(tmp_path):
    folder = tmp_path / f"dag_id={bench_scale.DAG_ID}" / "run_id=r" / "task_id=wave_all.shards.wait" / "map_index=0"
    folder.mkdir(parents=True)
    (folder / "attempt=1.log").write_text(
        "1 of 4 commands terminal (2 account-regions polled)\nx\n4 of 4 commands terminal (1 account-regions polled)\n"
    )
    assert bench_scale.pokes(tmp_path, "r") == (2, 3)
