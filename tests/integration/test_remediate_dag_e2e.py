"""End to end: `airflow dags test patch_compliance_remediate` against the emulated `small` organization, after a
scan published through the scan DAG's step bodies.

Without the opt-ins, above remediation.max_nodes or outside the change window the run fails in its first task,
naming the setting, and sends nothing; the default dry run sends nothing; canary failures above
remediation.max_failure_ratio hold every later wave; a real run sends Install only to the selected InstanceIds
(checked at the emulator's log of every SendCommand), leaves the fixed nodes COMPLIANT in the remediation table and
in the next scan, and resolves their Security Hub findings.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock

import pyarrow.parquet as pq
import pytest
import yaml

from include.patch_compliance.config import parse_config
from include.patch_compliance.publish.asff import finding_id
from include.patch_compliance.remediate.plan import RemediationPlan
from include.patch_compliance.vocab import CANARY_WAVE
from sandbox.testing import running_sandbox
from tests.orchestration.conftest import make_run
from tests.remediation.flow import counted_available_updates, scan

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "pc-remediate-e2e"
PREFIX = "pc"
DAG_ID = "patch_compliance_remediate"
PARAMS = {"max_nodes": 6, "regions": ["eu-west-1", "us-east-1"]}


def config_data(**remediation) -> dict:
    base = yaml.safe_load((ROOT / "sandbox" / "fleet-config.yaml").read_text())
    base["reports"] = {"bucket": BUCKET, "prefix": PREFIX}
    base["scan"].update(allow_install=True, reboot_option="RebootIfNeeded")
    base["scan"]["wait"] = {"poke_interval_seconds": 5, "timeout_seconds": 1800, "deferrable": True}
    base["collect"] = {"compliance_items": False}
    base["remediation"] = {"enabled": True, "canary": {"nodes": 2}, "max_nodes": 10, "max_failure_ratio": 0.1}
    for key, value in remediation.items():
        section, _, name = key.partition("__")
        (base[section] if name else base["remediation"])[name or key] = value
    return base


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    home = tmp_path_factory.mktemp("airflow-home")
    with running_sandbox(profile="small", seed=7, time_scale=600) as sb:
        aws = {"AWS_ENDPOINT_URL": sb.url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
        env = {
            **os.environ,
            **aws,
            "PYTHONPATH": str(ROOT),
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW_CONN_AWS_DEFAULT": json.dumps({"conn_type": "aws", "extra": {"region_name": "us-east-1"}}),
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        env.pop("AWS_SESSION_TOKEN", None)
        airflow = str(Path(sys.executable).parent / "airflow")
        subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True)
        with mock.patch.dict(os.environ, aws):
            os.environ.pop("AWS_SESSION_TOKEN", None)
            sb.client("s3").create_bucket(Bucket=BUCKET)
            start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
            scan(sb, "scan-before", start, parse_config(config_data()))
            yield sb, env, airflow, tmp_path_factory.mktemp("configs"), start


def run_dag(world, name: str, data: dict, conf: dict) -> tuple[subprocess.CompletedProcess, str, list[str]]:
    """`airflow dags test` with this config and conf; returns the result, its output and the tasks it started."""
    sb, env, airflow, configs, _ = world
    path = configs / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    sb.reset_calls()
    result = subprocess.run(
        [airflow, "dags", "test", DAG_ID, "-c", json.dumps(conf)],
        env={**env, "PATCH_COMPLIANCE_CONFIG": str(path)},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    output = result.stdout + result.stderr
    started = sorted(set(re.findall(r"\[DAG TEST\] starting task_id=(\S+)", output)))
    return result, output, started


def _counted_available_updates(sb, row) -> int:
    """``counted_available_updates`` read in the node's member account as setup (not recorded as the product's
    calls)."""
    role = f"arn:aws:iam::{row['account_id']}:role/{sb.fleet['member_role_name']}"
    creds = sb.client("sts").assume_role(RoleArn=role, RoleSessionName="test-check")["Credentials"]
    ssm = sb.client(
        "ssm",
        row["region"],
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
    return counted_available_updates(ssm, row["instance_id"])


def _s3(sb, key) -> bytes:
    return sb.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read()


def _latest_run_folder(sb, kind: str) -> str:
    """The newest run's staging folder holding ``kind`` (run ids of `dags test` are manual__<time>)."""
    pages = sb.client("s3").get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=f"{PREFIX}/_staging/")
    keys = [o for p in pages for o in p.get("Contents", []) if o["Key"].endswith(f"/{kind}.json.gz")]
    return max(keys, key=lambda o: o["LastModified"])["Key"].rsplit("/", 1)[0]


