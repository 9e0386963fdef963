"""Install on explicit nodes changes exactly those nodes' patch rows (docs/aws-behaviours.md §2, §29), failures can
be injected per node and operation (`fail_instances`), and every SendCommand is logged as received."""

from __future__ import annotations

from collections.abc import Iterator

import botocore.exceptions
import pytest

from sandbox.faults import FaultConfigError, load_faults
from sandbox.ssm_commands import seeded_outcome
from sandbox.testing import RunningSandbox, running_sandbox
from tests.sandbox.conftest import all_pages, client

MGMT = "123456789012"
REGION = "eu-west-1"
SEED = 13


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    # Own sandbox: these tests install patches.
    with running_sandbox(profile="small", seed=SEED, time_scale=0) as sb:
        yield sb


@pytest.fixture(scope="module")
def ssm(sandbox):
    return client(sandbox, "ssm", region=REGION)


def _installable(sb) -> list[dict]:
    return [
        n
        for n in sb.nodes(MGMT, REGION)
        if n["managed"]
        and n["ping_status"] == "Online"
        and n["missing"] > 0
        and n["scanned"]
        and seeded_outcome(SEED, n["instance_id"], "AWS-RunPatchBaseline")[0] == "Success"
    ]


def _rows(ssm, iid) -> list[tuple[str, str, str]]:
    patches = all_pages(ssm.describe_instance_patches, "Patches", InstanceId=iid, MaxResults=100)
    return sorted((p["KBId"], p["Title"], p["State"]) for p in patches)


def _finish(sb, ssm, command_id) -> list[dict]:
    sb.admin("advance", seconds=3000)
    return all_pages(ssm.list_command_invocations, "CommandInvocations", CommandId=command_id)


def test_install_on_explicit_ids_changes_exactly_those_nodes_rows_aws_behaviours_29(sandbox, ssm):
    nodes = _installable(sandbox)
    assert len(nodes) >= 3, nodes
    chosen, others = [n["instance_id"] for n in nodes[:2]], [n["instance_id"] for n in nodes[2:]]
    untouched = [n["instance_id"] for n in sandbox.nodes(MGMT, REGION) if n["scanned"] and n["managed"]]
    before = {iid: _rows(ssm, iid) for iid in untouched}
    states_before = {
        s["InstanceId"]: s
        for s in ssm.describe_instance_patch_states(InstanceIds=untouched[:50])["InstancePatchStates"]
    }
    cmd = ssm.send_command(
        DocumentName="AWS-RunPatchBaseline",
        InstanceIds=chosen,
        Parameters={"Operation": ["Install"], "RebootOption": ["NoReboot"]},
    )["Command"]
    invocations = _finish(sandbox, ssm, cmd["CommandId"])
    assert sorted(i["InstanceId"] for i in invocations) == sorted(chosen)
    assert {i["Status"] for i in invocations} == {"Success"}
    for iid in chosen:
        after = _rows(ssm, iid)
        # Missing/Failed become InstalledPendingReboot with NoReboot; every other row keeps its state
        expected = sorted(
            (kb, title, "InstalledPendingReboot" if state in ("Missing", "Failed") else state)
            for kb, title, state in before[iid]
        )
        assert after == expected and any(s == "InstalledPendingReboot" for _, _, s in after)
        state = ssm.describe_instance_patch_states(InstanceIds=[iid])["InstancePatchStates"][0]
        assert state["Operation"] == "Install" and state["MissingCount"] == state["FailedCount"] == 0
    for iid in untouched:
        if iid in chosen:
            continue
        assert _rows(ssm, iid) == before[iid], iid  # no other node of the account-region changed
    states_after = {
        s["InstanceId"]: s
        for s in ssm.describe_instance_patch_states(InstanceIds=untouched[:50])["InstancePatchStates"]
    }
    for iid, state in states_before.items():
        if iid not in chosen:
            assert states_after[iid] == state
    assert others  # the account-region had other installable nodes that were left alone


