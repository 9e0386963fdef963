"""A published run as the publish step writes it (summary.json contract in docs/architecture.md), plus helpers to
put it in S3 at ``<prefix>/latest/summary.json`` and ``<prefix>/runs/<safe_run_id>/``."""

from __future__ import annotations

import copy
import json
from typing import Any

from include.patch_compliance.storage import safe_run_id

BUCKET = "pc-reports-test"
PREFIX = "patch-compliance"
LATEST_RUN = "scheduled__2026-11-29T03:00:00+00:00"

_TREND = [
    ("scheduled__2026-11-22T03:00:00+00:00", "2026-11-22", 1180, 71.2),
    ("scheduled__2026-11-23T03:00:00+00:00", "2026-11-23", 1184, 72.9),
    ("scheduled__2026-11-24T03:00:00+00:00", "2026-11-24", 1190, 70.4),
    ("manual__2026-11-25T10:12:00+00:00", "2026-11-25", 1191, 74.8),
    ("scheduled__2026-11-26T03:00:00+00:00", "2026-11-26", 1201, 77.3),
    ("scheduled__2026-11-27T03:00:00+00:00", "2026-11-27", 1203, 79.0),
    ("scheduled__2026-11-28T03:00:00+00:00", "2026-11-28", 1206, 80.6),
    (LATEST_RUN, "2026-11-29", 1212, 82.5),
]


def make_summary() -> dict[str, Any]:
    """1212 nodes; the figures add up as the producer's do: compliant + non_compliant + unknown == nodes, OUs sum
    to the totals, coverage sums to nodes + unreachable targets (one UNREACHABLE row per target)."""
    run = safe_run_id(LATEST_RUN)
    return {
        "run_id": LATEST_RUN,
        "dag_id": "patch_compliance_scan",
        "snapshot_date": "2026-11-29",
        "generated_at": "2026-11-29T03:41:07Z",
        "report_url": f"s3://{BUCKET}/{PREFIX}/runs/{run}/report.html",
        "totals": {
            "nodes": 1212,
            "compliant": 1000,
            "non_compliant": 164,
            "unknown": 48,
            "compliant_pct": 82.5,
            "unreachable_targets": 3,
            "targets": 96,
            "sla_breaches": 57,
            "coverage": {
                "SCANNED": 1134,
                "STALE": 22,
                "NOT_SCANNED": 14,
                "OFFLINE": 9,
                "SCAN_FAILED": 5,
                "UNMANAGED": 28,
                "UNREACHABLE": 3,
            },
            "severity": {"CRITICAL": 21, "HIGH": 58, "MEDIUM": 61, "LOW": 19, "UNSPECIFIED": 5},
        },
        "by_ou": [
            {
                "ou_id": "ou-ab12-prod0001",
                "ou_path": "Root/Workloads/Prod",
                "nodes": 520,
                "compliant": 473,
                "non_compliant": 39,
                "compliant_pct": 90.96,
            },
            {
                "ou_id": "ou-ab12-stag0001",
                "ou_path": "Root/Workloads/Staging",
                "nodes": 310,
                "compliant": 251,
                "non_compliant": 47,
                "compliant_pct": 80.97,
            },
            {
                "ou_id": "ou-ab12-dev00001",
                "ou_path": "Root/Workloads/Dev",
                "nodes": 240,
                "compliant": 171,
                "non_compliant": 55,
                "compliant_pct": 71.25,
            },
            {
                "ou_id": "ou-ab12-sbx00001",
                "ou_path": "Root/Sandbox",
                "nodes": 92,
                "compliant": 65,
                "non_compliant": 16,
                "compliant_pct": 70.65,
            },
            {
                "ou_id": "ou-ab12-sec00001",
                "ou_path": "Root/Security",
                "nodes": 50,
                "compliant": 40,
                "non_compliant": 7,
                "compliant_pct": 80.0,
            },
        ],
        "worst_accounts": [
            {
                "account_id": "210987654321",
                "account_name": "dev-analytics",
                "ou_path": "Root/Workloads/Dev",
                "region": "eu-west-1",
                "nodes": 64,
                "non_compliant": 29,
                "compliant_pct": 48.44,
            },
            {
                "account_id": "333344445555",
                "account_name": "sandbox-ml",
                "ou_path": "Root/Sandbox",
                "region": "us-east-1",
                "nodes": 31,
                "non_compliant": 12,
                "compliant_pct": 58.06,
            },
            {
                "account_id": "444455556666",
                "account_name": "staging-web",
                "ou_path": "Root/Workloads/Staging",
                "region": "eu-west-1",
                "nodes": 88,
                "non_compliant": 24,
                "compliant_pct": 69.32,
            },
            {
                "account_id": "555566667777",
                "account_name": "prod-payments",
                "ou_path": "Root/Workloads/Prod",
                "region": "eu-central-1",
                "nodes": 140,
                "non_compliant": 18,
                "compliant_pct": 85.71,
            },
        ],
        "trend": [{"run_id": r, "snapshot_date": d, "nodes": n, "compliant_pct": p} for r, d, n, p in _TREND],
        "security_hub": {"created": 37, "updated": 127, "resolved": 12, "failed": 0},
        "tables": {"nodes": f"s3://{BUCKET}/{PREFIX}/nodes/snapshot_date=2026-11-29/run={run}/part-0.parquet"},
    }


def report_html(run_id: str) -> bytes:
    return f"<!doctype html><html><body><h1>Full report</h1><p id='run'>{run_id}</p></body></html>".encode()


def publish(s3: Any, summary: dict[str, Any], *, bucket: str = BUCKET, prefix: str = PREFIX) -> None:
    """Write each trend run's report and the latest pointer (last, as the publish step does)."""
    summary = copy.deepcopy(summary)
    for row in summary["trend"]:
        key = f"{prefix}/runs/{safe_run_id(row['run_id'])}/report.html"
        s3.put_object(Bucket=bucket, Key=key, Body=report_html(row["run_id"]), ContentType="text/html")
    body = json.dumps(summary).encode()
    s3.put_object(Bucket=bucket, Key=f"{prefix}/runs/{safe_run_id(summary['run_id'])}/summary.json", Body=body)
    s3.put_object(Bucket=bucket, Key=f"{prefix}/latest/summary.json", Body=body, ContentType="application/json")
