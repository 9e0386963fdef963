"""Run Command through boto3: validation and error codes, eventual consistency, lifecycle over emulated time,
MaxConcurrency/MaxErrors, cancel, paging and filters (docs/aws-behaviours.md §1-§5)."""

from __future__ import annotations

import botocore.exceptions
import pytest

from sandbox.ssm_commands import seeded_outcome
from tests.sandbox.conftest import all_pages, client

MGMT = "123456789012"
REGION = "us-east-1"


def _nodes(sb, region=REGION, account=MGMT):
    return sb.nodes(account, region)


def _good(sb, platform_type="Linux", doc="AWS-RunPatchBaseline", region=REGION, account=MGMT):
    """Managed, online nodes whose seeded outcome is Success."""
    return [
        n["instance_id"]
        for n in _nodes(sb, region, account)
        if n["managed"]
        and n["ping_status"] == "Online"
        and n["platform_type"] == platform_type
        and seeded_outcome(7, n["instance_id"], doc)[0] == "Success"
    ]


def _all_managed_good(sb):
    out = []
    for acct in [a["id"] for a in sb.fleet["accounts"] if a["id"] == MGMT]:
        for region in sb.fleet["regions"]:
            out += [(region, i) for i in _good(sb, "Linux", region=region, account=acct)]
    return out


def _error(call, **kwargs) -> dict:
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        call(**kwargs)
    return exc.value.response["Error"]


@pytest.fixture(scope="module")
def ssm(sandbox):
    return client(sandbox, "ssm")


@pytest.fixture(scope="module")
def linux_id(sandbox):
    return _good(sandbox)[0]


SCAN = {"DocumentName": "AWS-RunPatchBaseline", "Parameters": {"Operation": ["Scan"]}}


@pytest.mark.parametrize(
    "kwargs,code",
    [
        ({"InstanceIds": [f"i-{n:017x}" for n in range(51)]}, "ValidationException"),  # > 50 ids
        ({"InstanceIds": ["i-123"]}, "ValidationException"),  # id pattern
        ({"InstanceIds": ["i-0123456789abcdef0"], "MaxConcurrency": "0"}, "ValidationException"),
        ({"InstanceIds": ["i-0123456789abcdef0"], "MaxErrors": "abc"}, "ValidationException"),
        ({"InstanceIds": ["i-0123456789abcdef0"], "Comment": "x" * 101}, "ValidationException"),
        ({"InstanceIds": ["i-0123456789abcdef0"], "TimeoutSeconds": 2_592_001}, "ValidationException"),
        ({}, "ValidationException"),  # neither InstanceIds nor Targets
        ({"InstanceIds": ["i-0123456789abcdef0"]}, "InvalidInstanceId"),  # well-formed, not a managed node
    ],
)
def test_send_command_rejects_like_aws(ssm, kwargs, code):
    assert _error(ssm.send_command, **SCAN, **kwargs)["Code"] == code


def test_send_command_document_and_parameter_errors(ssm, linux_id):
    ids = {"InstanceIds": [linux_id]}
    assert _error(ssm.send_command, DocumentName="AWS-NoSuchDoc", **ids)["Code"] == "InvalidDocument"
    assert _error(ssm.send_command, DocumentName="AWS-RunPatchBaseline", **ids)["Code"] == "InvalidParameters"
    err = _error(ssm.send_command, DocumentName="AWS-RunPatchBaseline", Parameters={"Operation": ["Bogus"]}, **ids)
    assert err["Code"] == "InvalidParameters" and "Operation" in err["Message"]
    err = _error(
        ssm.send_command, DocumentName="AWS-RunPatchBaseline", Parameters={"Operation": ["Scan"], "Nope": ["1"]}, **ids
    )
    assert err["Code"] == "InvalidParameters" and "Nope" in err["Message"]
    assert (
        _error(
            ssm.send_command, DocumentName="AWS-RunPatchBaselineAssociation", Parameters={"Operation": ["Scan"]}, **ids
        )["Code"]
        == "InvalidParameters"
    )  # AssociationId required
    assert _error(ssm.send_command, **SCAN, DocumentVersion="7", **ids)["Code"] == "InvalidDocumentVersion"
    assert _error(ssm.send_command, **SCAN, InstanceIds=[linux_id, linux_id])["Code"] == "DuplicateInstanceId"


