"""The cves table and summary.json top_cves; owner tags (EC2 and SSM), the tag_<key> columns and by_tag; the
totals' managed/unmanaged split. Both table paths (whole run and staged shards) give the same tables."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest

from include.patch_compliance.config import ConfigError, parse_config
from include.patch_compliance.naming import tag_column
from include.patch_compliance.publish.report_files import csv_bytes
from include.patch_compliance.transform import PreviousSnapshot, build_tables
from include.patch_compliance.transform.assemble import assemble_tables
from include.patch_compliance.transform.staging import StagedRun
from include.patch_compliance.transform.summary import summarize
from include.patch_compliance.transform.tags import nodes_table
from tests.fixtures.raw.builders import (
    NOW,
    ec2_instance,
    instance_info,
    patch,
    patch_state,
    raw_doc,
    target,
    unreachable_doc,
)

SLA = {"CRITICAL": 7, "HIGH": 14, "MEDIUM": 30, "LOW": 90, "INFORMATIONAL": 180, "UNSPECIFIED": 90}
PROD = target("111111111111")
DEV = target("333333333333", ou_id="ou-ab12-dev00001", ou_path="Root/Dev", account_name="dev")
I1, I2, I3, MI = "i-00000000000000001", "i-00000000000000002", "i-00000000000000003", "mi-0123456789abcdef0"
TAGS = ["Team", "Environment"]


def hybrid(instance_id: str) -> dict:
    return {**instance_info(instance_id), "ResourceType": "ManagedInstance", "SourceType": "AWS::SSM::ManagedInstance"}


def docs(when=NOW):
    tagged = {
        **ec2_instance(I1),
        "Tags": [{"Key": "Team", "Value": "payments"}, {"Key": "Environment", "Value": "prod"}],
    }
    return [
        raw_doc(
            PROD,
            info=[instance_info(I1), instance_info(I2)],
            ec2=[tagged, {**ec2_instance(I2), "Tags": []}, ec2_instance(I3)],  # I3: running, not managed
            states=[
                patch_state(I1, scanned=when, missing=2, critical=1),
                patch_state(I2, scanned=when - timedelta(days=1), missing=1),
            ],
            patches={
                I1: [
                    patch("kernel", severity="Critical", cves="CVE-2026-0001,CVE-2026-0002"),
                    patch("openssl", severity="Low", cves="CVE-2026-0002"),
                ],
                I2: [patch("openssl", severity="Low", cves="CVE-2026-0002")],
            },
        ),
        raw_doc(
            DEV,
            info=[hybrid(MI)],
            states=[patch_state(MI, scanned=when, missing=1)],
            patches={MI: [patch("zlib", severity="Moderate", cves=None)]},
            node_tags={MI: {"Team": "core", "Owner": "ops"}},
        ),
        unreachable_doc(target("444444444444", ou_id="ou-ab12-dev00001", ou_path="Root/Dev")),
    ]


def tables(when=NOW, previous=None, group_by_tags=TAGS):
    kwargs = dict(
        run_id="r1",
        dag_id="d",
        snapshot_date=when.date(),
        now=when,
        sla_days=SLA,
        stale_after_days=7,
        group_by_tags=group_by_tags,
    )
    built = build_tables(docs(when), [], previous, **kwargs)
    staged = StagedRun.from_docs(docs(when), [], now=when, sla_days=SLA, stale_after_days=7)
    assembled = assemble_tables(staged, previous, **kwargs)
    for name, frame in built.items():
        pd.testing.assert_frame_equal(assembled[name], frame, obj=name)
    return built


def test_cves_one_row_per_cve_with_exposure():
    cves = tables()["cves"]
    assert cves["cve_id"].tolist() == ["CVE-2026-0001", "CVE-2026-0002"]  # the zlib patch has no CVE
    first, second = (cves.iloc[i] for i in range(2))
    assert (first["severity"], first["nodes"], first["accounts"], first["patches"]) == ("CRITICAL", 1, 1, 1)
    # CVE-2026-0002: kernel (Critical) and openssl on I1, openssl on I2: 2 nodes, 3 patch rows, worst CRITICAL.
    assert (second["severity"], second["nodes"], second["accounts"], second["patches"]) == ("CRITICAL", 2, 1, 3)
    assert list(second["kb_ids"]) == ["kernel", "openssl"]
    assert list(second["titles"]) == ["kernel.x86_64", "openssl.x86_64"]
    assert list(second["ou_paths"]) == ["Root/Workloads/Prod"] and list(second["account_ids"]) == ["111111111111"]
    # Oldest first_seen: I2's scan a day earlier.
    assert second["first_seen"] == pd.Timestamp(NOW - timedelta(days=1)).tz_convert("UTC")
    assert second["sla_breaches"] == 0 and (cves["run_id"] == "r1").all()


def test_cves_carry_first_seen_and_sla_breaches_from_the_previous_snapshot():
    first = tables()
    later = NOW + timedelta(days=10)
    previous = PreviousSnapshot("r1", NOW.date(), first["nodes"], first["patches"])
    cves = tables(later, previous)["cves"].set_index("cve_id")
    # CVE-2026-0001 is on a Critical patch (7 days SLA) first seen 10 days ago: breached.
    assert cves.loc["CVE-2026-0001", "sla_breaches"] == 1
    assert cves.loc["CVE-2026-0001", "max_age_days"] == 10
    assert cves.loc["CVE-2026-0002", "sla_breaches"] == 1  # the kernel row; the Low openssl rows have 90 days


def test_top_cves_by_exposed_nodes():
    built = tables()
    summary = summarize(built, run_id="r1", dag_id="d", snapshot_date=NOW.date(), generated_at=NOW, top=1)
    (top,) = summary["top_cves"]
    assert top["cve_id"] == "CVE-2026-0002" and top["nodes"] == 2 and top["severity"] == "CRITICAL"
    assert top["first_seen"] == "2026-11-28T03:00:00Z" and top["kb_ids"] == ["kernel", "openssl"]
    assert set(top) == {
        "cve_id",
        "severity",
        "nodes",
        "accounts",
        "patches",
        "sla_breaches",
        "first_seen",
        "max_age_days",
        "kb_ids",
        "titles",
        "account_ids",
        "ou_paths",
    }


def test_tags_map_and_columns():
    nodes = tables()["nodes"].set_index("instance_id", drop=False)
    assert dict(nodes.loc[I1, "tags"]) == {"Environment": "prod", "Team": "payments"}  # sorted by key
    assert list(nodes.loc[I2, "tags"]) == []  # an instance without tags: empty map
    assert dict(nodes.loc[I3, "tags"]) == {"Team": "core"}  # unmanaged instances keep their EC2 tags
    assert dict(nodes.loc[MI, "tags"]) == {"Owner": "ops", "Team": "core"}  # the hybrid node's SSM tags
    assert nodes.loc[[I1, I2, I3, MI], "tag_team"].fillna("-").tolist() == ["payments", "-", "core", "core"]
    assert nodes.loc[[I1, I2, I3, MI], "tag_environment"].isna().tolist() == [False, True, True, True]
    unreachable = tables()["nodes"]
    assert unreachable.loc[unreachable["instance_id"].isna(), "tags"].isna().all()
    assert list(tables()["nodes"].columns)[-3:] == ["unrecognised", "tag_team", "tag_environment"]
    assert list(tables(group_by_tags=[])["nodes"].columns) == nodes_table().names


def test_by_tag_rollup_and_nodes_csv():
    built = tables()
    summary = summarize(built, run_id="r1", dag_id="d", snapshot_date=NOW.date(), generated_at=NOW, group_by_tags=TAGS)
    assert summary["by_tag"]["Team"] == [
        {"value": "core", "nodes": 2, "compliant": 0, "non_compliant": 1, "unknown": 1, "compliant_pct": 0.0},
        {"value": "payments", "nodes": 1, "compliant": 0, "non_compliant": 1, "unknown": 0, "compliant_pct": 0.0},
        {"value": None, "nodes": 1, "compliant": 0, "non_compliant": 1, "unknown": 0, "compliant_pct": 0.0},
    ]
    assert [r["value"] for r in summary["by_tag"]["Environment"]] == ["prod", None]
    assert sum(r["nodes"] for r in summary["by_tag"]["Environment"]) == summary["totals"]["nodes"]
    text = csv_bytes(built["nodes"]).decode()
    assert "Environment=prod;Team=payments" in text and text.splitlines()[0].endswith('"tag_team","tag_environment"')


def test_totals_split_managed_and_unmanaged():
    summary = summarize(tables(), run_id="r1", dag_id="d", snapshot_date=NOW.date(), generated_at=NOW)
    totals = summary["totals"]
    assert (totals["nodes"], totals["managed"], totals["unmanaged"]) == (4, 3, 1)
    assert totals["compliant_pct_of"] == "nodes" and totals["compliant_pct"] == 0.0


@pytest.mark.parametrize(
    ("key", "column"),
    [
        ("Team", "tag_team"),
        ("Cost Center", "tag_cost_center"),
        ("aws:cloudformation:stack-name", "tag_aws_cloudformation_stack_name"),
    ],
)
def test_tag_column_names(key, column):
    assert tag_column(key) == column


def test_group_by_tags_that_collide_are_refused():
    with pytest.raises(ConfigError, match="reports.group_by_tags.*'Cost Center' and 'cost-center'.*tag_cost_center"):
        parse_config(
            {
                "regions": ["us-east-1"],
                "reports": {"bucket": "reports-bucket", "group_by_tags": ["Cost Center", "cost-center"]},
            }
        )
    cfg = parse_config({"regions": ["us-east-1"], "reports": {"bucket": "reports-bucket"}})
    assert cfg.reports.group_by_tags == []
