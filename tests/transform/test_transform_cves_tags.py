"""The cves table and summary.json top_cves; owner tags (EC2 and SSM), the tag_<key> columns and by_tag; the
totals' managed/unmanaged split. Both table paths (whole run and staged shards) give the same tables."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from include.patch_compliance.config import ConfigError, parse_config
from include.patch_compliance.naming import tag_column
from include.patch_compliance.publish.report_files import csv_bytes
from include.patch_compliance.transform import PreviousSnapshot, build_tables
from include.patch_compliance.transform.assemble import assemble_tables
from include.patch_compliance.transform.cves import cve_rows
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


def dated_patches(rows: int, seed: int = 3) -> pd.DataFrame:
    """A shuffled dated patches frame with the columns ``cve_rows`` reads: many accounts, OUs, KBs and CVEs, some
    rows without CVE ids, an empty id, null KB ids and titles."""
    rng = np.random.default_rng(seed)
    pick = lambda values: rng.choice(np.asarray(values, dtype=object), rows)  # noqa: E731
    cve_lists = [
        None if n == 0 else [f"CVE-2026-{c:04d}" for c in rng.choice(400, n, replace=False)]
        for n in rng.integers(0, 4, rows)
    ]
    cve_lists[0] = ["", "CVE-2026-0001"]
    kb = pick([f"KB{i:05d}" for i in range(300)] + [None])
    frame = pd.DataFrame(
        {
            "account_id": pick([f"{100000000000 + i}" for i in range(250)]),
            "region": pick(["eu-west-1", "us-east-1"]),
            "instance_id": pick([f"i-{i:017x}" for i in range(2000)]),
            "ou_path": pick([f"Root/OU{i:02d}" for i in range(40)]),
            "kb_id": kb,
            "title": [None if k is None else f"{k}.x86_64" for k in kb],
            "severity": pick(["CRITICAL", "HIGH", "LOW", "UNSPECIFIED"]),
            "sla_breached": rng.random(rows) < 0.3,
            "first_seen": pd.Timestamp(NOW).tz_convert("UTC") - pd.to_timedelta(rng.integers(0, 90, rows), unit="D"),
            "age_days": rng.integers(0, 90, rows),
        }
    )
    frame["cve_ids"] = pd.Series(cve_lists, dtype=pd.ArrowDtype(pa.list_(pa.string())))
    for name in ("account_id", "region", "instance_id", "ou_path", "kb_id", "title", "severity"):
        frame[name] = frame[name].astype(pd.ArrowDtype(pa.string()))
    return frame


def test_cves_at_scale_equal_a_plain_pandas_rollup_with_sorted_distinct_lists():
    """Tens of thousands of shuffled rows span many Arrow batches: every list is sorted and distinct (a hash
    aggregate's "distinct" keeps first-seen order per batch, which is not sorted), counts are exact."""
    patches = dated_patches(60_000)
    got = cve_rows(patches).set_index("cve_id")
    exploded = patches.assign(
        cve_id=pd.Series(patches["cve_ids"].tolist(), index=patches.index).map(
            lambda v: list(v) if isinstance(v, list) else []
        )
    ).explode("cve_id")
    exploded = exploded[exploded["cve_id"].notna() & (exploded["cve_id"] != "")]
    groups = exploded.groupby("cve_id")
    assert list(got.index) == sorted(groups.groups) and "" not in got.index
    node = exploded["account_id"] + "/" + exploded["region"] + "/" + exploded["instance_id"]
    assert got["nodes"].to_dict() == node.groupby(exploded["cve_id"]).nunique().to_dict()
    assert got["accounts"].to_dict() == groups["account_id"].nunique().to_dict()
    assert got["patches"].to_dict() == groups.size().to_dict()
    assert got["sla_breaches"].to_dict() == groups["sla_breached"].sum().to_dict()
    assert got["max_age_days"].to_dict() == groups["age_days"].max().to_dict()
    assert got["first_seen"].to_dict() == groups["first_seen"].min().to_dict()
    for name, column in (
        ("account_ids", "account_id"),
        ("ou_paths", "ou_path"),
        ("kb_ids", "kb_id"),
        ("titles", "title"),
    ):
        expected = groups[column].agg(lambda v: sorted(set(v.dropna())))
        assert {cve: list(values) for cve, values in got[name].items()} == expected.to_dict(), name


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
