"""DescribeInstanceInformation, patch states, patches and compliance APIs: shapes, limits, paging, filters and
error codes (docs/aws-behaviours.md §6-§10). Every call goes through boto3, so botocore parses every response."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import botocore.exceptions
import pytest

from tests.sandbox.conftest import all_pages, client

MGMT = "123456789012"
REGION = "us-east-1"


def _error(call, **kwargs) -> dict:
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        call(**kwargs)
    return exc.value.response["Error"]


@pytest.fixture(scope="module")
def ssm(sandbox):
    return client(sandbox, "ssm")


@pytest.fixture(scope="module")
def nodes(sandbox):
    return sandbox.nodes(MGMT, REGION)


def _fleet_nodes(sandbox):
    """(account, region, node) over every reachable account-region."""
    return [
        (a["id"], r, n)
        for a in sandbox.fleet["accounts"]
        if a["state"] == "ACTIVE" and a["has_role"]
        for r in sandbox.fleet["regions"]
        for n in sandbox.nodes(a["id"], r)
    ]


def test_describe_instance_information_lists_only_managed_running_nodes(ssm, nodes):
    listed = ssm.get_paginator("describe_instance_information").paginate().build_full_result()
    ids = {i["InstanceId"] for i in listed["InstanceInformationList"]}
    assert ids == {n["instance_id"] for n in nodes if n["managed"]}
    assert not ids & {n["instance_id"] for n in nodes if n["ec2_state"] == "stopped" or not n["has_agent"]}
    info = listed["InstanceInformationList"][0]
    assert {
        "InstanceId",
        "PingStatus",
        "LastPingDateTime",
        "AgentVersion",
        "PlatformType",
        "PlatformName",
        "PlatformVersion",
        "ResourceType",
        "IPAddress",
        "ComputerName",
    } <= set(info)


def test_describe_instance_information_default_page_is_10_and_limits(sandbox):
    ssm = client(sandbox, "ssm")
    total = len(all_pages(ssm.describe_instance_information, "InstanceInformationList", MaxResults=5))
    assert len(ssm.describe_instance_information()["InstanceInformationList"]) == min(10, total)
    first = ssm.describe_instance_information(MaxResults=5)
    assert len(first["InstanceInformationList"]) == min(5, total)
    assert ("NextToken" in first) == (total > 5)
    assert _error(ssm.describe_instance_information, MaxResults=51)["Code"] == "ValidationException"
    assert _error(ssm.describe_instance_information, NextToken="xyz")["Code"] == "InvalidNextToken"


def test_describe_instance_information_filters(sandbox):
    account, region, _ = next(
        x for x in _fleet_nodes(sandbox) if x[2]["managed"] and x[2]["ping_status"] == "ConnectionLost"
    )
    ssm = client(sandbox, "ssm", region=region, account_id=account)
    nodes = [n for n in sandbox.nodes(account, region) if n["managed"]]

    def ids(**kw):
        return {
            i["InstanceId"]
            for i in all_pages(ssm.describe_instance_information, "InstanceInformationList", MaxResults=50, **kw)
        }

    lost = {n["instance_id"] for n in nodes if n["ping_status"] == "ConnectionLost"}
    assert ids(Filters=[{"Key": "PingStatus", "Values": ["ConnectionLost"]}]) == lost
    assert ids(Filters=[{"Key": "PlatformTypes", "Values": ["Windows"]}]) == {
        n["instance_id"] for n in nodes if n["platform_type"] == "Windows"
    }
    assert ids(Filters=[{"Key": "ResourceType", "Values": ["EC2Instance"]}]) == {
        n["instance_id"] for n in nodes if n["resource_type"] == "EC2Instance"
    }
    one = nodes[0]["instance_id"]
    assert ids(Filters=[{"Key": "InstanceIds", "Values": [one]}]) == {one}
    assert ids(Filters=[{"Key": "tag:Patch", "Values": ["true"]}]) == {
        n["instance_id"] for n in nodes if n["tags"].get("Patch") == "true"
    }
    assert ids(InstanceInformationFilterList=[{"key": "PingStatus", "valueSet": ["Online"]}]) == {
        n["instance_id"] for n in nodes if n["ping_status"] == "Online"
    }
    assert _error(ssm.describe_instance_information, Filters=[{"Key": "Bogus", "Values": ["x"]}])["Code"] == (
        "InvalidFilterKey"
    )
    assert (
        _error(ssm.describe_instance_information, Filters=[{"Key": "PingStatus", "Values": ["Asleep"]}])["Code"]
        == "InvalidInstanceInformationFilterValue"
    )


def test_describe_instance_patch_states_limits_and_shape(ssm, nodes):
    managed = [n for n in nodes if n["managed"]]
    ids = [n["instance_id"] for n in managed]
    states = ssm.get_paginator("describe_instance_patch_states").paginate(InstanceIds=ids).build_full_result()
    got = {s["InstanceId"]: s for s in states["InstancePatchStates"]}
    assert set(got) == {n["instance_id"] for n in managed if n["scanned"]}  # never-scanned nodes have no state
    state = next(iter(got.values()))
    for key in (
        "PatchGroup",
        "BaselineId",
        "OperationStartTime",
        "OperationEndTime",
        "Operation",
        "InstalledCount",
        "MissingCount",
        "FailedCount",
        "NotApplicableCount",
        "CriticalNonCompliantCount",
    ):
        assert key in state
    assert (
        _error(ssm.describe_instance_patch_states, InstanceIds=[f"i-{n:017x}" for n in range(51)])["Code"]
        == "ValidationException"
    )
    # The model allows 100 but the live service rejects > 50 (docs/aws-behaviours.md §6).
    err = _error(ssm.describe_instance_patch_states, InstanceIds=ids, MaxResults=60)
    assert err["Code"] == "ValidationException" and "less than or equal to 50" in err["Message"]
    assert ssm.describe_instance_patch_states(InstanceIds=ids, MaxResults=50)["InstancePatchStates"]


def test_fleet_has_stale_and_fresh_scans(sandbox):
    now = datetime.now(UTC)
    ends = []
    for _account, _region, n in _fleet_nodes(sandbox):
        if n["scanned"]:
            ends.append(datetime.fromtimestamp(n["last_operation_end"], UTC))
    assert any(now - e > timedelta(days=30) for e in ends) and any(now - e < timedelta(days=8) for e in ends)


def test_patch_states_for_patch_group_filters(ssm, nodes):
    group = next(n["patch_group"] for n in nodes if n["managed"] and n["scanned"])
    all_states = all_pages(ssm.describe_instance_patch_states_for_patch_group, "InstancePatchStates", PatchGroup=group)
    assert all_states and all(s["PatchGroup"] == group for s in all_states)
    missing = all_pages(
        ssm.describe_instance_patch_states_for_patch_group,
        "InstancePatchStates",
        PatchGroup=group,
        Filters=[{"Key": "MissingCount", "Values": ["0"], "Type": "GreaterThan"}],
    )
    assert {s["InstanceId"] for s in missing} == {s["InstanceId"] for s in all_states if s["MissingCount"] > 0}
    assert (
        _error(
            ssm.describe_instance_patch_states_for_patch_group,
            PatchGroup=group,
            Filters=[{"Key": "Nope", "Values": ["0"], "Type": "Equal"}],
        )["Code"]
        == "InvalidFilter"
    )


def _scanned_windows(sandbox):
    return next(
        (a, r, n)
        for a, r, n in _fleet_nodes(sandbox)
        if n["managed"] and n["scanned"] and n["platform_type"] == "Windows"
    )


def test_describe_instance_patches_matches_live_service_quirks(sandbox):
    account, region, node = _scanned_windows(sandbox)
    ssm = client(sandbox, "ssm", region=region, account_id=account)
    patches = (
        ssm.get_paginator("describe_instance_patches")
        .paginate(InstanceId=node["instance_id"])
        .build_full_result()["Patches"]
    )
    states = {p["State"] for p in patches}
    assert states <= {
        "Installed",
        "InstalledOther",
        "InstalledPendingReboot",
        "InstalledRejected",
        "Missing",
        "Failed",
        "NotApplicable",
        "AvailableSecurityUpdate",
    }  # CamelCase (docs/aws-behaviours.md §7)
    assert "Installed" in states and "NotApplicable" in states
    for p in patches:
        if p["State"] in ("InstalledOther", "NotApplicable"):
            assert p["Title"] == p["Classification"] == p["Severity"] == ""
        if p["State"] not in ("Missing", "Failed"):
            assert "CVEIds" not in p
        if p["State"] == "Missing":
            assert p["InstalledTime"].timestamp() == 0
    missing = [p for p in patches if p["State"] in ("Missing", "Failed") and p["Classification"] == "SecurityUpdates"]
    assert all("," in p["CVEIds"] or p["CVEIds"].startswith("CVE-") for p in missing)


def test_linux_patches_share_kbid_with_different_titles(sandbox):
    account, region, node = next(
        (a, r, n)
        for a, r, n in _fleet_nodes(sandbox)
        if n["managed"] and n["scanned"] and n["platform"] == "Amazon Linux"
    )
    ssm = client(sandbox, "ssm", region=region, account_id=account)
    patches = all_pages(ssm.describe_instance_patches, "Patches", InstanceId=node["instance_id"], MaxResults=100)
    kernels = [p for p in patches if p["KBId"] == "kernel.x86_64" and p["Title"]]
    assert len(kernels) == 2 and kernels[0]["Title"] != kernels[1]["Title"]


def test_describe_instance_patches_filters_and_errors(sandbox):
    account, region, node = _scanned_windows(sandbox)
    ssm = client(sandbox, "ssm", region=region, account_id=account)
    iid = node["instance_id"]
    missing = all_pages(
        ssm.describe_instance_patches, "Patches", InstanceId=iid, Filters=[{"Key": "State", "Values": ["Missing"]}]
    )
    assert all(p["State"] == "Missing" for p in missing)
    upper = all_pages(
        ssm.describe_instance_patches, "Patches", InstanceId=iid, Filters=[{"Key": "State", "Values": ["MISSING"]}]
    )
    assert upper == missing
    assert (
        _error(ssm.describe_instance_patches, InstanceId=iid, Filters=[{"Key": "Nope", "Values": ["x"]}])["Code"]
        == "InvalidFilter"
    )
    assert _error(ssm.describe_instance_patches, InstanceId=iid, MaxResults=101)["Code"] == "ValidationException"
    assert _error(ssm.describe_instance_patches, InstanceId="i-0123456789abcdef0")["Code"] == "InvalidInstanceId"


def test_list_compliance_items_rules(ssm, nodes):
    node = next(n for n in nodes if n["managed"] and n["scanned"])
    iid = node["instance_id"]
    items = all_pages(
        ssm.list_compliance_items, "ComplianceItems", ResourceIds=[iid], ResourceTypes=["ManagedInstance"]
    )
    types = {i["ComplianceType"] for i in items}
    assert "Patch" in types
    patch = next(i for i in items if i["ComplianceType"] == "Patch")
    assert {"DocumentName", "PatchBaselineId", "PatchState", "PatchGroup", "Classification"} <= set(patch["Details"])
    assert patch["Status"] in ("COMPLIANT", "NON_COMPLIANT", "")
    only_patch = all_pages(
        ssm.list_compliance_items,
        "ComplianceItems",
        ResourceIds=[iid],
        ResourceTypes=["ManagedInstance"],
        Filters=[{"Key": "ComplianceType", "Values": ["Patch"], "Type": "EQUAL"}],
    )
    assert only_patch and {i["ComplianceType"] for i in only_patch} == {"Patch"}
    assert (
        _error(ssm.list_compliance_items, ResourceIds=[iid, iid], ResourceTypes=["ManagedInstance"])["Code"]
        == "ValidationException"
    )
    assert _error(ssm.list_compliance_items, ResourceIds=[iid], ResourceTypes=["Bucket"])["Code"] == (
        "InvalidResourceType"
    )
    assert (
        _error(ssm.list_compliance_items, ResourceIds=[iid], ResourceTypes=["ManagedInstance"], MaxResults=51)["Code"]
        == "ValidationException"
    )
    assert (
        _error(
            ssm.list_compliance_items,
            ResourceIds=[iid],
            ResourceTypes=["ManagedInstance"],
            Filters=[{"Key": "Nope", "Values": ["x"], "Type": "EQUAL"}],
        )["Code"]
        == "InvalidFilter"
    )


def test_association_items_as_quick_setup_leaves_them(sandbox):
    account, region, node = next(
        (a, r, n)
        for a, r, n in _fleet_nodes(sandbox)
        if n["managed"] and n["scanned"] and n["resource_type"] == "EC2Instance"
    )
    ssm = client(sandbox, "ssm", region=region, account_id=account)
    items = all_pages(
        ssm.list_compliance_items,
        "ComplianceItems",
        ResourceIds=[node["instance_id"]],
        ResourceTypes=["ManagedInstance"],
        Filters=[{"Key": "ComplianceType", "Values": ["Association"]}],
    )
    assert len(items) == 1
    assert set(items[0]["Details"]) == {"DocumentName", "PatchBaselineId", "DocumentVersion"}


def test_resource_and_account_compliance_summaries(ssm, nodes):
    rows = all_pages(ssm.list_resource_compliance_summaries, "ResourceComplianceSummaryItems")
    scanned = {n["instance_id"] for n in nodes if n["managed"] and n["scanned"]}
    patch_rows = [r for r in rows if r["ComplianceType"] == "Patch"]
    assert {r["ResourceId"] for r in patch_rows} == scanned
    for r in patch_rows:
        assert (r["Status"] == "NON_COMPLIANT") == (r["NonCompliantSummary"]["NonCompliantCount"] > 0)
    filtered = all_pages(
        ssm.list_resource_compliance_summaries,
        "ResourceComplianceSummaryItems",
        Filters=[
            {"Key": "ComplianceType", "Values": ["Patch"], "Type": "EQUAL"},
            {"Key": "Status", "Values": ["NON_COMPLIANT"], "Type": "EQUAL"},
        ],
    )
    assert {r["ResourceId"] for r in filtered} == {
        r["ResourceId"] for r in patch_rows if r["Status"] == "NON_COMPLIANT"
    }
    summary = {s["ComplianceType"]: s for s in ssm.list_compliance_summaries()["ComplianceSummaryItems"]}
    patch = summary["Patch"]
    assert patch["CompliantSummary"]["CompliantCount"] + patch["NonCompliantSummary"]["NonCompliantCount"] == len(
        patch_rows
    )
    assert _error(ssm.list_resource_compliance_summaries, MaxResults=51)["Code"] == "ValidationException"


def test_list_compliance_items_status_filter_keeps_only_non_compliant_items_aws_behaviours_26(ssm, nodes):
    by_type = {"Key": "ComplianceType", "Values": ["Patch", "Association"], "Type": "EQUAL"}
    checked = 0
    for node in (n for n in nodes if n["managed"] and n["scanned"]):
        kwargs = {"ResourceIds": [node["instance_id"]], "ResourceTypes": ["ManagedInstance"]}
        everything = all_pages(ssm.list_compliance_items, "ComplianceItems", Filters=[by_type], **kwargs)
        status = {"Key": "Status", "Values": ["NON_COMPLIANT"], "Type": "EQUAL"}
        non = all_pages(ssm.list_compliance_items, "ComplianceItems", Filters=[by_type, status], **kwargs)
        assert non == [i for i in everything if i["Status"] == "NON_COMPLIANT"]
        checked += bool(non) and len(non) < len(everything)
    assert checked  # some node has both kinds, so the filter did something


def test_resource_compliance_summaries_page_and_agree_with_items_aws_behaviours_26(ssm, nodes):
    by_type = [{"Key": "ComplianceType", "Values": ["Patch", "Association"], "Type": "EQUAL"}]
    whole = ssm.list_resource_compliance_summaries(Filters=by_type, MaxResults=50)
    assert "NextToken" not in whole and len(whole["ResourceComplianceSummaryItems"]) > 5
    paged = all_pages(
        ssm.list_resource_compliance_summaries, "ResourceComplianceSummaryItems", Filters=by_type, MaxResults=5
    )
    assert paged == whole["ResourceComplianceSummaryItems"]
    first = ssm.list_resource_compliance_summaries(Filters=by_type, MaxResults=5)
    other_filter = [{"Key": "ComplianceType", "Values": ["Patch"], "Type": "EQUAL"}]
    assert (
        _error(ssm.list_resource_compliance_summaries, Filters=other_filter, NextToken=first["NextToken"])["Code"]
        == "InvalidNextToken"
    )
    assert {r["ComplianceType"] for r in paged} == {"Patch", "Association"}
    for row in paged:  # NON_COMPLIANT there <=> the resource has NON_COMPLIANT items of that type
        items = all_pages(
            ssm.list_compliance_items,
            "ComplianceItems",
            ResourceIds=[row["ResourceId"]],
            ResourceTypes=["ManagedInstance"],
            Filters=[
                {"Key": "ComplianceType", "Values": [row["ComplianceType"]], "Type": "EQUAL"},
                {"Key": "Status", "Values": ["NON_COMPLIANT"], "Type": "EQUAL"},
            ],
        )
        assert (
            (row["Status"] == "NON_COMPLIANT") == bool(items) == (row["NonCompliantSummary"]["NonCompliantCount"] > 0)
        )


def test_patch_baselines_match_the_nodes(sandbox):
    account, region, windows = next(x for x in _fleet_nodes(sandbox) if x[2]["platform_type"] == "Windows")
    ssm = client(sandbox, "ssm", region=region, account_id=account)
    nodes = sandbox.nodes(account, region)
    baselines = ssm.describe_patch_baselines()["BaselineIdentities"]
    assert {b["BaselineId"] for b in baselines} >= {n["baseline_id"] for n in nodes}
    assert all(b["BaselineId"].startswith("pb-") and len(b["BaselineId"]) == 20 for b in baselines)
    got = ssm.get_patch_baseline_for_patch_group(PatchGroup=windows["patch_group"])  # OperatingSystem defaults WINDOWS
    assert got["BaselineId"] == windows["baseline_id"] and got["OperatingSystem"] == "WINDOWS"
    al = next(n for n in nodes if n["platform"] != "Microsoft Windows Server 2022 Datacenter")
    os_name = {
        "Amazon Linux": "AMAZON_LINUX_2023",
        "Ubuntu": "UBUNTU",
        "Red Hat Enterprise Linux": "REDHAT_ENTERPRISE_LINUX",
    }[al["platform"]]
    got = ssm.get_patch_baseline_for_patch_group(PatchGroup=al["patch_group"], OperatingSystem=os_name)
    assert got["BaselineId"] == al["baseline_id"]
