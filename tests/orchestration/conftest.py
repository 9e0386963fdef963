"""An emulated organization for orchestration tests: frozen emulator clock, moved with `advance`."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from unittest import mock

import pandas as pd
import pytest

from include.patch_compliance import run_staging
from include.patch_compliance.aws import context_from_connection
from include.patch_compliance.config import parse_config
from include.patch_compliance.runtime import RunContext
from sandbox.testing import RunningSandbox, running_sandbox

BUCKET = "pc-test-reports"


def fleet_config(**overrides):
    data = {
        "regions": ["us-east-1", "eu-west-1"],
        "reports": {"bucket": BUCKET, "prefix": "pc"},
        "waves": [
            {"name": "canary", "ous": ["Root/Workloads/NonProd"]},
            {"name": "rest", "ous": ["*"]},
        ],
        "orchestration": {"shard_size": 4, "max_workers": 4},
    }
    data.update(overrides)
    return parse_config(data)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    with running_sandbox(profile="small", seed=7, time_scale=0) as sb:
        env = {"AWS_ENDPOINT_URL": sb.url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
        with mock.patch.dict(os.environ, env):
            os.environ.pop("AWS_SESSION_TOKEN", None)
            sb.client("s3").create_bucket(Bucket=BUCKET)
            yield sb


def make_run(run_id: str, cfg=None, dag_id: str = "patch_compliance_scan") -> RunContext:
    return RunContext(cfg=cfg or fleet_config(), dag_id=dag_id, run_id=run_id, hub=context_from_connection(None))


def staged(run: RunContext, name: str, columns: list[str] | None = None) -> pd.DataFrame:
    """Table ``name`` of every shard the run's collect tasks staged, as the report step reads it."""
    with tempfile.TemporaryDirectory() as workdir:
        return run_staging.staged_run(run, workdir, (name,)).table(name, columns).to_pandas()
