"""The scan DAG on a real CeleryExecutor cluster (PostgreSQL, Redis, scheduler, dag-processor, triggerer,
api-server, two Celery workers), triggered through the REST API on the emulator's `small` organization.

1. A run succeeds with task instances on both workers; every wait is deferred to the triggerer and, while
   deferred, runs on no worker; SSM SendCommand is called exactly once per command the scan recorded.
2. A worker is killed (SIGKILL, its whole process group) while a collect task runs on it: the scheduler notices
   the missing heartbeat, the task is retried on the other worker, and the run succeeds with no second
   SendCommand and no second finding.
3. The running components and their settings are the ones deploy/docker-compose.yaml names (each setting
   observed in effect: the DB holds the run, the workers report their concurrency, ...).
4. The first run's published `nodes` table equals the one `airflow dags test` publishes for the same seed.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg2
import pytest
import requests
from botocore.exceptions import ClientError
from celery import Celery

from scripts import cluster_spec as spec
from scripts.cluster_spec import DAG_ID
from tests.cluster import deploy_files as files
from tests.cluster.conftest import LiveCluster
from tests.cluster.helpers import (
    NODE_KEY,
    Watch,
    active_on_workers,
    comparable_nodes,
    member_findings,
    read_table,
    staged_scans,
)

# Far enough for every command of the `small` fleet to end: patch scans take minutes, undelivered ones end at
# the command's 600 s timeout, a hung one at the patch document's 7,200 s execution timeout.
ADVANCE_SECONDS = 3 * 3600
RUN_TIMEOUT = 600  # generous: a shared 2-core machine can be slow; the figures are printed, not asserted


@dataclass
class RunRecord:
    run_id: str
    state: str
    seconds: float
    tis: list[dict]
    watch: Watch
    calls: dict[str, int]
    scans: list[dict]
    summary: dict
    nodes: pd.DataFrame
    findings: dict[tuple[str, str], list[str]]
    notes: dict[str, Any] = field(default_factory=dict)


def drive(lc: LiveCluster, run_id: str, on_collect=None) -> RunRecord:
    """Trigger a run and watch it every second until it ends. Once every wait is deferred (and seen on no
    worker), move the emulator's clock on so the commands finish. ``on_collect(tis, calls, notes)`` is called on
    every sample after that."""
    api, emulator = lc.api, lc.emulator
    workers = lc.handle.settings.worker_names()
    control = Celery(broker=lc.handle.env["AIRFLOW__CELERY__BROKER_URL"]).control
    emulator.reset_calls()
    api.call("PATCH", f"/api/v2/dags/{DAG_ID}", {"is_paused": False})
    api.call("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", {"dag_run_id": run_id, "logical_date": None, "conf": {}})
    watch, notes, advanced = Watch(), {}, False
    started = time.monotonic()
    while True:
        state = api.call("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}")["state"]
        tis = api.task_instances(DAG_ID, run_id)
        if state in ("success", "failed") or time.monotonic() - started > RUN_TIMEOUT:
            break
        watch.samples += 1
        waits = [ti for ti in tis if ti["task_id"].endswith(".wait")]
        deferred = [ti for ti in waits if ti["state"] == "deferred"]
        if deferred and not advanced:
            running = active_on_workers(control, workers)
            for ti in deferred:
                triggerer = (ti.get("trigger") or {}).get("triggerer_id")
                if triggerer is None:  # deferred, but no triggerer has picked the trigger up yet
                    continue
                watch.deferred.setdefault(ti["id"], set()).add(triggerer)
                on = [worker for worker, ids in running.items() if ti["id"] in ids]
                if on and watch.checked_off_worker.get(ti["id"]):
                    # its worker process had exited; a deferred task back on a worker would hold a slot
                    watch.on_worker_while_deferred += [(ti["id"], worker) for worker in on]
                elif on:
                    # the task process still winding down after it handed the wait to the triggerer
                    watch.exiting += 1
                elif set(running) == set(workers):
                    watch.checked_off_worker[ti["id"]] = watch.checked_off_worker.get(ti["id"], 0) + 1
            if len(deferred) == len(waits) and all(watch.checked_off_worker.get(ti["id"]) for ti in waits):
                emulator.admin("advance", seconds=ADVANCE_SECONDS)
                advanced = True
                notes["waits_deferred_after"] = round(time.monotonic() - started, 1)
        elif advanced and on_collect is not None:
            on_collect(tis, emulator.calls(), notes)
        time.sleep(1.0)
    seconds = time.monotonic() - started
    notes["samples"], notes["wait_still_exiting_samples"] = watch.samples, watch.exiting
    s3 = lc.s3
    summary = lc.reports.latest_summary(s3)
    assert summary["run_id"] == run_id, (summary["run_id"], run_id)
    nodes = read_table(s3, lc.reports.bucket, summary["tables"]["nodes"])
    return RunRecord(
        run_id=run_id,
        state=state,
        seconds=seconds,
        tis=tis,
        watch=watch,
        calls=emulator.calls(),
        scans=staged_scans(s3, lc.reports.bucket, lc.reports.prefix, run_id),
        summary=summary,
        nodes=nodes,
        findings=findings_by_target(lc, nodes),
        notes=notes,
    )


def findings_by_target(lc: LiveCluster, nodes: pd.DataFrame) -> dict[tuple[str, str], list[str]]:
    found = {}
    for account_id, region in sorted(set(zip(nodes["account_id"], nodes["region"], strict=True))):
        try:
            found[(account_id, region)] = sorted(
                f["Id"] for f in member_findings(lc.emulator.url, lc.emulator.fleet, account_id, region)
            )
        except ClientError:  # no role, or Security Hub not enabled there
            continue
    return found


def sent_commands(record: RunRecord) -> int:
    return sum(len(s["commands"]) for s in record.scans if s["status"] == "SENT")


def placement(record: RunRecord) -> dict[str, list[str]]:
    where = defaultdict(list)
    for ti in record.tis:
        where[ti["hostname"]].append(ti["task_id"] + (f"[{ti['map_index']}]" if ti["map_index"] >= 0 else ""))
    return dict(where)


@pytest.fixture(scope="module")
def first_run(live_cluster: LiveCluster) -> RunRecord:
    record = drive(live_cluster, "cluster_run_1")
    print(f"\nrun 1: {record.state} in {record.seconds:.0f} s {record.notes}; tasks per worker {placement(record)}")
    return record


def test_scan_runs_distributed_with_deferred_waits_and_the_dags_test_result(live_cluster, first_run):
    assert first_run.state == "success", live_cluster.handle.log_tail("scheduler")
    workers = set(live_cluster.handle.settings.worker_names())
    hosts = {ti["hostname"] for ti in first_run.tis}
    assert hosts == workers, f"task instances ran on {placement(first_run)}; expected both of {sorted(workers)}"

    waits = [ti for ti in first_run.tis if ti["task_id"].endswith(".wait")]
    assert len(waits) >= 2 and all(ti["state"] == "success" for ti in waits)
    triggerers = live_cluster.api.call("GET", "/api/v2/jobs", job_type="TriggererJob")["jobs"]
    triggerer_ids = {job["id"] for job in triggerers}
    for ti in waits:
        assert ti["id"] in first_run.watch.deferred, f"{ti['task_id']}[{ti['map_index']}] never deferred"
        assert first_run.watch.deferred[ti["id"]] <= triggerer_ids, "a deferred wait not held by the triggerer"
        assert first_run.watch.checked_off_worker.get(ti["id"]), "never checked against the workers while deferred"
    assert first_run.watch.on_worker_while_deferred == []

    sent = sent_commands(first_run)
    assert sent > 0 and first_run.calls["ssm.SendCommand"] == sent


def test_the_running_cluster_is_what_the_deploy_files_describe(live_cluster, first_run):
    """Each component deploy/docker-compose.yaml names runs here (as many workers as its replicas, on the Python
    and Airflow of its build arguments), and each setting it shares with the cluster is observed in effect."""
    handle, api = live_cluster.handle, live_cluster.api
    services = files.services()
    build = spec.image_build_args()
    for component in spec.COMPONENTS:
        names = handle.settings.worker_names() if component.name == "worker" else [component.name]
        assert len(names) == services[f"airflow-{component.name}"].get("deploy", {}).get("replicas", 1)
        for name in names:
            entry = handle.ledger.get(name)
            assert entry.alive(), f"{name} is not running"
            assert Path(os.path.realpath(f"/proc/{entry.pid}/exe")).name == f"python{build['PYTHON_VERSION']}"
    assert api.call("GET", "/api/v2/version")["version"] == build["AIRFLOW_VERSION"]
    jobs = api.call("GET", "/api/v2/jobs", is_alive=True)["jobs"]
    assert {"SchedulerJob", "TriggererJob", "DagProcessorJob"} <= {job["job_type"] for job in jobs}

    env = handle.env
    names = [f"{w}@{socket.gethostname()}" for w in handle.settings.worker_names()]
    control = Celery(broker=env["AIRFLOW__CELERY__BROKER_URL"]).control
    stats = control.inspect(destination=names, timeout=5).stats() or {}
    conf = control.inspect(destination=names, timeout=5).conf() or {}
    assert set(stats) == set(conf) == set(names)
    db_url = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    with psycopg2.connect(db_url.replace("+psycopg2", "")) as db, db.cursor() as cur:
        cur.execute("SELECT count(*) FROM dag_run WHERE run_id = %s", (first_run.run_id,))
        dag_runs = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM celery_taskmeta")
        celery_results = cur.fetchone()[0]
    dags = {d["dag_id"]: d for d in api.call("GET", "/api/v2/dags", limit=100)["dags"]}
    tasks = {t["task_id"] for t in api.call("GET", f"/api/v2/dags/{DAG_ID}/tasks")["tasks"]}
    hosts = {ti["hostname"] for ti in first_run.tis}
    health_port = handle.settings.port("scheduler_health")
    connection = api.call("GET", f"/api/v2/connections/{spec.CONNECTION_ID}")
    execution_api = env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"]
    # What each setting visibly does in the running cluster, as the value it proves.
    observed = {
        # every task ran in a Celery worker process (the names exist only there: scripts/workername.py)
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor" if hosts <= set(handle.settings.worker_names()) else None,
        "AIRFLOW__CORE__LOAD_EXAMPLES": str(any(d.startswith("example_") for d in dags)),
        # the collect and trends DAGs were never unpaused by this test
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": str(dags["patch_compliance_collect"]["is_paused"]),
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": {str(s["pool"]["max-concurrency"]) for s in stats.values()}.pop(),
        "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": {
            str(c["broker_transport_options"]["visibility_timeout"]) for c in conf.values()
        }.pop(),
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": str(
            requests.get(f"http://127.0.0.1:{health_port}/health", timeout=10).status_code == 200
        ),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db_url if dag_runs == 1 else None,
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{db_url}" if celery_results > 0 else None,
        "AIRFLOW__CELERY__BROKER_URL": env["AIRFLOW__CELERY__BROKER_URL"] if len(stats) == 2 else None,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": execution_api
        if requests.get(f"{execution_api}health", timeout=10).status_code == 200
        else None,
        # the DAG the dag-processor parsed has the waves of this config file
        "PATCH_COMPLIANCE_CONFIG": env["PATCH_COMPLIANCE_CONFIG"] if "wave_all.gate" in tasks else None,
        # the token came from the simple auth manager's login route (tests/cluster/helpers.Api)
        "AIRFLOW__CORE__AUTH_MANAGER": spec.SIMPLE_AUTH_MANAGER if api.session.headers["Authorization"] else None,
    }
    shared = {**spec.airflow_settings(spec.COMPOSE), **spec.SIMPLE_AUTH_SETTINGS}
    assert set(observed) == set(shared), "a setting of cluster_spec has no check here"
    assert observed == {key: env[key] for key in shared}
    # Secrets: the connection the init step stored (encrypted with the Fernet key) reads back through the API
    # server; the task JWTs the scheduler signed were accepted by the API server (every task ran).
    assert (
        json.loads(connection["extra"])
        == json.loads(Path(handle.settings.folder / "connections.json").read_text())[spec.CONNECTION_ID]["extra"]
    )
    assert all(ti["state"] == "success" for ti in first_run.tis)


def test_killed_worker_task_is_retried_on_the_other_worker(live_cluster, first_run):
    assert first_run.state == "success"
    ledger = live_cluster.handle.ledger
    # Throttled DescribeInstancePatches (AWS answers ThrottlingException; botocore retries it, "Retry behavior",
    # https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html) keeps collect running long
    # enough to be caught in the middle.
    live_cluster.emulator.set_faults({"throttle": {"ssm.DescribeInstancePatches": 0.5}})

    def kill_during_collect(tis: list[dict], calls: dict[str, int], notes: dict) -> None:
        if "killed" in notes or not calls.get("ssm.DescribeInstancePatches"):
            return
        for ti in tis:
            if ti["task_id"].endswith(".collect") and ti["state"] == "running" and ti["hostname"]:
                ledger.get(ti["hostname"]).signal(signal.SIGKILL)
                notes["killed"] = ti["hostname"]
                notes["victim"] = (ti["task_id"], ti["map_index"])
                notes["calls_at_kill"] = calls.get("ssm.DescribeInstancePatches")
                return

    try:
        second = drive(live_cluster, "cluster_run_2", on_collect=kill_during_collect)
    finally:
        live_cluster.emulator.set_faults({})
    print(f"\nrun 2: {second.state} in {second.seconds:.0f} s {second.notes}; tasks per worker {placement(second)}")
    assert "killed" in second.notes, "no collect task was caught running"
    assert second.state == "success", live_cluster.handle.log_tail("scheduler")
    killed = second.notes["killed"]
    (survivor,) = set(live_cluster.handle.settings.worker_names()) - {killed}
    assert not ledger.get(killed).alive()

    task_id, map_index = second.notes["victim"]
    tries = live_cluster.api.tries(DAG_ID, second.run_id, task_id, map_index)
    by_try = {t["try_number"]: t for t in tries}
    assert by_try[1]["hostname"] == killed and by_try[1]["state"] != "success"
    final = next(ti for ti in second.tis if (ti["task_id"], ti["map_index"]) == (task_id, map_index))
    assert final["state"] == "success" and final["try_number"] >= 2 and final["hostname"] == survivor

    def where(event: str) -> list[tuple[str, int]]:
        logs = live_cluster.api.call("GET", "/api/v2/eventLogs", event=event, run_id=second.run_id)["event_logs"]
        return [(e["task_id"], e["map_index"]) for e in logs]

    timed_out = where("heartbeat timeout")  # the scheduler's own record of why try 1 failed
    assert (task_id, map_index) in timed_out, timed_out
    # taken from Redis by the killed worker but never started: put back after task_queued_timeout
    requeued = where("stuck in queued reschedule")
    print(f"heartbeat timeouts {timed_out}; put back from queued {requeued}")

    # Nothing sent twice, nothing found twice, nothing lost.
    assert second.calls["ssm.SendCommand"] == sent_commands(second) == sent_commands(first_run)
    assert second.summary["security_hub"]["created"] == 0 and second.summary["security_hub"]["failed"] == 0
    assert second.findings == first_run.findings
    assert all(len(ids) == len(set(ids)) for ids in second.findings.values())
    assert not second.nodes.duplicated(NODE_KEY).any()
    assert sorted(map(tuple, second.nodes[NODE_KEY].values)) == sorted(map(tuple, first_run.nodes[NODE_KEY].values))


def test_published_nodes_equal_what_airflow_dags_test_publishes(live_cluster, first_run):
    """Last in this file: the reference run (started with the cluster, at low CPU priority) has the whole
    module's time to finish."""
    started = time.monotonic()
    reference = live_cluster.reference.result(timeout=600)
    print(f"\nwaited {time.monotonic() - started:.0f} s for the `airflow dags test` reference")
    ours, theirs = comparable_nodes(first_run.nodes), comparable_nodes(reference)
    assert len(ours) == len(theirs) > 20
    assert list(ours.columns) == list(theirs.columns)
    differ = [c for c in ours.columns if not ours[c].equals(theirs[c])]
    assert differ == [], f"columns that differ: {differ}"
    pd.testing.assert_frame_equal(ours, theirs)
