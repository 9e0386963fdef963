"""The pure parts of remediation: run-param filters, node selection with reasons, the canary-first plan, the change
window, the rescan decision, the remediation table's result column, and the config section."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pandas as pd
import pytest

from include.patch_compliance.config import CanaryConfig, ChangeWindowConfig, ConfigError, WaveConfig
from include.patch_compliance.discover.plan import Plan
from include.patch_compliance.remediate.plan import RemediationPlan, canary_size, config_wave, plan_remediation
from include.patch_compliance.remediate.select import Filters, SelectionError, select_nodes
from include.patch_compliance.remediate.verify import remediation_rows, rescan_candidates, result_of
from include.patch_compliance.remediate.window import window_state
from include.patch_compliance.transform.schema import NODES, PATCHES, REMEDIATION, conform
from include.patch_compliance.vocab import CANARY_WAVE
from tests.orchestration.conftest import fleet_config

RUN = {"run_id": "scan-1", "dag_id": "patch_compliance_scan", "snapshot_date": date(2026, 11, 29)}
A, B = "111111111111", "222222222222"


OU_IDS = {"Root/Workloads/Prod": "ou-ab12-prod0001", "Root/Workloads/Prod/Payments": "ou-ab12-paym0001"}


def node(iid, account=A, region="eu-west-1", ou="Root/Workloads/Prod", **values):
    row = dict.fromkeys(NODES.names)
    ou_id = OU_IDS.get(ou, "ou-ab12-othr0001")
    row.update(RUN, ou_id=ou_id, ou_path=ou, account_id=account, account_name="a", region=region)
    row.update(instance_id=iid, compliance_status="NON_COMPLIANT", coverage_status="SCANNED", wave="rest")
    row.update(missing_count=2, failed_count=0, installed_pending_reboot_count=0, installed_rejected_count=0)
    row.update(highest_missing_severity="HIGH", sla_breaches=0, installed_count=10)
    row.update(values)
    return row


def patch(iid, account=A, region="eu-west-1", **values):
    row = dict.fromkeys(PATCHES.names)
    row.update(RUN, account_id=account, region=region, instance_id=iid, kb_id="KB1", title="t", state="MISSING")
    row.update(severity="HIGH", classification="Security", cve_ids=[], sla_breached=False)
    row.update(values)
    return row


def frames(nodes, patches=()):
    return conform(pd.DataFrame(nodes), NODES), conform(pd.DataFrame(list(patches), columns=PATCHES.names), PATCHES)


def reasons(selection):
    ids = [None if pd.isna(i) else i for i in selection.left_out["instance_id"]]
    return dict(zip(ids, selection.left_out["reason"], strict=True))


def chosen(selection):
    return list(selection.selected["instance_id"])


def test_reasons_are_recorded_in_order_and_the_rest_is_most_urgent_first():
    nodes, patches = frames(
        [
            node("i-compliant", compliance_status="COMPLIANT", missing_count=0),
            node("i-unknown", compliance_status="UNKNOWN"),
            node("i-offline", coverage_status="OFFLINE"),
            node("i-unmanaged", coverage_status="UNMANAGED"),
            node("i-rejected", missing_count=0, installed_rejected_count=2),
            node("i-pending", missing_count=0, installed_pending_reboot_count=3),
            node("i-medium", highest_missing_severity="MEDIUM", missing_count=9),
            node("i-critical", highest_missing_severity="CRITICAL", missing_count=1),
            node("i-high-breach", sla_breaches=2),
            node("i-high", failed_count=1),
            {**node(None), "coverage_status": "UNREACHABLE", "compliance_status": "UNKNOWN"},
        ]
    )
    no_reboot = select_nodes(nodes, patches, Filters(), "NoReboot")
    assert chosen(no_reboot) == ["i-critical", "i-high-breach", "i-high", "i-medium"]
    assert reasons(no_reboot) == {
        "i-compliant": "COMPLIANT",
        "i-unknown": "UNKNOWN",
        "i-offline": "OFFLINE",
        "i-unmanaged": "UNMANAGED",
        "i-rejected": "NOTHING_TO_INSTALL",
        "i-pending": "NOTHING_TO_INSTALL",  # NoReboot would leave it pending
        None: "NOT_A_NODE",
    }
    assert no_reboot.counts()["NOTHING_TO_INSTALL"] == 2
    # RebootIfNeeded reboots pending-reboot nodes, so they are worth an Install (docs/aws-behaviours.md §29)
    reboot = select_nodes(nodes, patches, Filters(), "RebootIfNeeded")
    assert "i-pending" in chosen(reboot) and reasons(reboot)["i-rejected"] == "NOTHING_TO_INSTALL"
    capped = select_nodes(nodes, patches, Filters(max_nodes=2), "NoReboot")
    assert chosen(capped) == ["i-critical", "i-high-breach"]
    assert reasons(capped)["i-high"] == reasons(capped)["i-medium"] == "MAX_NODES"


def test_scope_filters_ous_by_path_or_id_accounts_regions():
    nodes, patches = frames(
        [
            node("i-prod", ou="Root/Workloads/Prod"),
            node("i-prod-child", ou="Root/Workloads/Prod/Payments"),
            node("i-prodlike", ou="Root/Workloads/Production"),
            node("i-other-account", account=B, ou="Root/Workloads/Prod"),
            node("i-us", region="us-east-1", ou="Root/Workloads/Prod"),
        ]
    )
    by_path = select_nodes(nodes, patches, Filters(ou_ids=("Root/Workloads/Prod",)), "NoReboot")
    assert set(chosen(by_path)) == {"i-prod", "i-prod-child", "i-other-account", "i-us"}
    assert reasons(by_path) == {"i-prodlike": "OU"}  # a path prefix is not a parent
    by_id = select_nodes(nodes, patches, Filters(ou_ids=("ou-ab12-prod0001",)), "NoReboot")
    assert set(chosen(by_id)) == set(chosen(by_path))  # an id is resolved to its path: descendants included
    with pytest.raises(SelectionError, match="param ou_ids: 'ou-zz99-unknown01'.*name it by path"):
        select_nodes(nodes, patches, Filters(ou_ids=("ou-zz99-unknown01",)), "NoReboot")
    narrowed = select_nodes(nodes, patches, Filters(accounts=(A,), regions=("eu-west-1",)), "NoReboot")
    assert reasons(narrowed)["i-other-account"] == "ACCOUNT" and reasons(narrowed)["i-us"] == "REGION"


def test_patch_filters_need_one_installable_patch_matching_all_of_them():
    nodes, patches = frames(
        [node("i-1"), node("i-2"), node("i-3")],
        [
            patch("i-1", severity="CRITICAL", classification="SecurityUpdates", cve_ids=["CVE-2026-1111"]),
            patch("i-2", severity="LOW", classification="Security", cve_ids=["CVE-2026-2222"]),
            patch("i-2", kb_id="KB2", severity="HIGH", classification="Bugfix"),
            # a rejected package never installs, so it does not make the node match
            patch("i-3", severity="CRITICAL", state="INSTALLED_REJECTED", cve_ids=["CVE-2026-1111"]),
        ],
    )
    high = select_nodes(nodes, patches, Filters(min_severity="HIGH"), "NoReboot")
    assert set(chosen(high)) == {"i-1", "i-2"} and reasons(high)["i-3"] == "PATCH_FILTER"
    security_high = select_nodes(
        nodes, patches, Filters(min_severity="HIGH", classifications=("security",)), "NoReboot"
    )
    assert chosen(security_high) == []  # i-2's HIGH patch is a Bugfix, its Security patch is LOW
    cve = select_nodes(nodes, patches, Filters(cve_ids=("CVE-2026-1111",)), "NoReboot")
    assert chosen(cve) == ["i-1"]


def test_tag_filters_need_tags_in_the_report():
    nodes, patches = frames([node("i-1")])
    untagged = nodes.drop(columns="tags")  # a report published before the nodes table had tags
    with pytest.raises(SelectionError, match="param tags: the report's nodes table has no tags column"):
        select_nodes(untagged, patches, Filters(tags={"Patch": ("true",)}), "NoReboot")
    tagged = nodes.astype(object).assign(
        instance_id=["i-1"], tags=[[("Patch", "true"), ("Env", "prod")]]
    )  # an Arrow map column reads back as (key, value) pairs
    extra = pd.concat([tagged, tagged.assign(instance_id="i-2", tags=[{"Patch": "false"}])], ignore_index=True)
    picked = select_nodes(extra, patches, Filters(tags={"Patch": ("true",), "Env": ()}), "NoReboot")
    assert chosen(picked) == ["i-1"] and reasons(picked) == {"i-2": "TAGS"}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"ou_ids": "Root/Prod"}, "param ou_ids='Root/Prod': give a list of strings"),
        ({"accounts": ["12345"]}, r"param accounts: \['12345'\] do not match"),
        ({"min_severity": "SEVERE"}, "param min_severity='SEVERE': use one of CRITICAL"),
        ({"max_nodes": 0}, "param max_nodes=0: give a whole number >= 1"),
        ({"cve_ids": ["CVE-26-1"]}, "param cve_ids"),
        ({"tags": {"Patch": "true"}}, "param tags="),
    ],
)
def test_bad_params_name_the_param(params, message):
    with pytest.raises(SelectionError, match=message):
        Filters.from_params(params)


def test_filters_from_params_defaults_and_dedupes():
    filters = Filters.from_params({"regions": ["eu-west-1", "eu-west-1"], "ou_ids": None, "max_nodes": 5})
    assert filters.regions == ("eu-west-1",) and filters.ou_ids == () and filters.max_nodes == 5
    assert Filters.from_params({}).as_dict()["tags"] == {}


WAVES = [WaveConfig(name="nonprod", ous=["Root/Workloads/NonProd"]), WaveConfig(name="rest", ous=["*"])]


def selected(n, wave, account=A, region="eu-west-1"):
    return [
        {"ou_id": "ou-ab12-x0000001", "ou_path": f"Root/{wave}", "account_id": account, "account_name": "a",
         "region": region, "instance_id": f"i-{wave}-{i:03d}", "wave": wave}
        for i in range(n)
    ]  # fmt: skip


def test_canary_first_from_the_earliest_wave_then_the_config_waves():
    rows = selected(3, "rest") + selected(2, "nonprod") + selected(1, "renamed", account=B)
    plan = plan_remediation(rows, WAVES, CanaryConfig(nodes=3), shard_size=1)
    assert list(plan.waves) == [CANARY_WAVE, "nonprod", "rest"]
    canary = plan.instance_ids[CANARY_WAVE]
    # the two nonprod nodes first (the wave the config trusts least), then the first of "rest" by OU path, which
    # now holds the node of a wave renamed since the scan
    assert sorted(i for ids in canary.values() for i in ids) == ["i-nonprod-000", "i-nonprod-001", "i-renamed-000"]
    assert plan.nodes("nonprod") == 0 and plan.nodes("rest") == 3
    assert config_wave("renamed", WAVES) == "rest" and config_wave("nonprod", WAVES) == "nonprod"
    assert all(len(shard) == 1 for shards in plan.waves.values() for shard in shards)  # shard_size account-regions
    assert {t.wave for t in plan.waves["rest"][0]} == {"rest"}
    stored = json.loads(json.dumps(plan.as_dict(), sort_keys=True))  # as staging stores it (storage.dumps_json_gz)
    again = RemediationPlan.from_dict(stored)
    assert again.instance_ids == plan.instance_ids and again.waves == plan.waves
    assert list(again.waves) == [CANARY_WAVE, "nonprod", "rest"]  # the wave order survives sorted keys
    # the fleet plan reads the same object (the scan machinery's shard refs and labels)
    refs = Plan.from_dict(plan.as_dict()).shard_refs()
    assert [r["targets"] for r in refs[CANARY_WAVE]] == [1, 1]


def test_canary_size():
    assert canary_size(CanaryConfig(nodes=5), 3) == 3
    assert canary_size(CanaryConfig(percent=10), 25) == 3  # rounded up
    assert canary_size(CanaryConfig(percent=1), 5) == 1  # at least one node
    assert canary_size(CanaryConfig(percent=100), 4) == 4
    assert canary_size(CanaryConfig(nodes=2), 0) == 0


def test_change_window_opens_at_the_cron_for_its_duration():
    window = ChangeWindowConfig(start="0 22 * * 6", duration_minutes=240)  # Saturdays 22:00-02:00 UTC
    at = lambda *a: datetime(*a, tzinfo=UTC)  # noqa: E731
    assert window_state(window, at(2026, 12, 5, 22, 0)).is_open  # the opening minute counts
    assert window_state(window, at(2026, 12, 6, 1, 59)).is_open
    closed = window_state(window, at(2026, 12, 6, 2, 0))
    assert not closed.is_open and closed.next_open == at(2026, 12, 12, 22, 0)
    assert "closed; it opens next at 2026-12-12 22:00 UTC" in closed.describe()
    with pytest.raises(ValueError, match="timezone-aware"):
        window_state(window, datetime(2026, 12, 5, 22, 0))


def test_rescan_only_finished_installs_whose_state_predates_them():
    k = lambda i: (A, "eu-west-1", i)  # noqa: E731
    inv = {"requested_at": "2026-11-30T22:00:00Z", "status_details": "Success"}
    invocations = {
        k("i-fresh"): inv,
        k("i-old"): {**inv, "status_details": "Failed"},
        k("i-none"): inv,
        k("i-undeliverable"): {**inv, "status_details": "Undeliverable"},
        k("i-running"): {**inv, "status_details": "In Progress"},
    }
    states = {
        k("i-fresh"): {"OperationEndTime": datetime(2026, 11, 30, 22, 30, tzinfo=UTC)},
        k("i-old"): {"OperationEndTime": "2026-11-29T03:00:00+00:00"},
        k("i-undeliverable"): {"OperationEndTime": datetime(2026, 11, 1, tzinfo=UTC)},
        k("i-running"): {"OperationEndTime": datetime(2026, 11, 1, tzinfo=UTC)},
    }
    picked = {n["instance_id"]: n["reason"] for n in rescan_candidates(invocations, states)}
    assert set(picked) == {"i-old", "i-none"}
    assert "older than the Install" in picked["i-old"] and picked["i-none"] == "no patch state after the Install"


def test_result_of_the_verified_state():
    counts = {"missing": 0, "failed": 0, "pending_reboot": 0, "rejected": 0}
    assert result_of("COMPLIANT", counts) == "REMEDIATED"
    assert result_of("NON_COMPLIANT", {**counts, "pending_reboot": 2, "rejected": 1}) == "PENDING_REBOOT"
    assert result_of("NON_COMPLIANT", {**counts, "rejected": 1}) == "REJECTED_REMAINS"
    assert result_of("NON_COMPLIANT", {**counts, "missing": 1, "pending_reboot": 2}) == "NOT_REMEDIATED"
    assert result_of("UNKNOWN", counts) == result_of(None, counts) == "UNKNOWN"


def test_remediation_rows_for_held_and_unsent_nodes_conform_to_the_schema():
    before = [node(i) for i in ("i-held", "i-gone", "i-ok")]
    after = conform(
        pd.DataFrame([node("i-ok", compliance_status="COMPLIANT", missing_count=0, installed_count=12)]), NODES
    )
    installs = {(A, "eu-west-1", "i-ok"): {"command_id": "c-1", "status": "Success", "status_details": "Success"}}
    rows = remediation_rows(
        before,
        after,
        installs,
        wave_of={(A, "eu-west-1", "i-held"): "rest", (A, "eu-west-1", "i-gone"): CANARY_WAVE},
        held={"rest": "wave 'rest' held: ..."},
        not_sent={(A, "eu-west-1", "i-gone"): "not sent: not a managed node when its wave started"},
        rescanned=set(),
        source_run_id="scan-1",
        reboot_option="NoReboot",
    )
    table = conform(
        rows.assign(run_id="rem-1", dag_id="patch_compliance_remediate", snapshot_date=date(2026, 11, 30)), REMEDIATION
    )
    by_id = table.set_index("instance_id")
    assert by_id.loc["i-held", "result"] == "HELD" and by_id.loc["i-held", "outcome"] == "HELD"
    assert by_id.loc["i-gone", "result"] == "NOT_SENT" and "not a managed node" in by_id.loc["i-gone", "error"]
    assert by_id.loc["i-ok", "result"] == "REMEDIATED" and by_id.loc["i-ok", "patches_installed"] == 2
    assert by_id.loc["i-ok", "missing_before"] == 2 and by_id.loc["i-ok", "missing_after"] == 0
    assert pd.isna(by_id.loc["i-held", "missing_after"])  # not collected after: unknown, not zero
    empty = remediation_rows([], after, {}, wave_of={}, held={}, not_sent={}, rescanned=set(), source_run_id="s",
                             reboot_option="NoReboot")  # fmt: skip
    assert conform(empty.assign(run_id="r", dag_id="d", snapshot_date=date(2026, 11, 30)), REMEDIATION).empty


@pytest.mark.parametrize(
    ("remediation", "extra", "message"),
    [
        ({"canary": {"nodes": 2, "percent": 10}}, {}, "give exactly one of canary.nodes"),
        ({"canary": {}}, {}, "give exactly one of canary.nodes"),
        ({"enabled": "yes"}, {}, r"remediation\.enabled: 'yes' is not allowed"),
        ({"max_failure_ratio": 1.5}, {}, "remediation.max_failure_ratio"),
        ({"change_window": {"start": "@daily", "duration_minutes": 60}}, {}, "a preset has no fixed time"),
        ({"change_window": {"start": "0 22 * * 6"}}, {}, "remediation.change_window.duration_minutes"),
        ({"enabled": True}, {"waves": [{"name": "canary_nodes", "ous": ["*"]}]}, "remediation DAG's own waves"),
        ({"schedule": "0 3 * * *"}, {}, "remediation.schedule '0 3 \\* \\* \\*' and orchestration.schedule"),
    ],
)
def test_remediation_config_errors_name_the_field(remediation, extra, message):
    with pytest.raises(ConfigError, match=message):
        fleet_config(remediation={"enabled": True, **remediation} if "enabled" not in remediation else remediation,
                     **extra)  # fmt: skip


def test_remediation_is_off_by_default_and_reserved_names_only_matter_when_on():
    assert fleet_config().remediation.enabled is False
    assert fleet_config(waves=[{"name": "rescan", "ous": ["*"]}]).remediation.enabled is False
