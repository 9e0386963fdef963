"""Fleet generator, Organizations reads (paging quirks, docs/aws-behaviours.md §11) and the AssumeRole gate."""

from __future__ import annotations

import botocore.exceptions
import pytest

from sandbox.fleet import PROFILES, generate_fleet
from tests.sandbox.conftest import active_members, all_pages, client


def test_fleet_is_deterministic_per_seed_and_profile():
    a, b, c = generate_fleet("small", 7), generate_fleet("small", 7), generate_fleet("small", 8)
    assert a.to_dict() == b.to_dict()
    assert [x.id for x in a.accounts] != [x.id for x in c.accounts]
    assert len(generate_fleet("medium", 7).accounts) == PROFILES["medium"].accounts
    assert len(generate_fleet("large", 7).accounts) == PROFILES["large"].accounts


def test_fleet_endpoint_shape_and_special_accounts(sandbox):
    fleet = sandbox.fleet
    assert fleet["management_account_id"] == "123456789012"
    assert fleet["member_role_name"] == "PatchComplianceScanRole"
    assert fleet["regions"] == ["us-east-1", "eu-west-1"] and fleet["profile"] == "small" and fleet["seed"] == 7
    paths = {o["path"] for o in fleet["ous"]}
    assert {
        "Root/Infrastructure",
        "Root/Workloads",
        "Root/Workloads/Prod",
        "Root/Workloads/NonProd",
        "Root/Sandbox",
    } <= paths
    assert all(set(o) == {"id", "name", "path", "parent_id"} for o in fleet["ous"])
    assert all(set(a) == {"id", "name", "ou_id", "state", "has_role"} for a in fleet["accounts"])
    assert [a["state"] for a in fleet["accounts"]].count("SUSPENDED") >= 1
    assert any(not a["has_role"] for a in fleet["accounts"])
    assert 5 <= len(fleet["accounts"]) <= 8


def test_generated_nodes_cover_the_fleet_variety(sandbox):
    nodes = [
        n
        for a in sandbox.fleet["accounts"]
        if a["state"] == "ACTIVE"
        for r in sandbox.fleet["regions"]
        for n in sandbox.nodes(a["id"], r)
    ]
    assert 40 <= len(nodes) <= 90
    assert {"Amazon Linux", "Ubuntu", "Red Hat Enterprise Linux", "Microsoft Windows Server 2022 Datacenter"} <= {
        n["platform"] for n in nodes
    }
    assert any(not n["has_agent"] for n in nodes), "some EC2 instances have no SSM agent (unmanaged)"
    assert any(n["ping_status"] == "ConnectionLost" for n in nodes)
    assert any(
        n["resource_type"] == "ManagedInstance" and n["instance_id"].startswith("mi-") and len(n["instance_id"]) == 20
        for n in nodes
    )
    assert all(len(n["instance_id"]) == 19 for n in nodes if n["instance_id"].startswith("i-"))
    assert any(n["has_agent"] and not n["scanned"] for n in nodes), "some nodes were never scanned"
    assert all(n["baseline_id"].startswith("pb-") and len(n["baseline_id"]) == 20 for n in nodes)
    tagged = [n for n in nodes if n["tags"].get("Patch") == "true"]
    assert len(nodes) * 0.6 < len(tagged) < len(nodes)
    assert all({"Name", "Environment", "PatchGroup"} <= set(n["tags"]) for n in nodes)


def test_suspended_account_has_no_nodes_and_state(sandbox):
    suspended = next(a for a in sandbox.fleet["accounts"] if a["state"] == "SUSPENDED")
    assert sandbox.nodes(suspended["id"], "us-east-1") == []
    org = client(sandbox, "organizations")
    account = org.describe_account(AccountId=suspended["id"])["Account"]
    assert account["State"] == "SUSPENDED" and account["Status"] == "SUSPENDED"


def test_org_walk_with_paginators_returns_every_ou_and_account(sandbox):
    org = client(sandbox, "organizations")
    roots = org.get_paginator("list_roots").paginate().build_full_result()["Roots"]
    assert [r["Id"] for r in roots] == [sandbox.fleet["ous"][0]["parent_id"]]
    seen_ous, seen_accounts, stack = [], [], [roots[0]["Id"]]
    while stack:
        parent = stack.pop()
        ous = (
            org.get_paginator("list_organizational_units_for_parent")
            .paginate(ParentId=parent, PaginationConfig={"PageSize": 1})
            .build_full_result()["OrganizationalUnits"]
        )
        seen_ous += ous
        stack += [o["Id"] for o in ous]
        seen_accounts += (
            org.get_paginator("list_accounts_for_parent")
            .paginate(ParentId=parent, PaginationConfig={"PageSize": 1})
            .build_full_result()["Accounts"]
        )
    assert sorted(o["Id"] for o in seen_ous) == sorted(o["id"] for o in sandbox.fleet["ous"])
    assert sorted(a["Id"] for a in seen_accounts) == sorted(a["id"] for a in sandbox.fleet["accounts"])
    ou = seen_ous[0]
    assert ou["Path"].endswith(ou["Id"] + "/") and ou["Path"].startswith("o-")
    assert all(a["Paths"][0].endswith(a["Id"] + "/") for a in seen_accounts)