def test_unmanaged_and_stopped_instances_are_invalid_targets(sandbox, ssm):
    bad = [n["instance_id"] for n in _nodes(sandbox) if not n["managed"]]
    assert bad, "the small fleet has unmanaged EC2 instances in the management account"
    assert _error(ssm.send_command, **SCAN, InstanceIds=bad[:1])["Code"] == "InvalidInstanceId"


def test_send_command_defaults_and_eventual_consistency(sandbox, ssm, linux_id):
    cmd = ssm.send_command(**SCAN, InstanceIds=[linux_id], Comment="run-1")["Command"]
    assert (cmd["MaxConcurrency"], cmd["MaxErrors"], cmd["TimeoutSeconds"]) == ("50", "0", 3600)
    assert cmd["Status"] == "Pending" and cmd["InstanceIds"] == [linux_id] and cmd["TargetCount"] == 1
    assert len(cmd["CommandId"]) == 36
    # Right after sending: no invocations yet, GetCommandInvocation raises (docs/aws-behaviours.md §5).
    assert ssm.list_command_invocations(CommandId=cmd["CommandId"])["CommandInvocations"] == []
    err = _error(ssm.get_command_invocation, CommandId=cmd["CommandId"], InstanceId=linux_id)
    assert err["Code"] == "InvocationDoesNotExist"
    sandbox.admin("advance", seconds=2)
    invs = ssm.list_command_invocations(CommandId=cmd["CommandId"])["CommandInvocations"]
    assert [i["InstanceId"] for i in invs] == [linux_id]


def test_targets_response_has_empty_instance_ids_and_resolves_later(sandbox, ssm):
    cmd = ssm.send_command(**SCAN, Targets=[{"Key": "tag:Patch", "Values": ["true"]}])["Command"]
    assert cmd["InstanceIds"] == [] and cmd["TargetCount"] == 0 and cmd["Targets"][0]["Key"] == "tag:Patch"
    sandbox.admin("advance", seconds=2)
    listed = ssm.list_commands(CommandId=cmd["CommandId"])["Commands"][0]
    expected = {n["instance_id"] for n in _nodes(sandbox) if n["managed"] and n["tags"].get("Patch") == "true"}
    assert listed["TargetCount"] == len(expected) > 0
    invs = all_pages(ssm.list_command_invocations, "CommandInvocations", CommandId=cmd["CommandId"])
    assert {i["InstanceId"] for i in invs} == expected


def test_targets_keys_and_and_or_semantics(sandbox, ssm):
    nodes = [n for n in _nodes(sandbox) if n["managed"]]
    env = nodes[0]["tags"]["Environment"]
    group = nodes[0]["tags"]["PatchGroup"]
    cmd = ssm.send_command(
        **SCAN,
        Targets=[
            {"Key": "tag:Environment", "Values": [env, "nope"]},
            {"Key": "tag:PatchGroup", "Values": [group]},
            {"Key": "tag-key", "Values": ["Name"]},
        ],
    )["Command"]
    sandbox.admin("advance", seconds=2)
    invs = all_pages(ssm.list_command_invocations, "CommandInvocations", CommandId=cmd["CommandId"])
    assert {i["InstanceId"] for i in invs} == {n["instance_id"] for n in nodes if n["tags"]["PatchGroup"] == group}
    ids = [n["instance_id"] for n in nodes[:2]]
    cmd = ssm.send_command(**SCAN, Targets=[{"Key": "InstanceIds", "Values": ids}])["Command"]
    sandbox.admin("advance", seconds=2)
    invs = ssm.list_command_invocations(CommandId=cmd["CommandId"])["CommandInvocations"]
    assert sorted(i["InstanceId"] for i in invs) == sorted(ids)


def test_targets_matching_nothing_is_no_instances_in_tag(sandbox, ssm):
    cmd = ssm.send_command(**SCAN, Targets=[{"Key": "tag:Patch", "Values": ["never"]}])["Command"]
    sandbox.admin("advance", seconds=2)
    listed = ssm.list_commands(CommandId=cmd["CommandId"])["Commands"][0]
    assert listed["StatusDetails"] == "No Instances In Tag" and listed["TargetCount"] == 0


