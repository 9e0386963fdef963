"""A run published by the real producer (StagedRun.from_docs -> build_and_publish) with enough nodes to page,
missing patches naming CVEs, an unmanaged EC2 instance and an unreachable account-region; plus
``add_tag_columns``, which rewrites its nodes table with ``tag_<key>`` columns (the data side's contract for
``reports.group_by_tags``) until the producer writes them itself."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from include.patch_compliance.aws import AwsContext
from include.patch_compliance.config import ReportsConfig
from include.patch_compliance.publish.reports import build_and_publish
from include.patch_compliance.transform.staging import StagedRun
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
from tests.ui.summary_fixture import BUCKET, PREFIX

DAG = "patch_compliance_scan"
SLA = {"CRITICAL": 7, "HIGH": 14, "MEDIUM": 30, "LOW": 90, "INFORMATIONAL": 180, "UNSPECIFIED": 90}
KERNEL_CVE = "CVE-2026-1111"  # on every third node of prod (Critical)
SSL_CVE = "CVE-2026-2222"  # on every fourth node of both accounts (Important -> HIGH)
PROD_NODES, DEV_NODES = 40, 15
UNMANAGED = "i-00000000000000fff"


def node_id(account: int, i: int) -> str:
    return f"i-{account:02d}{i:015x}"


def _doc(account: int, count: int, tgt: dict, when) -> tuple[dict, list[dict]]:
    scanned = when - timedelta(hours=1)
    ids = [node_id(account, i) for i in range(count)]
    states, patches = [], {}
    for i, iid in enumerate(ids):
        missing = []
        if account == 1 and i % 3 == 0:
            missing.append(patch("kernel", severity="Critical", cves=KERNEL_CVE))
        if i % 4 == 0:
            missing.append(patch("openssl", severity="Important", cves=f"{SSL_CVE},{KERNEL_CVE}"))
        if i % 5 == 1:
            missing.append(patch("vim", severity="Low", cves=None))
        critical = sum(1 for p in missing if p["Severity"] == "Critical")
        states.append(patch_state(iid, scanned=scanned, missing=len(missing), critical=critical))
        if missing:
            patches[iid] = missing
    ec2 = [ec2_instance(iid, name=f"web-{account}-{i}") for i, iid in enumerate(ids)]
    if account == 1:
        ec2.append(ec2_instance(UNMANAGED, name="no-agent"))
    doc = raw_doc(tgt, info=[instance_info(i) for i in ids], ec2=ec2, states=states, patches=patches)
    commands = [command_record(i, requested=when - timedelta(minutes=30)) for i in ids]
    return doc, commands


def publish_fleet(ctx: AwsContext, *, day: int = 0) -> dict[str, Any]:
    """One run (``day`` days after NOW); returns its summary.json."""
    when = NOW + timedelta(days=day)
    prod, prod_cmds = _doc(1, PROD_NODES, target("111111111111", "eu-west-1"), when)
    dev_target = target(
        "222222222222", "us-east-1", ou_id="ou-ab12-dev00001", ou_path="Root/Workloads/Dev", account_name="dev-b"
    )
    dev, dev_cmds = _doc(2, DEV_NODES, dev_target, when)
    down = unreachable_doc(
        target("333333333333", "eu-west-1", ou_id="ou-ab12-sbx00001", ou_path="Root/Sandbox", account_name="sbx")
    )
    staged = StagedRun.from_docs([prod, dev, down], prod_cmds + dev_cmds, now=when, sla_days=SLA, stale_after_days=7)
    build_and_publish(
        ctx,
        ReportsConfig(bucket=BUCKET, prefix=PREFIX),
        staged,
        run_id=f"scheduled__{when.isoformat()}",
        dag_id=DAG,
        now=when,
        sla_days=SLA,
        stale_after_days=7,
    )
    body = ctx.client("s3").get_object(Bucket=BUCKET, Key=f"{PREFIX}/latest/summary.json")["Body"].read()
    return json.loads(body)  # as published: with its tables' locations


def read_table(s3: Any, summary: dict[str, Any], name: str) -> pa.Table:
    """A published table of the run, whole (the test's reference, not the page's way of reading)."""
    key = summary["tables"][name].split(f"s3://{BUCKET}/", 1)[1]
    return pq.read_table(io.BytesIO(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()))


def add_tag_columns(s3: Any, summary: dict[str, Any]) -> pa.Table:
    """Rewrite the run's nodes table with ``tag_Team`` (prod: ``payments`` for even nodes, else ``search``; dev:
    none) and ``tag_Environment`` (``prod`` / ``dev``), as the data side's contract describes."""
    nodes = read_table(s3, summary, "nodes")
    accounts, ids = nodes.column("account_id").to_pylist(), nodes.column("instance_id").to_pylist()
    team = [
        None if iid is None or acc != "111111111111" else ("payments" if int(iid[-1], 16) % 2 == 0 else "search")
        for acc, iid in zip(accounts, ids, strict=True)
    ]
    env = [
        None if iid is None else ("prod" if acc == "111111111111" else "dev")
        for acc, iid in zip(accounts, ids, strict=True)
    ]
    nodes = nodes.append_column("tag_Team", pa.array(team, pa.string()))
    nodes = nodes.append_column("tag_Environment", pa.array(env, pa.string()))
    sink = io.BytesIO()
    pq.write_table(nodes, sink)
    key = summary["tables"]["nodes"].split(f"s3://{BUCKET}/", 1)[1]
    s3.put_object(Bucket=BUCKET, Key=key, Body=sink.getvalue())
    return nodes