def test_list_accounts_for_parent_returns_direct_children_only(sandbox):
    org = client(sandbox, "organizations")
    workloads = next(o for o in sandbox.fleet["ous"] if o["path"] == "Root/Workloads")
    assert all_pages(org.list_accounts_for_parent, "Accounts", ParentId=workloads["id"]) == []
    children = all_pages(org.list_children, "Children", ParentId=workloads["id"], ChildType="ORGANIZATIONAL_UNIT")
    assert {c["Type"] for c in children} == {"ORGANIZATIONAL_UNIT"} and len(children) == 2


def test_org_list_calls_sometimes_return_an_empty_page_with_a_token(sandbox):
    org = client(sandbox, "organizations")
    pages = []
    for _ in range(4):
        token = None
        while True:
            resp = org.list_accounts(MaxResults=2, **({"NextToken": token} if token else {}))
            pages.append(resp)
            token = resp.get("NextToken")
            if not token:
                break
    assert any(p["Accounts"] == [] and p.get("NextToken") for p in pages), "docs/aws-behaviours.md §11 empty page quirk"
    # Every walk still ends with every account exactly once.
    assert sorted(a["Id"] for a in all_pages(org.list_accounts, "Accounts", MaxResults=2)) == sorted(
        a["id"] for a in sandbox.fleet["accounts"]
    )


def test_org_limits_and_errors(sandbox):
    org = client(sandbox, "organizations")
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        org.list_accounts(MaxResults=21)
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(org.exceptions.ParentNotFoundException):
        org.list_children(ParentId="ou-zzzz-zzzzzzzz", ChildType="ACCOUNT")
    with pytest.raises(org.exceptions.AccountNotFoundException):
        org.describe_account(AccountId="999999999999")
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        org.list_accounts(NextToken="garbage")
    assert exc.value.response["Error"]["Code"] == "InvalidInputException"


def test_actions_passed_to_moto_see_the_same_organisation(sandbox):
    org = client(sandbox, "organizations")
    account = active_members(sandbox)[0]["id"]
    policies = org.list_policies_for_target(TargetId=account, Filter="SERVICE_CONTROL_POLICY")["Policies"]
    assert [p["Name"] for p in policies] == ["FullAWSAccess"]
    org.tag_resource(ResourceId=account, Tags=[{"Key": "team", "Value": "patching"}])
    assert org.list_tags_for_resource(ResourceId=account)["Tags"] == [{"Key": "team", "Value": "patching"}]
    ou = sandbox.fleet["ous"][0]["id"]
    assert org.list_policies_for_target(TargetId=ou, Filter="SERVICE_CONTROL_POLICY")["Policies"]


def test_member_accounts_cannot_list_the_org(sandbox):
    member = active_members(sandbox)[0]
    org = client(sandbox, "organizations", account_id=member["id"])
    with pytest.raises(org.exceptions.AccessDeniedException):
        org.list_accounts()


def test_assume_role_into_member_maps_credentials_to_that_account(sandbox):
    member = active_members(sandbox)[0]
    sts = client(sandbox, "sts", account_id=member["id"])
    assert sts.get_caller_identity()["Account"] == member["id"]
    ssm = client(sandbox, "ssm", account_id=member["id"])
    ids = {i["InstanceId"] for i in all_pages(ssm.describe_instance_information, "InstanceInformationList")}
    expected = {n["instance_id"] for n in sandbox.nodes(member["id"], "us-east-1") if n["managed"]}
    assert ids == expected and ids


@pytest.mark.parametrize("kind", ["no_role", "suspended", "wrong_role_name", "not_in_org"])
def test_assume_role_denied_like_aws(sandbox, kind):
    accounts = sandbox.fleet["accounts"]
    role = sandbox.fleet["member_role_name"]
    if kind == "no_role":
        arn = f"arn:aws:iam::{next(a['id'] for a in accounts if not a['has_role'])}:role/{role}"
    elif kind == "suspended":
        arn = f"arn:aws:iam::{next(a['id'] for a in accounts if a['state'] == 'SUSPENDED')}:role/{role}"
    elif kind == "wrong_role_name":
        arn = f"arn:aws:iam::{active_members(sandbox)[0]['id']}:role/OrganizationAccountAccessRole"
    else:
        arn = f"arn:aws:iam::999999999999:role/{role}"
    sts = client(sandbox, "sts")
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        sts.assume_role(RoleArn=arn, RoleSessionName="tests")
    assert exc.value.response["Error"]["Code"] == "AccessDenied"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_member_role_trusts_only_the_management_account(sandbox):
    first, second = active_members(sandbox)[:2]
    sts = client(sandbox, "sts", account_id=first["id"])
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        sts.assume_role(
            RoleArn=f"arn:aws:iam::{second['id']}:role/{sandbox.fleet['member_role_name']}", RoleSessionName="tests"
        )
    assert exc.value.response["Error"]["Code"] == "AccessDenied"


def test_ec2_in_member_account_agrees_with_ssm(sandbox):
    member = active_members(sandbox)[0]
    ec2 = client(sandbox, "ec2", region="eu-west-1", account_id=member["id"])
    instances = [i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]]
    nodes = {n["instance_id"]: n for n in sandbox.nodes(member["id"], "eu-west-1")}
    ec2_nodes = {k for k, n in nodes.items() if n["resource_type"] == "EC2Instance"}
    assert {i["InstanceId"] for i in instances} == ec2_nodes
    for inst in instances:
        node = nodes[inst["InstanceId"]]
        assert inst["State"]["Name"] == node["ec2_state"]
        assert {t["Key"]: t["Value"] for t in inst["Tags"]} == node["tags"]
