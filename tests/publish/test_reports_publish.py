"""publish_reports / load_previous_snapshot / load_history against moto S3; delta and SLA aging over three runs."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import boto3
import pandas as pd
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from moto import mock_aws

from include.patch_compliance.aws import AwsContext
from include.patch_compliance.config import ReportsConfig
from include.patch_compliance.publish.reports import (
    build_and_publish,
    load_history,
    load_previous_snapshot,
    publish_reports,
)
from include.patch_compliance.storage import safe_run_id
from include.patch_compliance.transform import build_tables
from include.patch_compliance.transform.schema import PARTITION_COLUMN, RUN_TABLES
from include.patch_compliance.transform.staging import StagedRun
from include.patch_compliance.transform.summary import summarize
from include.patch_compliance.ui.summary_model import parse_summary
from tests.fixtures.raw.builders import (
    NOW,
    command_record,
    ec2_instance,
    instance_info,
    patch,
    patch_state,
    raw_doc,
    target,
    unreachable_doc,
)

BUCKET = "reports-bucket"
DAG = "patch_compliance_collect"
SLA = {"CRITICAL": 7, "HIGH": 14, "MEDIUM": 30, "LOW": 90, "INFORMATIONAL": 180, "UNSPECIFIED": 90}
A, B, C = "i-0000000000000000a", "i-0000000000000000b", "i-0000000000000000c"


@pytest.fixture
def s3():
    with mock_aws():
        ctx = AwsContext(session=boto3.Session(region_name="us-east-1"))
        ctx.client("s3").create_bucket(Bucket=BUCKET)
        yield ctx


def reports_cfg(**kw) -> ReportsConfig:
    return ReportsConfig(bucket=BUCKET, prefix="pc", **kw)


def day_docs(day: int) -> tuple[list[dict], list[dict]]:
    """Day 0: A misses kernel (Critical) + curl; B compliant. Day 8: A still misses kernel, curl fixed, B misses
    openssl. Day 16: A remediated; B still misses openssl; C appears non-compliant."""
    when = NOW + timedelta(days=day)
    scanned = when - timedelta(hours=1)
    info = [instance_info(A), instance_info(B)]
    if day == 0:
        states = [patch_state(A, scanned=scanned, missing=2, critical=1), patch_state(B, scanned=scanned)]
        patches = {A: [patch("kernel", severity="Critical"), patch("curl", severity="Low")]}
    elif day == 8:
        states = [patch_state(A, scanned=scanned, missing=1, critical=1), patch_state(B, scanned=scanned, missing=1)]
        patches = {A: [patch("kernel", severity="Critical")], B: [patch("openssl", severity="Important")]}
    else:
        info.append(instance_info(C))
        states = [
            patch_state(A, scanned=scanned),
            patch_state(B, scanned=scanned, missing=1),
            patch_state(C, scanned=scanned, missing=1),
        ]
        patches = {B: [patch("openssl", severity="Important")], C: [patch("zlib", severity="Medium")]}
    docs = [
        raw_doc(info=info, ec2=[ec2_instance(A)], states=states, patches=patches),
        unreachable_doc(target("222222222222", ou_id="ou-ab12-dev00001", ou_path="Root/Dev")),
    ]
    commands = [command_record(i, requested=when - timedelta(minutes=30)) for i in (A, B)]
    return docs, commands


def run(ctx, day: int, *, run_id: str | None = None, cfg: ReportsConfig | None = None):
    cfg = cfg or reports_cfg()
    when = NOW + timedelta(days=day)
    run_id = run_id or f"scheduled__{when.isoformat()}"
    docs, commands = day_docs(day)
    staged = StagedRun.from_docs(docs, commands, now=when, sla_days=SLA, stale_after_days=7)
    published = build_and_publish(
        ctx, cfg, staged, run_id=run_id, dag_id=DAG, now=when, sla_days=SLA, stale_after_days=7
    )
    return published.tables, published.written, published.previous


def get(ctx, uri: str) -> bytes:
    bucket, key = uri[5:].split("/", 1)
    return ctx.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()


def test_layout_sse_and_latest_pointers(s3):
    tables, uris, previous = run(s3, 0)
    assert previous is None
    safe = safe_run_id(f"scheduled__{NOW.isoformat()}")
    assert uris["nodes"] == f"s3://{BUCKET}/pc/nodes/snapshot_date=2026-11-29/run={safe}/part-0.parquet"
    assert uris["report.html"] == f"s3://{BUCKET}/pc/runs/{safe}/report.html"
    assert uris["latest"] == f"s3://{BUCKET}/pc/latest/summary.json"
    assert uris[f"latest/{DAG}"] == f"s3://{BUCKET}/pc/latest/{DAG}/summary.json"
    assert list(uris)[-2:] == [f"latest/{DAG}", "latest"]  # pointers written last
    client = s3.client("s3")
    for uri in uris.values():
        key = uri.split("/", 3)[3]
        assert client.head_object(Bucket=BUCKET, Key=key)["ServerSideEncryption"] == "AES256", key
    summary = json.loads(get(s3, uris["latest"]))
    assert summary == json.loads(get(s3, uris["summary.json"]))
    parse_summary(summary)  # the UI's reading of the contract
    assert summary["report_url"] == uris["report.html"]
    assert summary["tables"] == {name: uris[name] for name in RUN_TABLES}
    assert summary["totals"]["nodes"] == 2 and summary["totals"]["non_compliant"] == 1
    assert summary["totals"]["unreachable_targets"] == 1 and summary["totals"]["targets"] == 2
    assert summary["totals"]["coverage"]["UNREACHABLE"] == 1
    assert summary["totals"]["severity"]["CRITICAL"] == 1 and summary["totals"]["severity"]["LOW"] == 1
    assert [o["ou_path"] for o in summary["by_ou"]] == ["Root/Dev", "Root/Workloads/Prod"]
    assert summary["worst_accounts"][0]["account_id"] == "111111111111"
    assert summary["security_hub"] is None


@pytest.fixture
def emulated_s3_and_key():
    """The emulator rather than mock_aws: it records the KMS calls S3 makes as the caller under SSE-KMS, which
    the least-privilege check holds against deploy/iam/hub-role.yaml (tests/deploy)."""
    from sandbox.testing import running_sandbox

    with running_sandbox(profile="small", seed=7, time_scale=0) as sb:
        sb.client("s3").create_bucket(Bucket=BUCKET)
        key_arn = sb.client("kms").create_key()["KeyMetadata"]["Arn"]
        yield AwsContext(session=boto3.Session(region_name="us-east-1"), endpoint_url=sb.url), key_arn


def test_kms_key_when_configured(emulated_s3_and_key):
    ctx, key_arn = emulated_s3_and_key
    run(ctx, 0, cfg=reports_cfg(kms_key_id=key_arn))
    _, uris, previous = run(ctx, 8, cfg=reports_cfg(kms_key_id=key_arn))
    assert previous is not None and previous.run_id == f"scheduled__{NOW.isoformat()}"  # day 0 read back: Decrypt
    head = ctx.client("s3").head_object(Bucket=BUCKET, Key=uris["patches"].split("/", 3)[3])
    assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"] == key_arn


def test_republishing_the_same_run_is_byte_identical(s3):
    _, first, _ = run(s3, 0, run_id="manual__1")
    before = {name: get(s3, uri) for name, uri in first.items()}
    _, second, previous = run(s3, 0, run_id="manual__1")
    assert previous is None  # the run itself is excluded from "previous"
    assert first == second
    assert {name: get(s3, uri) for name, uri in second.items()} == before


@pytest.fixture
def moto_server():
    """moto as a server: pyarrow's own S3 client (C++) cannot see moto's in-process mock."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{server._server.server_port}"  # noqa: SLF001 - the bound free port
        ctx = AwsContext(session=boto3.Session(region_name="us-east-1"), endpoint_url=endpoint)
        ctx.client("s3").create_bucket(Bucket=BUCKET)
        yield ctx, endpoint
    finally:
        server.stop()


