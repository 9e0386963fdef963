"""What successful runs change (docs/aws-behaviours.md §2, §8) and the admin endpoints (remediate, terminate,
advance)."""

from __future__ import annotations

from collections.abc import Iterator

import botocore.exceptions
import pytest

from sandbox.ssm_commands import seeded_outcome
from sandbox.testing import RunningSandbox, running_sandbox
from tests.sandbox.conftest import all_pages, client

MGMT = "123456789012"
REGION = "us-east-1"
SEED = 11


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    # Own sandbox: these tests change node state.
    with running_sandbox(profile="small", seed=SEED, time_scale=0) as sb:
        yield sb


@pytest.fixture(scope="module")
def ssm(sandbox):
    return client(sandbox, "ssm")


def _ok(n: dict, doc: str = "AWS-RunPatchBaseline") -> bool:
    return n["managed"] and n["ping_status"] == "Online" and seeded_outcome(SEED, n["instance_id"], doc)[0] == "Success"


def _ok_nodes(sb, doc="AWS-RunPatchBaseline", **match):
    return [n for n in sb.nodes(MGMT, REGION) if _ok(n, doc) and all(n.get(k) == v for k, v in match.items())]


def _run(sb, ssm, iid, doc="AWS-RunPatchBaseline", **params) -> str:
    cmd = ssm.send_command(DocumentName=doc, InstanceIds=[iid], Parameters={k: [v] for k, v in params.items()})[
        "Command"
    ]
    sb.admin("advance", seconds=3000)
    inv = ssm.get_command_invocation(CommandId=cmd["CommandId"], InstanceId=iid)
    assert inv["Status"] == "Success", inv
    return cmd["CommandId"]


def _state(ssm, iid):
    return ssm.describe_instance_patch_states(InstanceIds=[iid])["InstancePatchStates"][0]


def _patch_items(ssm, iid):
    return all_pages(
        ssm.list_compliance_items,
        "ComplianceItems",
        ResourceIds=[iid],
        ResourceTypes=["ManagedInstance"],
        Filters=[{"Key": "ComplianceType", "Values": ["Patch"]}],
    )


def test_scan_of_a_never_scanned_node_creates_state_and_items(sandbox):
    account, region, node = next(
        (a["id"], r, n)
        for a in sandbox.fleet["accounts"]
        if a["state"] == "ACTIVE" and a["has_role"]
        for r in sandbox.fleet["regions"]
        for n in sandbox.nodes(a["id"], r)
        if _ok(n) and not n["scanned"]
    )
    ssm = client(sandbox, "ssm", region=region, account_id=account)
    iid = node["instance_id"]
    assert ssm.describe_instance_patch_states(InstanceIds=[iid])["InstancePatchStates"] == []
    assert _patch_items(ssm, iid) == []
    cid = _run(sandbox, ssm, iid, Operation="Scan")
    assert _state(ssm, iid)["Operation"] == "Scan"
    items = _patch_items(ssm, iid)
    assert items and all(i["ExecutionSummary"]["ExecutionId"] == cid for i in items)


def test_scan_rewrites_patch_state_and_patch_items(sandbox, ssm):
    node = next(n for n in _ok_nodes(sandbox) if n["scanned"])
    iid = node["instance_id"]
    before = _state(ssm, iid)
    cid = _run(sandbox, ssm, iid, Operation="Scan", SnapshotId="11111111-2222-3333-4444-555555555555")
    after = _state(ssm, iid)
    assert after["Operation"] == "Scan" and after["OperationEndTime"] > before["OperationEndTime"]
    assert after["OperationStartTime"] < after["OperationEndTime"]
    assert after["SnapshotId"] == "11111111-2222-3333-4444-555555555555"
    assert after["MissingCount"] + after["FailedCount"] == node["missing"]  # recomputed from the node
    items = _patch_items(ssm, iid)
    assert items and all(i["ExecutionSummary"]["ExecutionId"] == cid for i in items)
    assert all(i["ExecutionSummary"]["ExecutionType"] == "Command" for i in items)


def test_install_no_reboot_leaves_pending_reboot_and_non_compliant(sandbox, ssm):
    node = next(n for n in _ok_nodes(sandbox) if n["missing"] > 0)
    iid = node["instance_id"]
    _run(sandbox, ssm, iid, Operation="Install", RebootOption="NoReboot")
    state = _state(ssm, iid)
    assert state["Operation"] == "Install" and state["RebootOption"] == "NoReboot"
    assert state["MissingCount"] == 0 and state["FailedCount"] == 0
    assert state["InstalledPendingRebootCount"] >= node["missing"]
    assert "LastNoRebootInstallOperationTime" in state
    patches = all_pages(
        ssm.describe_instance_patches,
        "Patches",
        InstanceId=iid,
        Filters=[{"Key": "State", "Values": ["InstalledPendingReboot"]}],
    )
    assert len(patches) == state["InstalledPendingRebootCount"]
    summary = next(
        s
        for s in all_pages(ssm.list_resource_compliance_summaries, "ResourceComplianceSummaryItems")
        if s["ResourceId"] == iid and s["ComplianceType"] == "Patch"
    )
    assert summary["Status"] == "NON_COMPLIANT"  # pending reboot is non-compliant (docs/aws-behaviours.md §8)
    _run(sandbox, ssm, iid, Operation="Install", RebootOption="RebootIfNeeded")
    state = _state(ssm, iid)
    assert state["InstalledPendingRebootCount"] == 0 and state["RebootOption"] == "RebootIfNeeded"


