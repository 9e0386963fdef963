"""build_tables: nodes coverage/compliance, patches dedupe, rollups, commands, compliance items, schema."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest

from include.patch_compliance.transform import RawDataError, build_tables
from include.patch_compliance.transform.schema import RUN_TABLES
from tests.fixtures.raw.builders import (
    NOW,
    command_record,
    compliance_item,
    ec2_instance,
    instance_info,
    patch,
    patch_state,
    raw_doc,
    target,
    unreachable_doc,
)

SLA = {"CRITICAL": 7, "HIGH": 14, "MEDIUM": 30, "LOW": 90, "INFORMATIONAL": 180, "UNSPECIFIED": 90}
I = {n: f"i-{n:017x}" for n in range(1, 20)}  # noqa: E741


def build(docs, commands=(), previous=None, now=NOW, **kw):
    return build_tables(
        list(docs),
        list(commands),
        previous,
        run_id=kw.get("run_id", "r1"),
        dag_id="patch_compliance_collect",
        snapshot_date=now.date(),
        now=now,
        sla_days=SLA,
        stale_after_days=7,
    )


def fleet_docs() -> tuple[list[dict], list[dict]]:
    """Raw documents and command records covering every coverage status and API quirk the tables handle."""
    docs = [
        raw_doc(
            info=[
                instance_info(I[1]),  # scanned, non-compliant
                instance_info(I[2]),  # scanned, compliant
                instance_info(I[3], ping="ConnectionLost"),  # offline (ping), has old data
                instance_info(I[4]),  # undeliverable this run -> offline
                instance_info(I[5]),  # invocation failed -> scan failed
                instance_info(I[6]),  # never scanned
                instance_info(I[7]),  # stale
                instance_info(I[8]),  # execution timed out -> scan failed
            ],
            ec2=[
                ec2_instance(I[1], name="web-1"),
                ec2_instance(I[9], name="rogue"),
                ec2_instance(I[10], state="stopped"),
            ],
            states=[
                patch_state(I[1], missing=3, failed=1, critical=1, security=2),
                patch_state(I[2]),
                patch_state(I[3], missing=1),
                patch_state(I[4]),
                patch_state(I[5]),
                patch_state(I[7], scanned=NOW - timedelta(days=8)),
                patch_state(I[8], pending_reboot=1),
            ],
            patches={
                I[1]: [
                    patch("kernel", severity="Critical"),
                    patch("kernel", severity="Critical", state="MISSING"),  # exact duplicate: dedupe
                    patch("kernel", title="kernel.i686", severity="Critical"),  # same KBId, other Title: kept
                    patch("openssl", state="Failed", severity="Important", cves=""),
                    patch("openssl", state="Missing", severity="Important", cves=""),  # duplicate, Failed wins
                    patch("curl", severity="Moderate", cves=None),
                    patch("bash", state="Installed", installed="2026-10-01T00:00:00+00:00"),
                    patch("KB1", state="InstalledOther", severity="", classification=""),
                    patch("KB2", state="NotApplicable", severity="", classification=""),
                ],
                I[8]: [
                    patch(
                        "glibc", state="InstalledPendingReboot", severity="Low", installed="2026-11-28T00:00:00+00:00"
                    )
                ],
            },
            items={
                I[1]: [
                    compliance_item(I[1], "kernel"),
                    compliance_item(
                        I[1], "assoc-1", compliance_type="Association", status="COMPLIANT", severity="UNSPECIFIED"
                    ),
                    compliance_item(I[1], "KB2", status="", patch_state="NotApplicable"),
                ]
            },
        ),
        unreachable_doc(target("222222222222", account_name="prod-b")),
    ]
    commands = [
        command_record(I[1]),
        command_record(I[2]),
        command_record(I[4], status="Failed", details="Undeliverable"),
        command_record(I[5], status="Failed", details="Failed"),
        command_record(I[5], status="Success", details="Success", requested=NOW - timedelta(hours=5)),  # older
        command_record(I[8], status="TimedOut", details="Execution Timed Out"),
        command_record(
            None,
            tgt=target("222222222222", account_name="prod-b"),
            status="",
            details="",
            error="AccessDenied: sts:AssumeRole",
        ),
    ]
    return docs, commands


@pytest.fixture(scope="module")
def fleet():
    return build(*fleet_docs())


def node(tables, instance_id):
    nodes = tables["nodes"]
    rows = nodes[nodes["instance_id"] == instance_id]
    assert len(rows) == 1, instance_id
    return rows.iloc[0]


def test_every_table_has_the_schema_dtypes(fleet):
    assert set(fleet) == set(RUN_TABLES)
    for name, frame in fleet.items():
        assert list(frame.columns) == RUN_TABLES[name].names, name
        assert {c: str(t) for c, t in frame.dtypes.items()} == {
            c: str(t) for c, t in RUN_TABLES[name].dtypes().items()
        }, name


@pytest.mark.parametrize(
    ("n", "coverage", "compliance"),
    [
        (1, "SCANNED", "NON_COMPLIANT"),
        (2, "SCANNED", "COMPLIANT"),
        (3, "OFFLINE", "NON_COMPLIANT"),  # ConnectionLost outranks the (non-compliant) old data
        (4, "OFFLINE", "COMPLIANT"),  # this run's invocation Undeliverable
        (5, "SCAN_FAILED", "COMPLIANT"),  # latest invocation Failed, the older Success is ignored
        (6, "NOT_SCANNED", "UNKNOWN"),
        (7, "STALE", "COMPLIANT"),  # 8 days > stale_after_days 7
        (8, "SCAN_FAILED", "NON_COMPLIANT"),  # Execution Timed Out; pending reboot (docs/aws-behaviours.md §8)
        (9, "UNMANAGED", "UNKNOWN"),  # running EC2 not in DescribeInstanceInformation
    ],
)
def test_coverage_and_compliance(fleet, n, coverage, compliance):
    row = node(fleet, I[n])
    assert (row["coverage_status"], row["compliance_status"]) == (coverage, compliance)


def test_stopped_ec2_instance_is_not_a_node_aws_behaviours_9(fleet):
    assert I[10] not in set(fleet["nodes"]["instance_id"].dropna())


def test_unreachable_target_is_one_row_with_null_instance(fleet):
    nodes = fleet["nodes"]
    down = nodes[nodes["coverage_status"] == "UNREACHABLE"]
    assert len(down) == 1
    row = down.iloc[0]
    assert pd.isna(row["instance_id"]) and row["account_id"] == "222222222222"
    assert row["target_error"] == "AccessDenied" and row["compliance_status"] == "UNKNOWN"


def test_node_details(fleet):
    row = node(fleet, I[1])
    assert row["instance_name"] == f"{I[1]}.ec2.internal"  # ComputerName first, then EC2 Name tag
    assert node(fleet, I[9])["instance_name"] == "rogue"
    assert row["critical_non_compliant_count"] == 1 and row["missing_count"] == 3 and row["failed_count"] == 1
    assert row["highest_missing_severity"] == "CRITICAL"
    assert row["non_compliant_patches"] == 4
    assert row["scan_age_days"] == 0
    assert row["invocation_status"] == "Success" and row["command_id"].startswith("c0ffee")
    assert node(fleet, I[7])["scan_age_days"] == 8
    assert node(fleet, I[2])["non_compliant_patches"] == 0  # known zero
    assert pd.isna(node(fleet, I[6])["non_compliant_patches"])  # unknown
    assert node(fleet, I[5])["invocation_status_details"] == "Failed"


def test_patches_dedupe_and_normalise_aws_behaviours_7(fleet):
    patches = fleet["patches"]
    mine = patches[patches["instance_id"] == I[1]]
    keys = sorted(zip(mine["kb_id"], mine["title"], mine["state"], strict=True))
    assert keys == [
        ("curl", "curl.x86_64", "MISSING"),
        ("kernel", "kernel.i686", "MISSING"),
        ("kernel", "kernel.x86_64", "MISSING"),
        ("openssl", "openssl.x86_64", "FAILED"),
    ]
    kernel = mine[mine["title"] == "kernel.x86_64"].iloc[0]
    assert list(kernel["cve_ids"]) == ["CVE-2026-0001", "CVE-2026-0002"]
    assert kernel["severity"] == "CRITICAL" and kernel["vendor_severity"] == "Critical"
    assert pd.isna(kernel["installed_time"])  # epoch 0 for Missing
    assert list(mine[mine["kb_id"] == "curl"].iloc[0]["cve_ids"]) == []
    assert mine[mine["kb_id"] == "openssl"].iloc[0]["severity"] == "HIGH"
    glibc = patches[patches["instance_id"] == I[8]].iloc[0]
    assert glibc["state"] == "INSTALLED_PENDING_REBOOT" and glibc["installed_time"].day == 28
    assert set(patches["state"]) <= {"MISSING", "FAILED", "INSTALLED_PENDING_REBOOT", "INSTALLED_REJECTED"}


def test_first_run_patch_is_dated_by_its_scan(fleet):
    kernel = fleet["patches"].query("title == 'kernel.x86_64'").iloc[0]
    assert kernel["first_seen"] == pd.Timestamp(NOW - timedelta(hours=1))
    assert kernel["sla_days"] == 7 and kernel["age_days"] == 0 and not kernel["sla_breached"]
    assert kernel["sla_due"] == kernel["first_seen"] + pd.Timedelta(days=7)


def test_accounts_rollup(fleet):
    accounts = fleet["accounts"].set_index("account_id")
    prod = accounts.loc["111111111111"]
    assert prod["nodes"] == 9
    assert (prod["compliant"], prod["non_compliant"], prod["unknown"]) == (4, 3, 2)
    assert prod["compliant_pct"] == pytest.approx(44.44)
    assert prod["coverage_scanned"] == 2 and prod["coverage_offline"] == 2 and prod["coverage_scan_failed"] == 2
    assert prod["coverage_not_scanned"] == 1 and prod["coverage_stale"] == 1 and prod["coverage_unmanaged"] == 1
    assert (prod["missing_critical"], prod["missing_high"], prod["missing_medium"], prod["missing_low"]) == (2, 1, 1, 1)
    assert prod["unreachable_targets"] == 0
    down = accounts.loc["222222222222"]
    assert down["nodes"] == 0 and down["unreachable_targets"] == 1 and pd.isna(down["compliant_pct"])


def test_commands_outcomes(fleet):
    commands = fleet["commands"]
    assert len(commands) == 7
    outcomes = dict(zip(commands["instance_id"].fillna("-"), commands["outcome"], strict=False))
    assert outcomes[I[4]] == "UNDELIVERABLE"
    assert outcomes[I[8]] == "EXECUTION_TIMED_OUT"
    assert outcomes["-"] == "NOT_SENT"
    assert set(commands.loc[commands["instance_id"] == I[5], "outcome"]) == {"FAILED", "SUCCESS"}


def test_compliance_items(fleet):
    items = fleet["compliance_items"]
    assert sorted(items["compliance_type"]) == ["Association", "Patch", "Patch"]
    patch_item = items[items["item_id"] == "kernel"].iloc[0]
    assert patch_item["patch_state"] == "MISSING" and list(patch_item["cve_ids"]) == ["CVE-2026-0001"]
    assert patch_item["status"] == "NON_COMPLIANT" and patch_item["classification"] == "Security"
    assert pd.isna(patch_item["installed_time"])  # '' in Details
    na_item = items[items["item_id"] == "KB2"].iloc[0]
    # Status '' (docs/aws-behaviours.md §10)
    assert pd.isna(na_item["status"]) and na_item["patch_state"] == "NOT_APPLICABLE"
    assoc = items[items["compliance_type"] == "Association"].iloc[0]
    assert pd.isna(assoc["patch_state"]) and assoc["execution_type"] == "Command"


def test_same_input_same_output(fleet):
    again = build(
        [
            raw_doc(
                info=[instance_info(I[1])],
                states=[patch_state(I[1], missing=1)],
                patches={I[1]: [patch("a"), patch("b")]},
            )
        ]
    )
    twice = build(
        [
            raw_doc(
                info=[instance_info(I[1])],
                states=[patch_state(I[1], missing=1)],
                patches={I[1]: [patch("b"), patch("a")]},
            )
        ]
    )
    for name in again:
        pd.testing.assert_frame_equal(again[name], twice[name])


def test_empty_input_gives_empty_tables_with_schema():
    tables = build([])
    for name, frame in tables.items():
        assert frame.empty and list(frame.columns) == RUN_TABLES[name].names


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"status": "OK"}, r"raw_docs\[0\]\.target is missing"),
        ({"target": {**target(), "account_id": ""}, "status": "OK"}, r"raw_docs\[0\]\.target\.account_id"),
        ({"target": target(), "status": "BROKEN"}, r"raw_docs\[0\]\.status must be one of OK, UNREACHABLE"),
        ({**raw_doc(), "patch_states": {"x": 1}}, r"raw_docs\[0\]\.patch_states must be a list"),
        ({**raw_doc(), "patches": {I[1]: [{"KBId": "x", "State": 5, "Title": {}}]}}, r"patches\[0\]\.Title"),
    ],
)
def test_bad_raw_documents_name_the_field(doc, message):
    with pytest.raises(RawDataError, match=message):
        build([doc])


def test_bad_arguments_name_the_field():
    with pytest.raises(ValueError, match="sla_days needs"):
        build_tables(
            [],
            [],
            None,
            run_id="r",
            dag_id="d",
            snapshot_date=date(2026, 1, 1),
            now=NOW,
            sla_days={"CRITICAL": 7},
            stale_after_days=7,
        )
    with pytest.raises(ValueError, match="timezone-aware"):
        build_tables(
            [],
            [],
            None,
            run_id="r",
            dag_id="d",
            snapshot_date=date(2026, 1, 1),
            now=NOW.replace(tzinfo=None),
            sla_days=SLA,
            stale_after_days=7,
        )
    with pytest.raises(RawDataError, match=r"command_records\[0\]\.account_id"):
        build([], [{"region": "eu-west-1"}])


def test_numeric_epoch_times_take_the_slow_path():
    doc = raw_doc(
        info=[instance_info(I[1])],
        states=[patch_state(I[1], missing=1)],
        patches={I[1]: [{**patch("a"), "InstalledTime": 0.0}, {**patch("b"), "InstalledTime": 1.7e9}]},
    )
    patches = build([doc])["patches"].set_index("kb_id")
    assert pd.isna(patches.loc["a", "installed_time"])
    assert patches.loc["b", "installed_time"].year == 2023


def test_a_target_collected_twice_counts_once():
    """A retried collect shard can carry the same account-region twice: the OK, latest document wins."""
    older = raw_doc(info=[instance_info(I[1])], states=[patch_state(I[1], missing=1)])
    newer = {
        **raw_doc(info=[instance_info(I[1]), instance_info(I[2])], states=[patch_state(I[1])]),
        "collected_at": (NOW + timedelta(minutes=5)).isoformat(),
    }
    tables = build([newer, unreachable_doc(), older])
    nodes = tables["nodes"]
    assert sorted(nodes["instance_id"]) == [I[1], I[2]]
    assert node(tables, I[1])["compliance_status"] == "COMPLIANT"
    assert len(tables["accounts"]) == 1