def test_pyarrow_reads_the_hive_dataset_from_s3_with_the_documented_schema(moto_server):
    import pyarrow as pa
    from pyarrow import fs

    ctx, endpoint = moto_server
    run(ctx, 0)
    run(ctx, 8)
    s3fs = fs.S3FileSystem(
        endpoint_override=endpoint,
        scheme="http",
        region="us-east-1",
        access_key="testing",
        secret_key="testing",
        session_token="testing",
    )
    partitioning = ds.partitioning(pa.schema([(PARTITION_COLUMN, pa.date32()), ("run", pa.string())]), flavor="hive")
    for name, table in RUN_TABLES.items():
        dataset = ds.dataset(f"{BUCKET}/pc/{name}", filesystem=s3fs, format="parquet", partitioning=partitioning)
        expected = pa.schema(
            [*table.arrow(with_partition=False), pa.field(PARTITION_COLUMN, pa.date32()), pa.field("run", pa.string())]
        )
        assert dataset.schema == expected, name
        frame = dataset.to_table().to_pandas()
        assert set(frame[PARTITION_COLUMN].astype(str)) <= {"2026-11-29", "2026-12-07"}, name
        if name == "nodes":
            assert len(frame) == 6 and frame.groupby(PARTITION_COLUMN).size().tolist() == [3, 3]
            runs = {safe_run_id(f"scheduled__{(NOW + timedelta(days=d)).isoformat()}") for d in (0, 8)}
            assert set(frame["run"]) == runs
            assert (frame["run_id"].map(safe_run_id) == frame["run"]).all()