def test_lifecycle_pending_in_progress_success_with_patch_plugin(sandbox, ssm, linux_id):
    cmd = ssm.send_command(**SCAN, InstanceIds=[linux_id])["Command"]
    cid = cmd["CommandId"]
    sandbox.admin("advance", seconds=1.1)
    inv = ssm.get_command_invocation(CommandId=cid, InstanceId=linux_id)
    assert (inv["Status"], inv["ResponseCode"], inv["ExecutionStartDateTime"]) == ("Pending", -1, "")
    sandbox.admin("advance", seconds=5)
    inv = ssm.get_command_invocation(CommandId=cid, InstanceId=linux_id)
    assert inv["Status"] == "InProgress" and inv["StatusDetails"] == "In Progress"
    assert ssm.list_commands(CommandId=cid)["Commands"][0]["Status"] == "InProgress"
    sandbox.admin("advance", seconds=600)
    inv = ssm.get_command_invocation(CommandId=cid, InstanceId=linux_id, PluginName="PatchLinux")
    assert (inv["Status"], inv["StatusDetails"], inv["ResponseCode"]) == ("Success", "Success", 0)
    assert inv["ExecutionEndDateTime"].endswith("Z") and inv["ExecutionElapsedTime"].startswith("PT")
    assert "Operation type: Scan" in inv["StandardOutputContent"]
    listed = ssm.list_commands(CommandId=cid)["Commands"][0]
    assert (listed["Status"], listed["StatusDetails"], listed["CompletedCount"], listed["ErrorCount"]) == (
        "Success",
        "Success",
        1,
        0,
    )
    detail = ssm.list_command_invocations(CommandId=cid, Details=True)["CommandInvocations"][0]
    assert [p["Name"] for p in detail["CommandPlugins"]] == ["PatchLinux"]
    # The plugin name is the document step, not the action (docs/aws-behaviours.md §2).
    assert (
        _error(ssm.get_command_invocation, CommandId=cid, InstanceId=linux_id, PluginName="aws:runShellScript")["Code"]
        == "InvalidPluginName"
    )
    assert (
        _error(ssm.get_command_invocation, CommandId=cid, InstanceId=linux_id, PluginName="PatchWindows")["Code"]
        == "InvocationDoesNotExist"
    )


def test_windows_step_is_patch_windows_and_shell_script_is_invalid_platform(sandbox, ssm):
    win = _good(sandbox, "Windows")
    if not win:
        win = _good(sandbox, "Windows", region="eu-west-1")
        ssm = client(sandbox, "ssm", region="eu-west-1")
    cmd = ssm.send_command(**SCAN, InstanceIds=win[:1])["Command"]
    sandbox.admin("advance", seconds=1000)
    inv = ssm.list_command_invocations(CommandId=cmd["CommandId"], Details=True)["CommandInvocations"][0]
    assert inv["CommandPlugins"][0]["Name"] == "PatchWindows" and inv["Status"] == "Success"
    cmd = ssm.send_command(DocumentName="AWS-RunShellScript", Parameters={"commands": ["uptime"]}, InstanceIds=win[:1])[
        "Command"
    ]
    sandbox.admin("advance", seconds=100)
    inv = ssm.list_command_invocations(CommandId=cmd["CommandId"])["CommandInvocations"][0]
    assert (inv["Status"], inv["StatusDetails"]) == ("Failed", "Invalid Platform")


def test_connection_lost_nodes_are_undeliverable_and_all_undeliverable_fails(sandbox, ssm):
    account, region, lost = next(
        (a["id"], r, ids)
        for a in sandbox.fleet["accounts"]
        if a["state"] == "ACTIVE" and a["has_role"]
        for r in sandbox.fleet["regions"]
        if (
            ids := [
                n["instance_id"]
                for n in _nodes(sandbox, r, a["id"])
                if n["managed"] and n["ping_status"] == "ConnectionLost"
            ]
        )
    )
    ssm = client(sandbox, "ssm", region=region, account_id=account)
    cmd = ssm.send_command(**SCAN, InstanceIds=lost[:1])["Command"]
    sandbox.admin("advance", seconds=200)
    inv = ssm.list_command_invocations(CommandId=cmd["CommandId"])["CommandInvocations"][0]
    assert inv["StatusDetails"] == "Undeliverable"
    listed = ssm.list_commands(CommandId=cmd["CommandId"])["Commands"][0]
    assert (listed["Status"], listed["StatusDetails"], listed["ErrorCount"]) == ("Failed", "Failed", 0)
    good = _good(sandbox, region=region, account=account)[:1]
    cmd = ssm.send_command(**SCAN, InstanceIds=lost[:1] + good)["Command"]
    sandbox.admin("advance", seconds=1000)
    listed = ssm.list_commands(CommandId=cmd["CommandId"])["Commands"][0]
    # Undeliverable doesn't count for Success/Incomplete (docs/aws-behaviours.md §3)
    assert listed["Status"] == "Success"


