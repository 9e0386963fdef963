"""summarize (summary.json contract) and fleet_daily."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest

from include.patch_compliance.transform import build_tables
from include.patch_compliance.transform.schema import FLEET_DAILY
from include.patch_compliance.transform.summary import history_entry, summarize
from include.patch_compliance.transform.trends import fleet_daily
from include.patch_compliance.ui.summary_model import parse_summary
from tests.fixtures.raw.builders import (
    NOW,
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
SUMMARY_KEYS = [
    "run_id",
    "dag_id",
    "snapshot_date",
    "generated_at",
    "report_url",
    "totals",
    "by_ou",
    "worst_accounts",
    "top_cves",
    "by_tag",
    "trend",
    "unreachable",
    "skipped",
    "unrecognised",
    "security_hub",
    "tables",
]
TOTAL_KEYS = [
    "nodes",
    "managed",
    "unmanaged",
    "compliant_pct_of",
    "compliant",
    "non_compliant",
    "unknown",
    "compliant_pct",
    "unreachable_targets",
    "targets",
    "sla_breaches",
    "coverage",
    "severity",
]


def tables_for(run_id: str, day: int, compliant_dev: bool = True):
    when = NOW + timedelta(days=day)
    docs = [
        raw_doc(
            PROD,
            info=[instance_info("i-00000000000000001"), instance_info("i-00000000000000002")],
            states=[
                patch_state("i-00000000000000001", scanned=when, missing=1, critical=1),
                patch_state("i-00000000000000002", scanned=when),
            ],
            patches={"i-00000000000000001": [patch("kernel", severity="Critical")]},
        ),
        raw_doc(
            DEV,
            info=[instance_info("i-00000000000000003")],
            states=[patch_state("i-00000000000000003", scanned=when, missing=0 if compliant_dev else 1)],
            patches={} if compliant_dev else {"i-00000000000000003": [patch("zlib", severity="Low")]},
        ),
        unreachable_doc(target("444444444444", ou_id="ou-ab12-dev00001", ou_path="Root/Dev")),
    ]
    return build_tables(
        docs, [], None, run_id=run_id, dag_id="d", snapshot_date=when.date(), now=when, sla_days=SLA, stale_after_days=7
    )


def test_summary_shape_and_figures():
    tables = tables_for("r1", 0)
    summary = summarize(tables, run_id="r1", dag_id="d", snapshot_date=NOW.date(), generated_at=NOW)
    assert list(summary) == SUMMARY_KEYS
    assert list(summary["totals"]) == TOTAL_KEYS
    parse_summary(summary)
    t = summary["totals"]
    assert (t["nodes"], t["compliant"], t["non_compliant"], t["unknown"]) == (3, 2, 1, 0)
    assert t["compliant_pct"] == pytest.approx(66.67)
    assert (t["targets"], t["unreachable_targets"]) == (3, 1)
    assert t["coverage"] == {
        "UNREACHABLE": 1,
        "UNMANAGED": 0,
        "OFFLINE": 0,
        "SCAN_FAILED": 0,
        "NOT_SCANNED": 0,
        "STALE": 0,
        "SCANNED": 3,
    }
    assert t["severity"]["CRITICAL"] == 1 and sum(t["severity"].values()) == 1
    assert summary["generated_at"] == "2026-11-29T03:00:00Z"
    assert summary["by_ou"] == [
        {
            "ou_id": "ou-ab12-dev00001",
            "ou_path": "Root/Dev",
            "nodes": 1,
            "compliant": 1,
            "non_compliant": 0,
            "compliant_pct": 100.0,
        },
        {
            "ou_id": "ou-ab12-prod0001",
            "ou_path": "Root/Workloads/Prod",
            "nodes": 2,
            "compliant": 1,
            "non_compliant": 1,
            "compliant_pct": 50.0,
        },
    ]
    worst = summary["worst_accounts"]
    assert [w["account_id"] for w in worst] == ["111111111111", "333333333333"]  # no-node account left out
    assert worst[0] == {
        "account_id": "111111111111",
        "account_name": "prod-a",
        "ou_path": "Root/Workloads/Prod",
        "region": "eu-west-1",
        "nodes": 2,
        "non_compliant": 1,
        "compliant_pct": 50.0,
    }
    assert summary["trend"] == [{"run_id": "r1", "snapshot_date": "2026-11-29", "nodes": 3, "compliant_pct": 66.67}]
    assert summary["unreachable"] == [
        {
            "account_id": "444444444444",
            "account_name": "prod-a",
            "ou_path": "Root/Dev",
            "region": "eu-west-1",
            "wave": "workloads",
            "stage": "assume_role",
            "error_code": "AccessDenied",
        }
    ]
    assert summary["skipped"] == [] and summary["unrecognised"] == {}


def test_trend_merges_history_drops_rerun_and_caps():
    history = [
        {
            "run_id": f"old{n}",
            "dag_id": "d",
            "snapshot_date": f"2026-11-{10 + n:02d}",
            "generated_at": "x",
            "nodes": n,
            "compliant_pct": 10.0 * n,
        }
        for n in range(5)
    ]
    history.append({"run_id": "r1", "dag_id": "d", "snapshot_date": "2026-11-29", "nodes": 99, "compliant_pct": 1.0})
    history.append(
        {"run_id": "other", "dag_id": "other_dag", "snapshot_date": "2026-11-20", "nodes": 1, "compliant_pct": 1.0}
    )
    summary = summarize(
        tables_for("r1", 0),
        run_id="r1",
        dag_id="d",
        snapshot_date=NOW.date(),
        generated_at=NOW,
        history=history,
        trend_runs=3,
    )
    assert [p["run_id"] for p in summary["trend"]] == ["old3", "old4", "r1"]
    assert summary["trend"][-1]["nodes"] == 3  # this run's figures, not the stale history entry's


def test_fleet_daily_from_history_entries_last_run_of_day_wins():
    entries = []
    for run_id, day, ok in (("a", 0, False), ("b", 0, True), ("c", 1, True)):
        tables = tables_for(run_id, day, compliant_dev=ok)
        summary = summarize(
            tables,
            run_id=run_id,
            dag_id="d",
            snapshot_date=(NOW + timedelta(days=day)).date(),
            generated_at=NOW + timedelta(days=day, hours={"a": 0, "b": 1, "c": 0}[run_id]),
        )
        entries.append(history_entry(summary, tables))
    frame = fleet_daily(list(reversed(entries)))
    assert list(frame.columns) == FLEET_DAILY.names
    assert list(zip(frame["snapshot_date"].astype(str), frame["ou_path"], frame["run_id"], strict=True)) == [
        ("2026-11-29", "Root/Dev", "b"),
        ("2026-11-29", "Root/Workloads/Prod", "b"),
        ("2026-11-30", "Root/Dev", "c"),
        ("2026-11-30", "Root/Workloads/Prod", "c"),
    ]
    dev = frame.iloc[0]
    assert (dev["nodes"], dev["compliant"], dev["compliant_pct"], dev["sla_breaches"]) == (1, 1, 100.0, 0)


def test_fleet_daily_from_nodes_tables_and_from_summaries_without_sla():
    day0 = tables_for("a", 0)["nodes"]
    day0b = tables_for("b", 0, compliant_dev=False)["nodes"]
    frame = fleet_daily([day0, day0b])
    assert set(frame["run_id"]) == {"b"}
    dev = frame[frame["ou_path"] == "Root/Dev"].iloc[0]
    assert (dev["nodes"], dev["compliant"], dev["compliant_pct"]) == (1, 0, 0.0)
    summary = summarize(tables_for("a", 0), run_id="a", dag_id="d", snapshot_date=NOW.date(), generated_at=NOW)
    from_summary = fleet_daily([summary])
    assert from_summary["sla_breaches"].isna().all() and len(from_summary) == 2


def test_fleet_daily_empty_and_mixed_input():
    assert fleet_daily([]).empty and list(fleet_daily([]).columns) == FLEET_DAILY.names
    with pytest.raises(TypeError, match="not a mix"):
        fleet_daily([{"run_id": "x"}, pd.DataFrame()])
    assert date(2026, 11, 29) == NOW.date()
