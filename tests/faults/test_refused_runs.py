"""Probes (issue 10 item 1): a refused or broken run publishes nothing, and the next good run compares with the last
good one.

A good run of the scan DAG is published first, through the same step bodies the DAG's tasks call (collect and
report, in-process: fast). Then real ``airflow dags test`` runs that must not publish: Install without the opt-in
(refused in discover) and a config whose OU does not exist (discover fails). Every object outside ``_staging/``
must be byte-identical afterwards, and the next good run must compute its delta against the first good run, not
against an empty one. Last, a config file the loader refuses (``allow_install: "yes"``) must not even import.
"""

from __future__ import annotations

import io
import json
import os
from datetime import UTC, datetime, timedelta
from unittest import mock

import pyarrow.parquet as pq
import pytest
import yaml

from include.patch_compliance import steps
from include.patch_compliance.aws import context_from_connection
from include.patch_compliance.config import load_config
from include.patch_compliance.runtime import RunContext
from include.patch_compliance.storage import get_bytes, list_keys, put_bytes, staged_prefix
from tests.integration.test_dags_e2e import BUCKET, PREFIX, _config, _dags_test, _keys, _s3

DAG = "patch_compliance_scan"


def _published(sb) -> dict[str, bytes]:
    """Every object a reader can see: tables, run files, history, latest (not the run-private staging)."""
    return {k: _s3(sb, k) for k in _keys(sb, f"{PREFIX}/") if not k.startswith(f"{PREFIX}/_staging/")}


def _in_process_run(world, config, run_id: str, run_after: datetime, same_data_as: str | None = None) -> dict:
    """A good run through the step bodies: plan, collect every shard, report. ``same_data_as``: stage that run's
    plan and staged tables instead of collecting again (the same fleet, without the minutes of collecting)."""
    sb = world[0]
    env = {"AWS_ENDPOINT_URL": sb.url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    with mock.patch.dict(os.environ, env):
        os.environ.pop("AWS_SESSION_TOKEN", None)
        hub = context_from_connection(None)
        run = RunContext(cfg=load_config(config), dag_id=DAG, run_id=run_id, hub=hub, run_after=run_after)
        if same_data_as:
            earlier = RunContext(cfg=run.cfg, dag_id=DAG, run_id=same_data_as, hub=hub)
            run.put(run.key("plan"), earlier.get(earlier.key("plan")))
            source, dest = (staged_prefix(run.cfg.reports.prefix, r.run_id) for r in (earlier, run))
            for key in list_keys(hub, BUCKET, source):
                put_bytes(hub, BUCKET, dest + key.removeprefix(source), get_bytes(hub, BUCKET, key))
        else:
            for refs in steps.plan_fleet(run)["waves"].values():
                for ref in refs:
                    steps.collect_shard(run, ref)
        return steps.report(run)


@pytest.fixture(scope="module")
def scan_config(world):
    return _config(world[3] / "scan.yaml", 0.5)


@pytest.fixture(scope="module")
def good_run(world, scan_config):
    """The last good run: published before any of the refused runs below."""
    result = _in_process_run(world, scan_config, "manual__good-a", datetime.now(UTC) - timedelta(hours=1))
    assert result["totals"]["nodes"] > 0
    return result


def test_refused_install_publishes_nothing_and_fails_saying_why(world, scan_config, good_run):
    sb = world[0]
    before = _published(sb)
    result, calls = _dags_test(world, DAG, scan_config, "-c", '{"operation": "Install"}')
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert calls.get("ssm.SendCommand", 0) == 0
    assert "scan.allow_install: false" in output
    assert "nothing was published" in output
    assert _published(sb) == before  # latest/, history, tables and run files byte-identical


def test_a_discover_failure_publishes_nothing(world, good_run):
    sb, configs = world[0], world[3]
    broken = yaml.safe_load(_config(configs / "broken-ou.yaml", 0.5).read_text())
    broken["organization"] = {"include_ous": ["Root/NoSuchOU"]}
    path = configs / "broken-ou.yaml"
    path.write_text(yaml.safe_dump(broken))
    before = _published(sb)
    result, calls = _dags_test(world, DAG, path)
    assert result.returncode != 0
    assert "Root/NoSuchOU" in result.stdout + result.stderr
    assert calls.get("ssm.SendCommand", 0) == 0
    assert _published(sb) == before


def test_the_next_good_run_compares_with_the_last_good_run(world, scan_config, good_run):
    """Same fleet, same data: every delta row would be a false change."""
    sb = world[0]
    later = datetime.now(UTC) + timedelta(minutes=5)
    result = _in_process_run(world, scan_config, "manual__good-c", later, same_data_as="manual__good-a")
    summary_key = result["summary_uri"].split(f"s3://{BUCKET}/", 1)[1]
    summary = json.loads(_s3(sb, summary_key))
    delta = pq.read_table(io.BytesIO(_s3(sb, summary["tables"]["delta"].split(f"s3://{BUCKET}/", 1)[1]))).to_pandas()
    changes = delta["change"].value_counts().to_dict()
    print(f"false changes after refused runs: {len(delta)} {changes}")
    assert set(delta["previous_run_id"]) <= {"manual__good-a"}
    assert len(delta) == 0, changes


def test_an_invalid_config_file_does_not_run_and_publishes_nothing(world, good_run):
    sb, configs = world[0], world[3]
    data = yaml.safe_load(_config(configs / "invalid.yaml", 0.5).read_text())
    data["scan"]["allow_install"] = "yes"
    path = configs / "invalid.yaml"
    path.write_text(yaml.safe_dump(data))
    before = _published(sb)
    result, _ = _dags_test(world, DAG, path)
    assert result.returncode != 0
    assert "scan.allow_install" in result.stdout + result.stderr
    assert _published(sb) == before
