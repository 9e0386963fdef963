"""Isolation and retries under injected faults: a refused region is recorded as UNREACHABLE and the run goes on;
throttling is absorbed by the standard retry mode without losing data (docs/aws-behaviours.md §18)."""

from __future__ import annotations

import pandas as pd
import pytest

from include.patch_compliance import steps
from tests.orchestration.conftest import make_run, staged


@pytest.fixture
def faults(sandbox):
    yield sandbox.set_faults
    sandbox.set_faults({})


def test_refused_region_is_unreachable_and_others_are_collected(sandbox, faults):
    faults({"refuse_regions": ["eu-west-1"]})
    run = make_run("faults-region")
    plan = steps.plan_fleet(run)
    for refs in plan["waves"].values():
        for ref in refs:
            steps.collect_shard(run, ref)
    targets = staged(run, "targets")
    refused = targets[targets["region"] == "eu-west-1"]
    other = targets[(targets["region"] == "us-east-1") & (targets["target_status"] == "OK")]
    assert len(refused) and (refused["target_status"] == "UNREACHABLE").all()
    assert set(refused["target_error"]) <= {"UnrecognizedClientException", "AuthFailure", "AccessDenied"}
    nodes = staged(run, "nodes", ["account_id", "region", "instance_id"])
    with_nodes = set(zip(nodes["account_id"], nodes["region"], strict=True))
    assert len(other) and all((a, "us-east-1") in with_nodes for a in other["account_id"])


def test_throttling_is_retried_without_losing_data(sandbox, faults):
    run = make_run("faults-throttle-baseline")
    ref = steps.plan_fleet(run)["waves"]["rest"][0]
    baseline = steps.collect_shard(run, ref)
    faults(
        {
            "throttle": {
                "ssm.DescribeInstancePatchStates": 0.5,
                "ssm.ListResourceComplianceSummaries": 0.5,
                "ssm.ListComplianceItems": 0.3,
                "organizations.*": 0.3,
            }
        }
    )
    sandbox.reset_calls()
    throttled_run = make_run("faults-throttle")
    ref = steps.plan_fleet(throttled_run)["waves"]["rest"][0]
    throttled = steps.collect_shard(throttled_run, ref)
    assert throttled["nodes"] == baseline["nodes"] and throttled["warnings"] == 0
    calls = sandbox.calls()
    targets = staged(throttled_run, "targets")
    with_nodes = int(throttled["targets"] - throttled["unreachable"])
    assert calls["ssm.DescribeInstancePatchStates"] > with_nodes  # throttled answers were retried
    assert calls["ssm.ListResourceComplianceSummaries"] > with_nodes
    assert len(targets) == baseline["targets"]
    for name in ("nodes", "patches", "compliance_items"):
        before, after = staged(run, name), staged(throttled_run, name)
        pd.testing.assert_frame_equal(after, before, obj=name)