def test_association_document_writes_only_association_items(sandbox, ssm):
    node = next(
        n for n in _ok_nodes(sandbox, "AWS-RunPatchBaselineAssociation", resource_type="EC2Instance") if n["scanned"]
    )
    iid = node["instance_id"]
    before_state = _state(ssm, iid)
    before_patch = _patch_items(ssm, iid)
    cid = _run(sandbox, ssm, iid, "AWS-RunPatchBaselineAssociation", Operation="Scan", AssociationId="assoc-1234")
    assert _state(ssm, iid) == before_state
    assert _patch_items(ssm, iid) == before_patch
    assoc = all_pages(
        ssm.list_compliance_items,
        "ComplianceItems",
        ResourceIds=[iid],
        ResourceTypes=["ManagedInstance"],
        Filters=[{"Key": "ComplianceType", "Values": ["Association"]}],
    )
    assert [a["Id"] for a in assoc] == ["assoc-1234"] and assoc[0]["ExecutionSummary"]["ExecutionId"] == cid


def test_remediate_changes_nothing_reported_until_the_next_scan(sandbox, ssm):
    node = next(n for n in _ok_nodes(sandbox) if n["missing"] > 0 and n["scanned"])
    iid = node["instance_id"]
    before = _state(ssm, iid)
    assert before["MissingCount"] + before["FailedCount"] == node["missing"]
    result = sandbox.admin("remediate", account_id=MGMT, region=REGION, instance_id=iid)
    assert result["patches_changed"] >= node["missing"]
    assert _state(ssm, iid) == before
    _run(sandbox, ssm, iid, Operation="Scan")
    state = _state(ssm, iid)
    assert (
        state["MissingCount"],
        state["FailedCount"],
        state["InstalledPendingRebootCount"],
        state["InstalledRejectedCount"],
    ) == (0, 0, 0, 0)
    assert all(i["Status"] in ("COMPLIANT", "") for i in _patch_items(ssm, iid))


def test_terminate_removes_node_from_ssm_and_ec2(sandbox, ssm):
    node = _ok_nodes(sandbox, resource_type="EC2Instance")[-1]
    iid = node["instance_id"]
    running = ssm.send_command(
        DocumentName="AWS-RunPatchBaseline", InstanceIds=[iid], Parameters={"Operation": ["Scan"]}
    )["Command"]
    sandbox.admin("advance", seconds=5)
    assert ssm.get_command_invocation(CommandId=running["CommandId"], InstanceId=iid)["Status"] == "InProgress"
    sandbox.admin("terminate", account_id=MGMT, region=REGION, instance_id=iid)
    sandbox.admin("advance", seconds=3000)
    inv = ssm.get_command_invocation(CommandId=running["CommandId"], InstanceId=iid)
    assert inv["StatusDetails"] == "Undeliverable"
    assert ssm.list_commands(CommandId=running["CommandId"])["Commands"][0]["Status"] == "Failed"
    assert ssm.describe_instance_patch_states(InstanceIds=[iid])["InstancePatchStates"] == []
    listed = all_pages(ssm.describe_instance_information, "InstanceInformationList", MaxResults=50)
    assert iid not in {i["InstanceId"] for i in listed}
    ec2 = client(sandbox, "ec2")
    inst = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    assert inst["State"]["Name"] == "terminated"
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        ssm.send_command(DocumentName="AWS-RunPatchBaseline", InstanceIds=[iid], Parameters={"Operation": ["Scan"]})
    assert exc.value.response["Error"]["Code"] == "InvalidInstanceId"


def test_admin_errors_name_the_field(sandbox):
    with pytest.raises(RuntimeError, match="instance_id"):
        sandbox.admin("remediate", account_id=MGMT, region=REGION)
    with pytest.raises(RuntimeError, match="i-0000"):
        sandbox.admin("terminate", account_id=MGMT, region=REGION, instance_id="i-0000")
    with pytest.raises(RuntimeError, match="seconds"):
        sandbox.admin("advance", seconds=-1)


def test_advance_moves_emulated_time(sandbox):
    before = sandbox.admin("advance", seconds=0)["epoch"]
    after = sandbox.admin("advance", seconds=3600)["epoch"]
    assert after - before == pytest.approx(3600, abs=1)


def test_health_nodes_and_unknown_endpoints(sandbox):
    health = sandbox._request("GET", "/_sandbox/health")
    assert health["status"] == "ready" and health["seed"] == SEED and health["time_scale"] == 0
    with pytest.raises(RuntimeError, match="account_id and region"):
        sandbox._request("GET", "/_sandbox/nodes")
    with pytest.raises(RuntimeError, match="404"):
        sandbox._request("GET", "/_sandbox/nope")


def test_only_one_sandbox_per_process(sandbox):
    with pytest.raises(RuntimeError, match="already running"):
        with running_sandbox():
            pass