def test_max_concurrency_ramps_and_caps(sandbox, ssm):
    ids = [n["instance_id"] for n in _nodes(sandbox) if n["managed"] and n["ping_status"] == "Online"]
    assert len(ids) >= 2
    cmd = ssm.send_command(**SCAN, InstanceIds=ids, MaxConcurrency="1", MaxErrors="100%")["Command"]
    peak = 0
    for _ in range(200):
        sandbox.admin("advance", seconds=3)
        invs = ssm.list_command_invocations(CommandId=cmd["CommandId"])["CommandInvocations"]
        peak = max(peak, sum(1 for i in invs if i["Status"] == "InProgress"))
        if ssm.list_commands(CommandId=cmd["CommandId"])["Commands"][0]["Status"] not in ("Pending", "InProgress"):
            break
    assert peak == 1
    assert ssm.list_commands(CommandId=cmd["CommandId"])["Commands"][0]["CompletedCount"] == len(ids)


def test_max_errors_exceeded_terminates_the_rest(sandbox, ssm):
    ids = _good(sandbox)
    sandbox.set_faults({"invocation_failure_rate": 1.0})
    try:
        cmd = ssm.send_command(**SCAN, InstanceIds=ids, MaxConcurrency="1", MaxErrors="0")["Command"]
    finally:
        sandbox.set_faults({})
    sandbox.admin("advance", seconds=5000)
    invs = ssm.list_command_invocations(CommandId=cmd["CommandId"], Details=True)["CommandInvocations"]
    details = [i["StatusDetails"] for i in invs]
    assert details[0] == "Failed" and invs[0]["CommandPlugins"][0]["ResponseCode"] == 1
    assert "exit status 1" in invs[0]["CommandPlugins"][0]["Output"]
    assert set(details[1:]) == {"Terminated"}, details
    listed = ssm.list_commands(CommandId=cmd["CommandId"])["Commands"][0]
    assert (listed["Status"], listed["StatusDetails"], listed["ErrorCount"]) == ("Failed", "Failed", 1)
    assert listed["CompletedCount"] == listed["TargetCount"] == len(ids)


def test_slow_commands_exceed_execution_timeout(sandbox, ssm, linux_id):
    sandbox.set_faults({"slow_commands": 1000})
    try:
        cmd = ssm.send_command(**SCAN, InstanceIds=[linux_id])["Command"]
    finally:
        sandbox.set_faults({})
    sandbox.admin("advance", seconds=8000)
    inv = ssm.get_command_invocation(CommandId=cmd["CommandId"], InstanceId=linux_id)
    assert (inv["Status"], inv["StatusDetails"]) == ("TimedOut", "Execution Timed Out")
    listed = ssm.list_commands(CommandId=cmd["CommandId"])["Commands"][0]
    assert (listed["Status"], listed["StatusDetails"], listed["ErrorCount"]) == ("TimedOut", "Execution Timed Out", 1)


def test_cancel_command(sandbox, ssm, linux_id):
    cmd = ssm.send_command(**SCAN, InstanceIds=[linux_id])["Command"]
    sandbox.admin("advance", seconds=5)
    assert ssm.cancel_command(CommandId=cmd["CommandId"])["ResponseMetadata"]["HTTPStatusCode"] == 200
    sandbox.admin("advance", seconds=1000)
    inv = ssm.get_command_invocation(CommandId=cmd["CommandId"], InstanceId=linux_id)
    assert (inv["Status"], inv["StatusDetails"]) == ("Cancelled", "Cancelled")
    assert ssm.list_commands(CommandId=cmd["CommandId"])["Commands"][0]["Status"] == "Cancelled"
    assert _error(ssm.cancel_command, CommandId="0" * 36)["Code"] == "InvalidCommandId"