def test_delta_and_sla_aging_across_three_runs(s3):
    first, _, _ = run(s3, 0)
    assert first["delta"].empty
    second, _, previous = run(s3, 8)
    assert previous is not None and previous.run_id == f"scheduled__{NOW.isoformat()}"
    delta = second["delta"]
    changes = sorted(zip(delta["change"], delta["instance_id"], delta["kb_id"].fillna("-"), strict=True))
    assert changes == [
        ("CLOSED_PATCH", A, "curl"),
        ("NEWLY_NON_COMPLIANT", B, "-"),
        ("NEW_MISSING_PATCH", B, "openssl"),
    ]
    assert set(delta["previous_run_id"]) == {previous.run_id}
    kernel = second["patches"].query("kb_id == 'kernel'").iloc[0]
    # first_seen carried from day 0's scan: 8 days old now, Critical SLA 7 days -> breached.
    assert kernel["first_seen"] == pd.Timestamp(NOW - timedelta(hours=1))
    assert kernel["age_days"] == 8 and bool(kernel["sla_breached"])
    openssl = second["patches"].query("kb_id == 'openssl'").iloc[0]
    assert openssl["age_days"] == 0 and not openssl["sla_breached"]

    third, uris, previous = run(s3, 16)
    assert previous.run_id == f"scheduled__{(NOW + timedelta(days=8)).isoformat()}"
    delta = third["delta"]
    changes = sorted(zip(delta["change"], delta["instance_id"], delta["kb_id"].fillna("-"), strict=True))
    assert changes == [
        ("CLOSED_PATCH", A, "kernel"),
        ("NEWLY_NON_COMPLIANT", C, "-"),
        ("NEW_MISSING_PATCH", C, "zlib"),
        ("REMEDIATED", A, "-"),
    ]
    openssl = third["patches"].query("kb_id == 'openssl'").iloc[0]
    assert openssl["age_days"] == 8 and openssl["sla_days"] == 14 and not openssl["sla_breached"]
    assert third["nodes"].query("instance_id == @B").iloc[0]["sla_breaches"] == 0
    summary = json.loads(get(s3, uris["latest"]))
    assert [p["snapshot_date"] for p in summary["trend"]] == ["2026-11-29", "2026-12-07", "2026-12-15"]
    assert [p["nodes"] for p in summary["trend"]] == [2, 2, 3]
    history = load_history(s3, reports_cfg(), DAG, limit=2)
    assert [h["snapshot_date"] for h in history] == ["2026-12-07", "2026-12-15"]


def test_report_html_has_charts_and_summary_figures(s3):
    run(s3, 0)
    _, uris, _ = run(s3, 8)
    html = get(s3, uris["report.html"]).decode()
    summary = json.loads(get(s3, uris["summary.json"]))
    # four charts, plus one for the top CVEs and one per configured tag when the run has them
    assert html.count("<svg") == 4 + bool(summary.get("top_cves")) + len(summary.get("by_tag") or {})
    for chart in ("chart-ou", "chart-severity", "chart-top-patches", "chart-trend"):
        assert f'id="{chart}"><svg' in html
    assert "http://" not in html.replace("http://www.w3.org/", "") and "https://" not in html  # self-contained
    totals = summary["totals"]
    assert f'id="nodes">Nodes<b>{totals["nodes"]}</b>' in html
    assert f'id="non-compliant">Non-compliant<b>{totals["non_compliant"]}</b>' in html
    assert f'id="compliant-pct">Compliant %<b>{totals["compliant_pct"]:.2f}</b>' in html
    assert f'id="sla-breaches">SLA breaches<b>{totals["sla_breaches"]}</b>' in html
    assert totals["sla_breaches"] == 1 and "kernel.x86_64" in html  # the SLA breach row
    for row in summary["worst_accounts"]:
        assert row["account_id"] in html