def _staged(sb, folder: str, kind: str):
    return json.loads(gzip.decompress(_s3(sb, f"{folder}/{kind}.json.gz")))


def _installs(sb) -> list[dict]:
    return [e for e in sb.sent_commands() if (e["Parameters"] or {}).get("Operation") == ["Install"]]


def _table(sb, uri: str) -> list[dict]:
    return pq.read_table(io.BytesIO(_s3(sb, uri.split(f"s3://{BUCKET}/", 1)[1]))).to_pylist()


# A window open only on January 1st, 00:00-00:01 UTC: closed whenever this runs (short of that minute).
NEW_YEAR_MINUTE = {"start": "0 0 1 1 *", "duration_minutes": 1}


@pytest.mark.parametrize(
    ("name", "overrides", "message"),
    [
        ("opt-in", {"enabled": False}, "remediation.enabled: false"),
        ("max-nodes", {"max_nodes": 3}, "6 nodes selected, above remediation.max_nodes 3"),
        ("window", {"change_window": NEW_YEAR_MINUTE}, "remediation.change_window (opens at cron '0 0 1 1 *'"),
    ],
)
def test_refusals_fail_the_first_task_naming_the_setting_and_send_nothing(world, name, overrides, message):
    sb = world[0]
    result, output, started = run_dag(world, f"refused-{name}", config_data(**overrides), {**PARAMS, "dry_run": False})
    assert result.returncode != 0
    assert message in output and "nothing was sent" in output
    # the tasks after the waves run whatever the waves did (all_done), and skip at once without a plan
    assert "select" in started and set(started) <= {"select", "rescan", "verify", "report", "security_hub"}
    assert "select did not write a plan" in output
    assert sb.calls().get("ssm.SendCommand", 0) == 0


def test_the_default_dry_run_selects_and_sends_nothing(world):
    sb = world[0]
    result, output, started = run_dag(world, "dry", config_data(), PARAMS)
    assert result.returncode == 0, output[-3000:]
    assert sb.calls().get("ssm.SendCommand", 0) == 0
    assert started == ["proceed", "select"]
    assert "dry run: 6 nodes selected, nothing sent" in output
    folder = _latest_run_folder(sb, "selection")
    selection = _staged(sb, folder, "selection")
    assert len(selection["selected"]) == 6 and selection["dry_run"] is True
    assert selection["left_out_counts"]["MAX_NODES"] > 0
    for node in selection["selected"]:
        assert f"selected {node['account_id']}/{node['region']}/{node['instance_id']}" in output


def test_canary_failures_above_the_threshold_hold_every_later_wave(world):
    sb = world[0]
    data = config_data(scan__reboot_option="NoReboot")
    plan = RemediationPlan.from_dict(_staged(sb, _latest_run_folder(sb, "plan"), "plan"))  # the dry run's plan
    canary = sorted(i for ids in plan.instance_ids[CANARY_WAVE].values() for i in ids)
    sb.set_faults({"fail_instances": {canary[0]: "Install"}})
    try:
        result, output, started = run_dag(world, "gate", data, {**PARAMS, "dry_run": False})
    finally:
        sb.set_faults({})
    assert result.returncode != 0  # the final gate fails the run, after publishing
    assert "above remediation.max_failure_ratio 10%" in output
    assert sorted(i for e in _installs(sb) for i in e["InstanceIds"]) == canary
    assert "report" in started and "security_hub" in started and "final_gate" in started
    summary = json.loads(_s3(sb, f"{PREFIX}/latest/{DAG_ID}/summary.json"))
    held = [w["wave"] for w in summary["remediation"]["waves"] if w["held"]]
    assert held == [w["name"] for w in data["waves"]]
    rows = {r["instance_id"]: r for r in _table(sb, summary["tables"]["remediation"])}
    assert rows[canary[0]]["outcome"] == "FAILED" and rows[canary[0]]["rescanned"]
    assert rows[canary[1]]["result"] == "PENDING_REBOOT" and rows[canary[1]]["reboot_needed"]
    assert {r["result"] for i, r in rows.items() if i not in canary} == {"HELD"}