def test_list_commands_filters_paging_and_errors(sandbox, ssm, linux_id):
    for _ in range(3):
        ssm.send_command(**SCAN, InstanceIds=[linux_id], Comment="paging")
    sandbox.admin("advance", seconds=2)
    first = ssm.list_commands(MaxResults=2)
    assert len(first["Commands"]) == 2 and first["NextToken"]
    everything = ssm.get_paginator("list_commands").paginate(PaginationConfig={"PageSize": 2}).build_full_result()
    assert len(everything["Commands"]) >= 3
    times = [c["RequestedDateTime"] for c in everything["Commands"]]
    assert times == sorted(times, reverse=True)
    shell = ssm.list_commands(Filters=[{"key": "DocumentName", "value": "AWS-RunShellScript"}])["Commands"]
    assert all(c["DocumentName"] == "AWS-RunShellScript" for c in shell)
    executing = ssm.list_commands(Filters=[{"key": "ExecutionStage", "value": "Executing"}])["Commands"]
    assert executing and all(c["Status"] in ("Pending", "InProgress") for c in executing)
    future = ssm.list_commands(Filters=[{"key": "InvokedAfter", "value": "2999-01-01T00:00:00Z"}])["Commands"]
    assert future == []
    assert _error(ssm.list_commands, MaxResults=51)["Code"] == "ValidationException"
    assert _error(ssm.list_commands, Filters=[{"key": "Bogus", "value": "x"}])["Code"] == "ValidationException"
    assert _error(ssm.list_commands, NextToken="nope")["Code"] == "InvalidNextToken"
    assert _error(ssm.list_commands, CommandId="0" * 36)["Code"] == "InvalidCommandId"
    assert (
        _error(ssm.list_command_invocations, Filters=[{"key": "ExecutionStage", "value": "Complete"}])["Code"]
        == "InvalidFilterKey"
    )


def test_list_command_invocations_pages_at_most_50(sandbox, ssm):
    ids = [n["instance_id"] for n in _nodes(sandbox) if n["managed"]]
    cmd = ssm.send_command(**SCAN, InstanceIds=ids)["Command"]
    sandbox.admin("advance", seconds=2)
    page = ssm.list_command_invocations(CommandId=cmd["CommandId"], MaxResults=1)
    assert len(page["CommandInvocations"]) == 1 and "NextToken" in page
    assert _error(ssm.list_command_invocations, CommandId=cmd["CommandId"], MaxResults=51)["Code"] == (
        "ValidationException"
    )
    pages = (
        ssm.get_paginator("list_command_invocations")
        .paginate(CommandId=cmd["CommandId"], PaginationConfig={"PageSize": 1})
        .build_full_result()
    )
    assert sorted(i["InstanceId"] for i in pages["CommandInvocations"]) == sorted(ids)


def test_seeded_failures_and_delivery_timeouts_end_to_end(sandbox):
    """Per-node outcomes are deterministic from the seed: the same nodes fail or time out on every run."""
    seen = set()
    for account in [a for a in sandbox.fleet["accounts"] if a["state"] == "ACTIVE" and a["has_role"]]:
        for region in sandbox.fleet["regions"]:
            bad = [
                (n["instance_id"], seeded_outcome(7, n["instance_id"], "AWS-RunPatchBaseline"))
                for n in _nodes(sandbox, region, account["id"])
                if n["managed"] and n["ping_status"] == "Online"
            ]
            bad = [(iid, outcome) for iid, outcome in bad if outcome[0] != "Success"]
            if not bad:
                continue
            ssm = client(sandbox, "ssm", region=region, account_id=account["id"])
            cmd = ssm.send_command(**SCAN, InstanceIds=[iid for iid, _ in bad], TimeoutSeconds=600, MaxErrors="100%")[
                "Command"
            ]
            sandbox.admin("advance", seconds=8000)
            invs = {
                i["InstanceId"]: i
                for i in ssm.list_command_invocations(CommandId=cmd["CommandId"], Details=True)["CommandInvocations"]
            }
            for iid, (detail, code) in bad:
                assert invs[iid]["StatusDetails"] == detail
                assert invs[iid]["CommandPlugins"][0]["ResponseCode"] == code
                seen.add(detail)
            listed = ssm.list_commands(CommandId=cmd["CommandId"])["Commands"][0]
            assert listed["DeliveryTimedOutCount"] == sum(1 for _, o in bad if o[0] == "Delivery Timed Out")
    assert {"Failed", "Delivery Timed Out"} <= seen  # seed 7, small profile
