import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from include.patch_compliance.config import parse_config
from include.patch_compliance.discover.org import walk_organization
from include.patch_compliance.discover.plan import PlanError, build_plan

BASE = {"regions": ["us-east-1", "eu-west-1"], "reports": {"bucket": "reports-bucket"}}


@pytest.fixture
def org():
    """Root -> Infra, Workloads -> Prod -> Deep, Workloads -> NonProd; one suspended account."""
    with mock_aws():
        client = boto3.client("organizations", region_name="us-east-1")
        client.create_organization(FeatureSet="ALL")
        root = client.list_roots()["Roots"][0]["Id"]

        def ou(name, parent):
            return client.create_organizational_unit(ParentId=parent, Name=name)["OrganizationalUnit"]["Id"]

        ids = {"Infra": ou("Infra", root), "Workloads": ou("Workloads", root)}
        ids["Prod"] = ou("Prod", ids["Workloads"])
        ids["NonProd"] = ou("NonProd", ids["Workloads"])
        ids["Deep"] = ou("Deep", ids["Prod"])
        accounts = {}
        for name, parent in [
            ("infra-a", "Infra"),
            ("prod-a", "Prod"),
            ("deep-a", "Deep"),
            ("dev-a", "NonProd"),
            ("gone", "NonProd"),
        ]:
            status = client.create_account(AccountName=name, Email=f"{name}@example.com")["CreateAccountStatus"]
            acct = status["AccountId"]
            client.move_account(AccountId=acct, SourceParentId=root, DestinationParentId=ids[parent])
            accounts[name] = acct
        client.close_account(AccountId=accounts["gone"])  # moto: State becomes SUSPENDED
        yield client, ids, accounts


def test_walk_finds_nested_ous_with_paths(org):
    client, ids, accounts = org
    units, accts = walk_organization(client)
    paths = {u.path for u in units}
    assert {"Root", "Root/Infra", "Root/Workloads", "Root/Workloads/Prod", "Root/Workloads/Prod/Deep"} <= paths
    by_name = {a.name: a for a in accts}
    assert by_name["deep-a"].ou_path == "Root/Workloads/Prod/Deep"
    assert by_name["deep-a"].ou_id == ids["Deep"]
    assert by_name["gone"].state == "SUSPENDED"


def test_plan_keeps_active_accounts_only_by_state(org):
    client, _, accounts = org
    units, accts = walk_organization(client)
    plan = build_plan(units, accts, parse_config(BASE))
    planned = {t.account_id for t in plan.targets}
    assert accounts["gone"] not in planned
    assert any(s["account_id"] == accounts["gone"] and "SUSPENDED" in s["reason"] for s in plan.skipped)
    # every active account x every region
    assert len(plan.targets) == 5 * 2  # 4 members + the management account, 2 regions


def test_include_exclude_by_path_and_id_cover_descendants(org):
    client, ids, accounts = org
    units, accts = walk_organization(client)
    cfg = parse_config({**BASE, "organization": {"include_ous": ["Root/Workloads"], "exclude_ous": [ids["Deep"]]}})
    planned = {t.account_id for t in build_plan(units, accts, cfg).targets}
    assert planned == {accounts["prod-a"], accounts["dev-a"]}


def test_unknown_ou_is_a_clear_error(org):
    client, _, _ = org
    units, accts = walk_organization(client)
    cfg = parse_config({**BASE, "organization": {"include_ous": ["Root/Nope"]}})
    with pytest.raises(PlanError, match=r"organization.include_ous: OU 'Root/Nope' is not in the organization"):
        build_plan(units, accts, cfg)


def test_waves_take_most_specific_ou_and_star_takes_rest(org):
    client, _, accounts = org
    units, accts = walk_organization(client)
    cfg = parse_config(
        {
            **BASE,
            "waves": [
                {"name": "canary", "ous": ["Root/Workloads/NonProd"]},
                {"name": "prod", "ous": ["Root/Workloads"]},
                {"name": "deep", "ous": ["Root/Workloads/Prod/Deep"]},
                {"name": "rest", "ous": ["*"]},
            ],
        }
    )
    plan = build_plan(units, accts, cfg)
    by_wave = {w: {t.account_id for s in shards for t in s} for w, shards in plan.waves.items()}
    assert list(plan.waves) == ["canary", "prod", "deep", "rest"]  # config order is wave order
    assert by_wave["canary"] == {accounts["dev-a"]}
    assert by_wave["prod"] == {accounts["prod-a"]}
    assert by_wave["deep"] == {accounts["deep-a"]}
    assert accounts["infra-a"] in by_wave["rest"]


def test_walk_follows_empty_pages_with_next_token():
    """Organizations List* may return an empty page while a NextToken remains (docs/aws-behaviours.md §11)."""
    client = boto3.client("organizations", region_name="us-east-1")
    stub = Stubber(client)
    root = {"Id": "r-ab12", "Arn": "arn:aws:organizations::123456789012:root/o-abcdefghij/r-ab12", "Name": "Root"}
    acct = {"Id": "111111111111", "Name": "late", "State": "ACTIVE"}
    stub.add_response("list_roots", {"Roots": [root]})
    # Pages of the largest size the calls take (20), so a large organization costs the fewest calls.
    first, then = {"ParentId": "r-ab12", "MaxResults": 20}, {"ParentId": "r-ab12", "MaxResults": 20, "NextToken": "t1"}
    stub.add_response("list_accounts_for_parent", {"Accounts": [], "NextToken": "t1"}, first)
    stub.add_response("list_accounts_for_parent", {"Accounts": [acct]}, then)
    stub.add_response("list_organizational_units_for_parent", {"OrganizationalUnits": [], "NextToken": "t1"}, first)
    stub.add_response("list_organizational_units_for_parent", {"OrganizationalUnits": []}, then)
    with stub:
        _, accts = walk_organization(client)
    assert [a.id for a in accts] == ["111111111111"]
    stub.assert_no_pending_responses()
