"""Every docs/queries/*.sql runs: transpiled from Athena's dialect to DuckDB's with sqlglot (one copy of each
query), over the Hive-partitioned Parquet the emulator's S3 holds after two scan-DAG runs a week apart (the
emulator's own config, sandbox/fleet-config.yaml, as `make demo` runs it), copied to a local folder; each result
is checked against the runs' summary.json and tables. What this cannot prove about Athena: docs/queries/README.md."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import sqlglot
import yaml

from include.patch_compliance import run_staging, steps
from include.patch_compliance.aws import context_from_connection
from include.patch_compliance.config import parse_config
from include.patch_compliance.publish.report_files import run_key
from include.patch_compliance.runtime import RunContext
from include.patch_compliance.scan.command import ScanRequest, run_tag, scan_record
from include.patch_compliance.storage import get_bytes, list_keys
from include.patch_compliance.transform.schema import RUN_TABLES

ROOT = Path(__file__).resolve().parents[2]
QUERIES = ROOT / "docs" / "queries"
BUCKET = "pc-bi-queries"
PREFIX = "pc"
DAG = "patch_compliance_scan"


def config():
    data = yaml.safe_load((ROOT / "sandbox" / "fleet-config.yaml").read_text())
    data["reports"] = {**data["reports"], "bucket": BUCKET, "prefix": PREFIX}
    data["thresholds"] = {"max_unreachable_ratio": 1.0, "max_securityhub_error_ratio": 1.0}
    data.pop("alerts", None)
    return parse_config(data)


def publish(run: RunContext) -> dict:
    plan = steps.plan_fleet(run)
    for refs in plan["waves"].values():
        for ref in refs:
            steps.collect_shard(run, ref)
    steps.report(run)
    return json.loads(get_bytes(run.hub, BUCKET, run_key(PREFIX, run.run_id, "summary.json")))


@pytest.fixture(scope="module")
def dataset(sandbox, tmp_path_factory):
    """Two published runs 7 days apart; between them one account-region's non-compliant nodes are patched and
    rescanned, so the second run's delta has REMEDIATED rows. Returns (DuckDB connection, summaries, delta)."""
    sandbox.client("s3").create_bucket(Bucket=BUCKET)
    cfg, hub, now = config(), context_from_connection(None), datetime.now(UTC)
    first = RunContext(cfg=cfg, dag_id=DAG, run_id="bi-week-1", hub=hub, run_after=now - timedelta(days=7))
    before = publish(first)
    nodes = pd.read_csv(io.BytesIO(get_bytes(hub, BUCKET, run_key(PREFIX, first.run_id, "nodes.csv"))))
    bad = nodes[(nodes["compliance_status"] == "NON_COMPLIANT") & (nodes["ping_status"] == "Online")]
    account, region = bad.iloc[0]["account_id"], bad.iloc[0]["region"]
    for instance_id in bad[(bad["account_id"] == account) & (bad["region"] == region)]["instance_id"]:
        sandbox.admin("remediate", account_id=str(account), region=region, instance_id=instance_id)
    target = next(t for t in run_staging.load_plan(first).targets if (t.account_id, t.region) == (str(account), region))
    request = ScanRequest("Scan", "bi-rescan", run_tag(DAG, "bi-rescan"), cfg.scan)
    assert scan_record(first.members.get, target, request, now - timedelta(hours=1))["status"] == "SENT"
    sandbox.admin("advance", seconds=3600)
    second = RunContext(cfg=cfg, dag_id=DAG, run_id="bi-week-2", hub=hub, run_after=now)
    after = publish(second)

    local = tmp_path_factory.mktemp("s3-copy")
    for key in list_keys(hub, BUCKET, PREFIX + "/"):
        if key.endswith(".parquet") and key.split("/")[1] in RUN_TABLES:
            path = local / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(get_bytes(hub, BUCKET, key))
    con = duckdb.connect()
    for table in RUN_TABLES:
        # Partition values as strings, as Athena's partition projection gives them (ATHENA_PARTITION_TYPE).
        con.execute(
            f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{local}/{PREFIX}/{table}/*/*/*.parquet', "
            "hive_partitioning = true, hive_types_autocast = false)"
        )
    return con, before, after


def run_query(con, name: str) -> pd.DataFrame:
    athena_sql = (QUERIES / name).read_text()
    (duck_sql,) = sqlglot.transpile(athena_sql, read="athena", write="duckdb")
    return con.execute(duck_sql).df()


def test_there_are_at_least_eight_queries_and_each_parses_as_athena_sql():
    files = sorted(QUERIES.glob("*.sql"))
    assert len(files) >= 8
    for path in files:
        (statement,) = sqlglot.parse(path.read_text(), read="athena")
        assert statement.key == "select", path.name
        assert path.read_text().startswith("-- "), f"{path.name}: start with a comment saying what it answers"
        assert f"`{path.name}`" in (QUERIES / "README.md").read_text(), f"{path.name} is not listed in the README"