def test_nodes_csv(s3):
    tables, uris, _ = run(s3, 0)
    frame = pd.read_csv(io.BytesIO(get(s3, uris["nodes.csv"])), dtype=str)
    assert list(frame.columns) == RUN_TABLES["nodes"].names
    assert len(frame) == len(tables["nodes"])
    assert frame["last_scan_time"].dropna().str.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$").all()


def first_day_tables(docs, commands):
    """Tables of a first run (no previous snapshot), run id r1."""
    return build_tables(
        docs,
        commands,
        None,
        run_id="r1",
        dag_id=DAG,
        snapshot_date=NOW.date(),
        now=NOW,
        sla_days=SLA,
        stale_after_days=7,
    )


def test_publish_rejects_a_mismatched_summary(s3):
    docs, commands = day_docs(0)
    tables = first_day_tables(docs, commands)
    summary = summarize(tables, run_id="r2", dag_id=DAG, snapshot_date=NOW.date(), generated_at=NOW)
    with pytest.raises(ValueError, match="summary is for run 'r2'"):
        publish_reports(s3, reports_cfg(), tables, summary, run_id="r1", dag_id=DAG, snapshot_date=NOW.date())
    with pytest.raises(ValueError, match="missing"):
        publish_reports(
            s3, reports_cfg(), {"nodes": tables["nodes"]}, summary, run_id="r2", dag_id=DAG, snapshot_date=NOW.date()
        )


def test_fleet_daily_published_per_day_from_history(s3):
    from include.patch_compliance.publish.reports import publish_fleet_daily
    from include.patch_compliance.transform.schema import FLEET_DAILY
    from include.patch_compliance.transform.trends import fleet_daily

    run(s3, 0)
    run(s3, 8)
    frame = fleet_daily(load_history(s3, reports_cfg(), DAG))
    written = publish_fleet_daily(s3, reports_cfg(), frame)
    assert written == {
        day: f"s3://{BUCKET}/pc/fleet_daily/snapshot_date={day}/part-0.parquet" for day in ("2026-11-29", "2026-12-07")
    }
    body = get(s3, written["2026-12-07"])
    back = pq.read_table(io.BytesIO(body))
    assert back.schema == FLEET_DAILY.arrow(with_partition=False)
    rows = back.to_pylist()
    prod = [r for r in rows if r["ou_path"] == "Root/Workloads/Prod"][0]
    assert (prod["nodes"], prod["compliant"], prod["sla_breaches"]) == (2, 0, 1)
    assert publish_fleet_daily(s3, reports_cfg(), frame) == written and get(s3, written["2026-12-07"]) == body


def test_previous_snapshot_selection(s3):
    cfg = reports_cfg()
    assert load_previous_snapshot(s3, cfg, DAG) is None and load_history(s3, cfg, DAG) == []
    run(s3, 0, run_id="manual__b")
    run(s3, 8, run_id="manual__c")
    run(s3, 0, run_id="manual__a")  # published last, but for the earlier day: not the latest snapshot
    latest = load_previous_snapshot(s3, cfg, DAG)
    assert latest.run_id == "manual__c" and latest.snapshot_date.isoformat() == "2026-12-07"
    assert list(latest.nodes.columns) == RUN_TABLES["nodes"].names
    assert set(latest.nodes["snapshot_date"].astype(str)) == {"2026-12-07"}
    assert load_previous_snapshot(s3, cfg, DAG, exclude_run_id="manual__c").snapshot_date.isoformat() == "2026-11-29"
    before = load_previous_snapshot(s3, cfg, DAG, on_or_before=NOW.date())
    assert before.run_id in {"manual__a", "manual__b"}
    assert load_previous_snapshot(s3, cfg, "another_dag") is None
    # Entries of one day are ordered by generated_at, then run id: deterministic.
    assert [h["run_id"] for h in load_history(s3, cfg, DAG)] == ["manual__a", "manual__b", "manual__c"]


