"""The local CeleryExecutor cluster of `make cluster` (scripts/cluster.py), brought up once for this folder's
tests, and the `airflow dags test` run of the same DAG, config and emulator seed that its results must equal.

The cluster runs on free ports from ``artifacts/cluster-test`` (logs kept there after the run) with the emulator's
clock frozen: a wait can only end when the test moves emulated time on, so every wait is seen deferred first.
Bring-down always runs. The tests skip only when PostgreSQL or Redis is not installed (.ci/run installs them).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml

from sandbox.testing import RunningSandbox
from scripts import cluster as local_cluster
from scripts.cluster_spec import DAG_ID
from scripts.local_env import ROOT, local_env, sandbox
from scripts.services import missing_reason
from tests.cluster.helpers import Api, aws_client, free_ports, read_json, read_table
from tests.ui.airflow_server import _migrated_db

FOLDER = ROOT / "artifacts" / "cluster-test"
SEED, PROFILE = 7, "small"
PORT_VARS = [k for k in local_cluster.DEFAULTS if k.endswith("_PORT")]


@dataclass
class Reports:
    bucket: str
    prefix: str

    def latest_summary(self, s3) -> dict:
        return read_json(s3, self.bucket, f"{self.prefix}/latest/{DAG_ID}/summary.json")


@dataclass
class LiveCluster:
    handle: local_cluster.Cluster
    api: Api
    emulator: RunningSandbox
    reports: Reports
    config: Path
    reference: Future  # the `airflow dags test` nodes table

    @property
    def s3(self):
        return aws_client("s3", self.emulator.url)


def scan_config(path: Path, base: Path) -> Path:
    """The default (emulator) config with one wave, so its three shards run side by side on the workers, and no
    schedule, so unpausing the DAG starts no scheduled run beside the triggered one."""
    data = yaml.safe_load(base.read_text())
    data["waves"] = [{"name": "all", "ous": ["*"]}]
    data.setdefault("orchestration", {})["schedule"] = None
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def dags_test_nodes(config: Path, reports: Reports, folder: Path) -> pd.DataFrame:
    """`airflow dags test` of the scan DAG on its own emulator (same profile and seed), `make demo`'s wiring."""
    port = free_ports(1)[0]
    home = folder / "dags-test-home"
    home.mkdir(parents=True, exist_ok=True)
    env = {**local_env(port, home), "PATCH_COMPLIANCE_CONFIG": str(config)}
    _migrated_db(env, home / "airflow.db")
    with sandbox(port, env, profile=PROFILE, seed=SEED, time_scale=600, log=folder / "dags-test-emulator.log"):
        s3 = aws_client("s3", f"http://127.0.0.1:{port}")
        s3.create_bucket(Bucket=reports.bucket)
        with (folder / "dags-test.log").open("w") as log:
            result = subprocess.run(
                [str(Path(sys.executable).parent / "airflow"), "dags", "test", DAG_ID],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=600,
                preexec_fn=lambda: os.nice(10),  # the cluster's processes come first on a 2-core machine
            )
        assert result.returncode == 0, (folder / "dags-test.log").read_text()[-4000:]
        return read_table(s3, reports.bucket, reports.latest_summary(s3)["tables"]["nodes"])


@pytest.fixture(scope="module")
def live_cluster() -> Iterator[LiveCluster]:
    reason = missing_reason()
    if reason:
        pytest.skip(f"the local cluster needs PostgreSQL and Redis from Debian packages: {reason}")
    shutil.rmtree(FOLDER, ignore_errors=True)
    FOLDER.mkdir(parents=True)
    overrides = dict(zip(PORT_VARS, map(str, free_ports(len(PORT_VARS))), strict=True))
    settings = local_cluster.Settings.from_env({}, CLUSTER_DIR=str(FOLDER), CLUSTER_TIME_SCALE="0", **overrides)
    default_env, _ = local_cluster.cluster_env(settings, {})
    config = scan_config(FOLDER / "patch-compliance.yaml", Path(default_env["PATCH_COMPLIANCE_CONFIG"]))
    settings.config_file = config
    raw = yaml.safe_load(config.read_text())["reports"]
    reports = Reports(raw["bucket"], raw["prefix"])
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        # The reference run overlaps the cluster's start-up (both mostly wait on process start-ups).
        reference = pool.submit(dags_test_nodes, config, reports, FOLDER)
        started = time.monotonic()
        handle = local_cluster.up(settings)
        print(f"\ncluster up in {time.monotonic() - started:.0f} s {handle.timings}")
        try:
            api = Api(settings.api_url, local_cluster.ADMIN_USER, settings.values["CLUSTER_ADMIN_PASSWORD"])
            emulator = RunningSandbox(settings.sandbox_url, {}, None)  # only its HTTP calls are used
            emulator.fleet = emulator._request("GET", "/_sandbox/fleet")
            yield LiveCluster(handle, api, emulator, reports, config, reference)
        finally:
            print("\n".join(local_cluster.down(settings)))
    finally:
        pool.shutdown(wait=True)