def test_non_compliant_by_ou_matches_the_summary(dataset):
    con, _, after = dataset
    got = run_query(con, "01_non_compliant_by_ou.sql")
    expected = [
        {k: o[k] for k in ("ou_path", "nodes", "compliant", "non_compliant", "compliant_pct")} for o in after["by_ou"]
    ]
    assert got.to_dict("records") == expected


def test_non_compliant_by_tag_matches_the_summary(dataset):
    con, _, after = dataset
    got = run_query(con, "02_non_compliant_by_tag.sql").rename(columns={"team": "value"})
    got["value"] = got["value"].astype(object).where(got["value"].notna(), None)
    assert got.to_dict("records") == after["by_tag"]["Team"]
    assert len(after["by_tag"]["Team"]) >= 2


def test_cve_exposure_matches_top_cves(dataset):
    con, _, after = dataset
    got = run_query(con, "03_cve_exposure.sql")
    top = after["top_cves"]
    assert len(top) == 10
    assert got["cve_id"].tolist() == [c["cve_id"] for c in top]
    assert got["nodes"].tolist() == [c["nodes"] for c in top]
    assert got["severity"].tolist() == [c["severity"] for c in top]


def test_nodes_exposed_to_a_cve_match_the_cves_table(dataset):
    con, _, after = dataset
    got = run_query(con, "04_nodes_exposed_to_a_cve.sql")
    per_cve = got.groupby("cve_id").size().to_dict()
    for cve in after["top_cves"]:
        assert per_cve[cve["cve_id"]] == cve["nodes"]
        rows = got[got["cve_id"] == cve["cve_id"]]
        assert int(rows["sla_breaches"].sum()) == cve["sla_breaches"]
        assert set(rows["account_id"]) == set(cve["account_ids"])


def test_sla_breaches_by_age_add_up_to_the_total(dataset):
    con, _, after = dataset
    got = run_query(con, "05_sla_breaches_by_age.sql")
    assert int(got["breaches"].sum()) == after["totals"]["sla_breaches"] > 0
    assert set(got["age"]) <= {"0-7 days", "8-30 days", "31-90 days", "over 90 days"}


def test_nodes_not_reporting_match_the_coverage_counts(dataset):
    con, _, after = dataset
    got = run_query(con, "06_nodes_not_reporting.sql")
    coverage = after["totals"]["coverage"]
    statuses = ("UNMANAGED", "OFFLINE", "SCAN_FAILED", "NOT_SCANNED", "STALE")
    assert got["coverage_status"].value_counts().to_dict() == {s: coverage[s] for s in statuses if coverage[s]}
    assert len(got) > 0


def test_week_over_week_trend_matches_both_runs(dataset):
    con, before, after = dataset
    got = run_query(con, "07_week_over_week_trend.sql")
    assert got["snapshot_date"].tolist() == [before["snapshot_date"], after["snapshot_date"]]
    assert got["nodes"].tolist() == [before["totals"]["nodes"], after["totals"]["nodes"]]
    assert got["compliant_pct"].tolist() == [before["totals"]["compliant_pct"], after["totals"]["compliant_pct"]]
    assert pd.isna(got.loc[0, "compliant_pct_week_before"])
    assert got.loc[1, "compliant_pct_week_before"] == before["totals"]["compliant_pct"]
    assert got.loc[1, "change_pct_points"] == pytest.approx(
        after["totals"]["compliant_pct"] - before["totals"]["compliant_pct"]
    )
    assert [p["compliant_pct"] for p in after["trend"]] == got["compliant_pct"].tolist()


def test_remediation_rate_matches_the_delta(dataset):
    con, before, after = dataset
    got = run_query(con, "08_remediation_rate.sql")
    (row,) = got.to_dict("records")  # the first run has no delta
    delta = con.execute("SELECT change, count(*) AS n FROM delta WHERE run_id = 'bi-week-2' GROUP BY change").df()
    counts = dict(zip(delta["change"], delta["n"], strict=True))
    assert row["run_id"] == "bi-week-2" and row["previous_run_id"] == "bi-week-1"
    assert row["non_compliant_before"] == before["totals"]["non_compliant"]
    assert row["remediated"] == counts["REMEDIATED"] > 0
    assert row["newly_non_compliant"] == counts.get("NEWLY_NON_COMPLIANT", 0)
    assert row["remediation_rate_pct"] == round(100 * row["remediated"] / row["non_compliant_before"], 2)
    assert (
        after["totals"]["non_compliant"]
        == before["totals"]["non_compliant"] - row["remediated"] + row["newly_non_compliant"]
    )


def test_unreachable_targets_match_the_summary(dataset):
    con, _, after = dataset
    got = run_query(con, "09_unreachable_targets.sql")
    expected = [
        {k: u[k] for k in ("account_id", "account_name", "ou_path", "region", "stage", "error_code")}
        for u in after["unreachable"]
    ]
    assert got.where(got.notna(), None).to_dict("records") == expected and expected
