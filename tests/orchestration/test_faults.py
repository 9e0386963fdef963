"""Isolation and retries under injected faults: a refused region is recorded as UNREACHABLE and the run goes on;
throttling is absorbed by the standard retry mode without losing data (docs/aws-behaviours.md §18)."""

from __future__ import annotations

import pytest

from include.patch_compliance import steps
from tests.orchestration.conftest import make_run


@pytest.fixture
def faults(sandbox):
    yield sandbox.set_faults
    sandbox.set_faults({})


def test_refused_region_is_unreachable_and_others_are_collected(sandbox, faults):
    faults({"refuse_regions": ["eu-west-1"]})
    run = make_run("faults-region")
    plan = steps.plan_fleet(run)
    docs = []
    for refs in plan["waves"].values():
        for ref in refs:
            steps.collect_shard(run, ref)
    docs = steps.read_records(run, "raw")
    refused = [d for d in docs if d["target"]["region"] == "eu-west-1"]
    other = [d for d in docs if d["target"]["region"] == "us-east-1" and d["status"] == "OK"]
    assert refused and all(d["status"] == "UNREACHABLE" for d in refused)
    assert {d["error"]["code"] for d in refused} <= {"UnrecognizedClientException", "AuthFailure", "AccessDenied"}
    assert other and all(d["instance_information"] for d in other)


def test_throttling_is_retried_without_losing_data(sandbox, faults):
    run = make_run("faults-throttle-baseline")
    ref = steps.plan_fleet(run)["waves"]["rest"][0]
    baseline = steps.collect_shard(run, ref)
    faults(
        {"throttle": {"ssm.DescribeInstancePatchStates": 0.5, "ssm.ListComplianceItems": 0.3, "organizations.*": 0.3}}
    )
    sandbox.reset_calls()
    throttled_run = make_run("faults-throttle")
    ref = steps.plan_fleet(throttled_run)["waves"]["rest"][0]
    throttled = steps.collect_shard(throttled_run, ref)
    assert throttled["nodes"] == baseline["nodes"] and throttled["warnings"] == 0
    batches = sum(1 for d in steps.read_records(throttled_run, "raw") if d["instance_information"])
    assert sandbox.calls()["ssm.DescribeInstancePatchStates"] > batches  # throttled answers were retried
    before = steps.read_records(run, "raw")
    after = steps.read_records(throttled_run, "raw")
    assert [len(d["patch_states"]) for d in after] == [len(d["patch_states"]) for d in before]
    assert [sorted(d["compliance_items"]) for d in after] == [sorted(d["compliance_items"]) for d in before]
