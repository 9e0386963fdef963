import pytest

from include.patch_compliance.config import parse_config
from include.patch_compliance.discover.org import Account, OrgUnit
from include.patch_compliance.discover.plan import MAX_MAP_LENGTH, PlanError, build_plan

REGIONS = ["us-east-1", "eu-west-1", "eu-central-1", "ap-southeast-2"]


def fleet(n_accounts: int):
    units = [OrgUnit("r-ab12", "Root", "Root", None), OrgUnit("ou-ab12-11111111", "Prod", "Root/Prod", "r-ab12")]
    accounts = [Account(f"{i:012d}", f"acct-{i}", "ACTIVE", "ou-ab12-11111111", "Root/Prod") for i in range(n_accounts)]
    return units, accounts


def test_1500_accounts_by_4_regions_stay_under_max_map_length():
    units, accounts = fleet(1500)
    cfg = parse_config(
        {"regions": REGIONS, "reports": {"bucket": "reports-bucket"}, "orchestration": {"shard_size": 25}}
    )
    plan = build_plan(units, accounts, cfg)
    shards = plan.waves["all"]
    assert len(plan.targets) == 6000
    assert len(shards) == 240 < MAX_MAP_LENGTH
    assert all(len(s) <= 25 for s in shards)
    # every account-region exactly once
    assert len({(t.account_id, t.region) for t in plan.targets}) == 6000
    refs = plan.shard_refs()["all"]
    assert refs[0]["label"].startswith("Prod / ") and refs[0]["targets"] == 25


def test_too_many_shards_names_the_fix():
    units, accounts = fleet(1500)
    cfg = parse_config(
        {"regions": REGIONS, "reports": {"bucket": "reports-bucket"}, "orchestration": {"shard_size": 5}}
    )
    with pytest.raises(PlanError, match="set orchestration.shard_size to at least 6"):
        build_plan(units, accounts, cfg)


def test_plan_round_trips_through_json_dict():
    units, accounts = fleet(3)
    cfg = parse_config({"regions": REGIONS[:2], "reports": {"bucket": "reports-bucket"}})
    plan = build_plan(units, accounts, cfg)
    from include.patch_compliance.discover.plan import Plan

    assert Plan.from_dict(plan.as_dict()) == plan