def test_a_real_run_installs_exactly_the_selection_and_proves_the_fix(world):
    sb, _, _, _, start = world
    data = config_data(max_failure_ratio=1.0)
    result, output, _ = run_dag(world, "real", data, {**PARAMS, "dry_run": False})
    assert result.returncode == 0, output[-3000:]
    selection = _staged(sb, _latest_run_folder(sb, "selection"), "selection")
    chosen = sorted((n["account_id"], n["region"], n["instance_id"]) for n in selection["selected"])
    installs = _installs(sb)
    sent = sorted((e["account_id"], e["region"], i) for e in installs for i in e["InstanceIds"])
    assert sent == chosen  # every selected node once, nothing else
    assert all(e["Targets"] is None and e["Parameters"]["RebootOption"] == ["RebootIfNeeded"] for e in installs)

    summary = json.loads(_s3(sb, f"{PREFIX}/latest/{DAG_ID}/summary.json"))
    rows = _table(sb, summary["tables"]["remediation"])
    fixed = [r for r in rows if r["result"] == "REMEDIATED"]
    assert fixed and all(r["compliance_after"] == "COMPLIANT" and r["missing_after"] == 0 for r in fixed)
    for row in rows:
        if row["outcome"] == "SUCCESS":
            assert row["missing_after"] == row["failed_after"] == row["pending_reboot_after"] == 0
            if row["rejected_after"]:  # an Install never removes a rejected package (docs/aws-behaviours.md §29)
                assert row["result"] == "REJECTED_REMAINS"
            elif _counted_available_updates(sb, row):
                # Install installs approved patches only: available security updates stay, non-compliant where the
                # node's baseline says so (docs/aws-behaviours.md §37)
                assert row["result"] == "NOT_REMEDIATED" and row["compliance_after"] == "NON_COMPLIANT"
            else:
                assert row["result"] == "REMEDIATED"
    assert summary["remediation"]["results"]["REMEDIATED"] == len(fixed)
    assert b'id="remediation"' in _s3(sb, summary["report_url"].split(f"s3://{BUCKET}/", 1)[1])

    with mock.patch.dict(os.environ, {"AWS_ENDPOINT_URL": sb.url}):
        run = make_run("check", parse_config(data), dag_id=DAG_ID)
        layout = sb.fleet["security_hub"]
        excluded = {(d["account_id"], d["region"]) for d in layout["disabled"] + layout["native_export"]}
        checked = 0
        for row in fixed:
            if (row["account_id"], row["region"]) in excluded:
                continue
            hub = run.members.get(row["account_id"]).client("securityhub", row["region"])
            fid = finding_id(row["account_id"], row["region"], row["instance_id"])
            (found,) = hub.get_findings(Filters={"Id": [{"Value": fid, "Comparison": "EQUALS"}]})["Findings"]
            assert found["RecordState"] == "ARCHIVED" and found["Compliance"]["Status"] == "PASSED"
            checked += 1
        assert checked
        _, report, _ = scan(sb, "scan-after", start + timedelta(hours=1), parse_config(data))
    after = json.loads(_s3(sb, report["summary_uri"].split(f"s3://{BUCKET}/", 1)[1]))
    nodes = {(n["account_id"], n["region"], n["instance_id"]): n for n in _table(sb, after["tables"]["nodes"])}
    assert all(
        nodes[(r["account_id"], r["region"], r["instance_id"])]["compliance_status"] == "COMPLIANT" for r in fixed
    )