def test_reboot_if_needed_moves_missing_and_pending_reboot_to_installed(sandbox, ssm):
    node = _installable(sandbox)[-1]
    iid = node["instance_id"]
    before = _rows(ssm, iid)
    cmd = ssm.send_command(
        DocumentName="AWS-RunPatchBaseline",
        InstanceIds=[iid],
        Parameters={"Operation": ["Install"], "RebootOption": ["RebootIfNeeded"]},
    )["Command"]
    assert _finish(sandbox, ssm, cmd["CommandId"])[0]["Status"] == "Success"
    after = dict(((kb, title), state) for kb, title, state in _rows(ssm, iid))
    for kb, title, state in before:
        if state in ("Missing", "Failed", "InstalledPendingReboot"):
            assert after[(kb, title)] == "Installed"
        else:
            assert after[(kb, title)] == state  # InstalledRejected stays: Install never removes a package
    state = ssm.describe_instance_patch_states(InstanceIds=[iid])["InstancePatchStates"][0]
    assert state["InstalledPendingRebootCount"] == state["MissingCount"] == state["FailedCount"] == 0


def test_fail_instances_fails_only_that_node_and_operation(sandbox, ssm):
    victim = _installable(sandbox)[0]["instance_id"]
    healthy = next(
        n["instance_id"]
        for n in sandbox.nodes(MGMT, REGION)
        if n["managed"]
        and n["ping_status"] == "Online"
        and n["instance_id"] != victim
        and seeded_outcome(SEED, n["instance_id"], "AWS-RunPatchBaseline")[0] == "Success"
    )
    before = _rows(ssm, victim)
    sandbox.set_faults({"fail_instances": {victim: "Install"}})
    try:
        cmd = ssm.send_command(
            DocumentName="AWS-RunPatchBaseline",
            InstanceIds=[victim, healthy],
            Parameters={"Operation": ["Install"], "RebootOption": ["RebootIfNeeded"]},
        )["Command"]
        by_node = {i["InstanceId"]: i for i in _finish(sandbox, ssm, cmd["CommandId"])}
        assert by_node[victim]["Status"] == "Failed" and by_node[victim]["StatusDetails"] == "Failed"
        assert by_node[healthy]["Status"] == "Success"
        assert _rows(ssm, victim) == before  # a failed Install changes nothing
        # the same node still scans: the fault names the Install operation only
        scan = ssm.send_command(
            DocumentName="AWS-RunPatchBaseline", InstanceIds=[victim], Parameters={"Operation": ["Scan"]}
        )["Command"]
        assert _finish(sandbox, ssm, scan["CommandId"])[0]["Status"] == "Success"
    finally:
        sandbox.set_faults({})


def test_fail_instances_config_is_checked():
    assert load_faults({"fail_instances": ["i-0123456789abcdef0"]}).fails("i-0123456789abcdef0", "Scan")
    faults = load_faults({"fail_instances": {"mi-0123456789abcdef0": "Install"}})
    assert faults.fails("mi-0123456789abcdef0", "Install") and not faults.fails("mi-0123456789abcdef0", "Scan")
    assert not faults.fails("i-0123456789abcdef0", "Install")
    with pytest.raises(FaultConfigError, match="Scan, Install"):
        load_faults({"fail_instances": {"i-0123456789abcdef0": "Reboot"}})
    with pytest.raises(FaultConfigError, match="list of node ids"):
        load_faults({"fail_instances": "i-0123456789abcdef0"})


def test_send_command_log_records_every_request_with_its_outcome(sandbox, ssm):
    sandbox.reset_calls()
    iid = _installable(sandbox)[0]["instance_id"]
    cmd = ssm.send_command(DocumentName="AWS-RunPatchBaseline", InstanceIds=[iid], Parameters={"Operation": ["Scan"]})
    with pytest.raises(botocore.exceptions.ClientError, match="InvalidInstanceId"):
        ssm.send_command(
            DocumentName="AWS-RunPatchBaseline", InstanceIds=["i-0000000000000000f"], Parameters={"Operation": ["Scan"]}
        )
    logged = sandbox.sent_commands()
    assert [e["outcome"] for e in logged] == [cmd["Command"]["CommandId"], "InvalidInstanceId"]
    assert logged[0]["InstanceIds"] == [iid] and logged[0]["Parameters"] == {"Operation": ["Scan"]}
    assert logged[0]["account_id"] == MGMT and logged[0]["region"] == REGION
    assert sandbox.calls()["ssm.SendCommand"] == 2
    sandbox.reset_calls()
    assert sandbox.sent_commands() == []