def test_a_failed_write_leaves_latest_untouched(s3, monkeypatch):
    """latest/ is written last: if anything before it fails, readers keep seeing the previous complete run."""
    from include.patch_compliance.publish import reports as reports_module
    from include.patch_compliance.storage import StorageError

    _, first, _ = run(s3, 0)
    before = get(s3, first["latest"])
    real_put = reports_module.put_bytes

    def failing_put(ctx, bucket, key, body, **kw):
        if "/history/" in key:
            raise StorageError(f"cannot write s3://{bucket}/{key}: AccessDenied")
        return real_put(ctx, bucket, key, body, **kw)

    monkeypatch.setattr(reports_module, "put_bytes", failing_put)
    with pytest.raises(StorageError, match="history"):
        run(s3, 8)
    assert get(s3, first["latest"]) == before
    assert get(s3, first[f"latest/{DAG}"]) == before


def test_report_html_escapes_names(s3):
    from include.patch_compliance.publish.report_html import render_html

    docs, commands = day_docs(0)
    docs[0]["target"]["account_name"] = "<script>alert(1)</script>"
    tables = first_day_tables(docs, commands)
    summary = summarize(tables, run_id="r1", dag_id=DAG, snapshot_date=NOW.date(), generated_at=NOW)
    html = render_html(summary, tables).decode()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_report_html_has_cve_and_tag_sections_human_labels_and_says_what_is_counted(s3):
    from include.patch_compliance import palette
    from include.patch_compliance.publish.report_html import render_html

    docs, commands = day_docs(0)
    tables = first_day_tables(docs, commands)
    summary = summarize(tables, run_id="r1", dag_id=DAG, snapshot_date=NOW.date(), generated_at=NOW)
    old = {k: v for k, v in summary.items() if k not in ("top_cves", "by_tag")}
    old["totals"] = {
        k: v for k, v in summary["totals"].items() if k not in ("managed", "unmanaged", "compliant_pct_of")
    }
    older = render_html(old, tables).decode()  # a summary of an older version, without the optional fields
    assert "No CVE is named" in older and "No tag rollups" in older
    assert "of " + palette.DEFAULT_PCT_OF in older
    summary["totals"].update(managed=40, unmanaged=2, compliant_pct_of="managed and unmanaged nodes")
    summary["top_cves"] = [
        {"cve_id": "CVE-2024-3094", "severity": "CRITICAL", "nodes": 7, "accounts": 2,
         "first_seen": "2026-10-01T00:00:00Z", "sla_breaches": 3, "kb_ids": ["xz-utils"], "titles": ["xz"]},
        {"cve_id": "CVE-2024-0001", "severity": "LOW", "nodes": 1, "accounts": 1,
         "first_seen": None, "sla_breaches": 0, "kb_ids": [], "titles": []},
    ]  # fmt: skip
    summary["by_tag"] = {
        "Team": [
            {"value": "payments", "nodes": 4, "compliant": 3, "non_compliant": 1, "unknown": 0, "compliant_pct": 75.0},
            {"value": None, "nodes": 2, "compliant": 0, "non_compliant": 1, "unknown": 1, "compliant_pct": 0.0},
        ]
    }
    html = render_html(summary, tables).decode()
    cves = html.split('id="cve-table"', 1)[1].split("</table>", 1)[0]
    assert cves.index("CVE-2024-3094") < cves.index("CVE-2024-0001") and ">Critical<" in cves and "xz-utils" in cves
    assert f"background:{palette.colour('CRITICAL')}" in cves
    assert 'id="chart-cves"><svg' in html and 'aria-label="Compliance by tag Team"' in html
    team = html.split('data-tag="Team"', 1)[1].split("</table>", 1)[0]
    assert "payments" in team and "(untagged)" in team and "75.00" in team
    assert "40 managed" in html and "2 unmanaged" in html and "of managed and unmanaged nodes" in html
    coverage = html.split('id="coverage"', 1)[1].split("</table>", 1)[0]
    assert "Scan failed" in coverage and "SCAN_FAILED" not in coverage
    assert html == render_html(summary, tables).decode()  # deterministic
