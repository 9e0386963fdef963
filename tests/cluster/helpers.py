"""REST, emulator and S3 helpers for the cluster test: what a user of a real deployment would call."""

from __future__ import annotations

import io
import json
import socket
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import boto3
import pandas as pd
import pyarrow.parquet as pq
import requests

from include.patch_compliance.storage import staging_prefix

# Identify the run, not the fleet: differ between any two runs of the same fleet.
RUN_COLUMNS = ("run_id", "command_id")
# Times from the emulator's clock, which runs at its own speed (frozen and moved on in the cluster test, 600x in
# the reference), and the node's scan age measured from them against Airflow's real clock.
EMULATOR_CLOCK_COLUMNS = ("last_ping_time", "last_scan_time", "scan_age_days")
NODE_KEY = ["account_id", "region", "instance_id"]


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports (all bound at once, so none is handed out twice)."""
    with ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]


class Api:
    """The Airflow REST API with a bearer token from the simple auth manager's login endpoint."""

    def __init__(self, base_url: str, username: str, password: str) -> None:
        self.base_url = base_url
        response = requests.post(
            f"{base_url}/auth/token", json={"username": username, "password": password}, timeout=30
        )
        assert response.status_code == 201, f"login as {username} failed: {response.status_code} {response.text}"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def call(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        # generous: on a loaded 2-core machine the single API worker can be slow to answer
        response = self.session.request(method, f"{self.base_url}{path}", json=body, params=params, timeout=180)
        if response.status_code >= 400:
            raise AssertionError(f"{method} {path} -> {response.status_code}: {response.text[:2000]}")
        return response.json()

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances"
        return self.call("GET", path, limit=100)["task_instances"]

    def tries(self, dag_id: str, run_id: str, task_id: str, map_index: int) -> list[dict]:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/{map_index}/tries"
        return self.call("GET", path)["task_instances"]


def wait_until(condition: Callable[[], Any], timeout: float, what: str, interval: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@dataclass
class Watch:
    """What was seen while a run went by, sampled every ``interval`` seconds."""

    deferred: dict[str, set[int | None]] = field(default_factory=dict)  # TI id -> triggerer ids while deferred
    checked_off_worker: dict[str, int] = field(default_factory=dict)  # TI id -> samples deferred and on no worker
    on_worker_while_deferred: list[tuple[str, str]] = field(default_factory=list)  # (TI id, worker) once released
    exiting: int = 0  # samples of a just-deferred TI whose task process had not exited yet
    samples: int = 0


def active_on_workers(control: Any, workers: list[str]) -> dict[str, set[str]]:
    """TaskInstance ids each Celery worker is executing now (the workload JSON the executor sends)."""
    names = [f"{w}@{socket.gethostname()}" for w in workers]
    replies = control.inspect(destination=names, timeout=2.0).active() or {}
    running: dict[str, set[str]] = {}
    for worker, tasks in replies.items():
        ids = set()
        for task in tasks:
            for arg in task.get("args") or []:
                try:
                    ids.add(str(json.loads(arg)["ti"]["id"]))
                except (TypeError, ValueError, KeyError):
                    continue
        running[worker.split("@", 1)[0]] = ids
    return running


def read_json(s3: Any, bucket: str, key: str) -> Any:
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def read_table(s3: Any, bucket: str, uri: str) -> pd.DataFrame:
    key = uri.split(f"s3://{bucket}/", 1)[1]
    return pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read())).to_pandas()


def staged_scans(s3: Any, bucket: str, prefix: str, run_id: str) -> list[dict]:
    """The scan step's records of one run (one per account-region, with the commands it sent)."""
    import gzip

    folder = f"{staging_prefix(prefix, run_id)}scan/"  # the scan step's own kind (runtime.RunContext.key)
    records = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=folder):
        for obj in page.get("Contents", []):
            records += json.loads(gzip.decompress(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()))
    return records


def comparable_nodes(nodes: pd.DataFrame) -> pd.DataFrame:
    """The nodes table without the columns that name the run or carry the emulator's clock, in key order."""
    drop = [c for c in (*RUN_COLUMNS, *EMULATOR_CLOCK_COLUMNS) if c in nodes.columns]
    return nodes.drop(columns=drop).sort_values(NODE_KEY).reset_index(drop=True)


def aws_client(service: str, endpoint: str, region: str = "us-east-1", **creds: str) -> Any:
    creds.setdefault("aws_access_key_id", "testing")
    creds.setdefault("aws_secret_access_key", "testing")
    return boto3.client(service, region_name=region, endpoint_url=endpoint, **creds)


def member_findings(endpoint: str, fleet: dict, account_id: str, region: str) -> list[dict]:
    """Our findings in one member account-region (imported there through the member role)."""
    sts = aws_client("sts", endpoint)
    role = f"arn:aws:iam::{account_id}:role/{fleet['member_role_name']}"
    creds = sts.assume_role(RoleArn=role, RoleSessionName="cluster-test")["Credentials"]
    hub = aws_client(
        "securityhub",
        endpoint,
        region,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
    filters = {"GeneratorId": [{"Value": "patch-compliance/node-patch-state", "Comparison": "EQUALS"}]}
    return [f for page in hub.get_paginator("get_findings").paginate(Filters=filters) for f in page["Findings"]]
