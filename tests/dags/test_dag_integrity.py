"""Properties every DAG must have: imports cleanly, no AWS or network at parse time, owners/tags/docs, retries."""

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAG_FILES = sorted(p.name for p in (ROOT / "dags").glob("*.py"))
# Tasks that never call AWS.
NO_AWS = {"proceed"}


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    # Airflow 3.3 removed include_examples (docs/aws-behaviours.md §24); examples are off through the environment.
    return DagBag(dag_folder=str(ROOT / "dags"))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert {"patch_compliance_scan", "patch_compliance_collect", "patch_compliance_trends"} <= set(dagbag.dags)


PROBE = r"""
import json, socket, sys, time
calls = []
def refuse(*a, **k):
    calls.append(("socket", repr(a)[:80]))
    raise OSError("network blocked at parse time")
socket.socket.connect = refuse
socket.create_connection = refuse
import botocore.client
def no_aws(self, operation, params):
    calls.append(("aws", operation))
    raise RuntimeError("AWS call at parse time")
botocore.client.BaseClient._make_api_call = no_aws
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
stats = {s.file: s.duration.total_seconds() for s in bag.dagbag_stats}
print(json.dumps({"errors": list(bag.import_errors), "dags": sorted(bag.dags), "calls": calls, "stats": stats}))
"""


def test_parse_makes_no_aws_call_and_no_network_and_reports_parse_time():
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(ROOT / "dags")], env=env, capture_output=True, text=True, check=True, cwd=ROOT
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["errors"] == []
    assert result["calls"] == []
    assert len(result["dags"]) >= 3
    for name, seconds in sorted(result["stats"].items()):
        print(f"parse time {name}: {seconds:.3f} s")
        # The DAG processor kills a file at [core] dagbag_import_timeout (30 s); this is that limit, not a benchmark.
        assert seconds < 30


# What a DAG file must not pull in while it is parsed (issue 11): AWS SDK sessions, dataframe libraries, provider
# hooks. They are imported inside task execution.
HEAVY = (
    "boto3",
    "botocore.session",
    "pandas",
    "pyarrow",
    "airflow.providers.amazon.aws.hooks.base_aws",
    "airflow.providers.amazon.aws.hooks.s3",
)
EMPTY_DAG = """from datetime import datetime

from airflow.sdk import dag


@dag(dag_id="empty", schedule=None, start_date=datetime(2026, 1, 1))
def empty():
    pass


empty()
"""
# The same with one @task in a task group: what Airflow's own task machinery costs any DAG file that has tasks
# (the standard provider's PythonOperator and its imports), before any code of this project.
TASK_DAG = """from datetime import datetime

from airflow.sdk import dag, task, task_group


@dag(dag_id="one_task", schedule=None, start_date=datetime(2026, 1, 1))
def one_task():
    @task_group
    def group():
        @task
        def work():
            return 1

        work()

    group()


one_task()
"""
# The DAG processor imports a file's airflow.* modules, then forks one parser per file
# (airflow/dag_processing/processor.py, parsing_pre_import_modules): the same here, three forks per file.
FORKED_PARSE = r"""
import json, os, sys, time
from airflow.sdk import dag  # noqa: F401 - what the processor pre-imports for these files
from airflow.dag_processing.dagbag import DagBag
HEAVY = json.loads(sys.argv[1])
def parse(path):
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        start = time.perf_counter()
        bag = DagBag(dag_folder=path)
        seconds = time.perf_counter() - start
        out = {"seconds": seconds, "errors": list(bag.import_errors), "heavy": [m for m in HEAVY if m in sys.modules]}
        os.write(write, json.dumps(out).encode())
        os._exit(0)
    os.close(write)
    data = b"".join(iter(lambda: os.read(read, 65536), b""))
    os.waitpid(pid, 0)
    return json.loads(data)
def best(path):
    runs = [parse(path) for _ in range(3)]  # the first one fills the config layout cache
    return {**min(runs, key=lambda r: r["seconds"]), "heavy": runs[-1]["heavy"], "first_heavy": runs[0]["heavy"]}
print(json.dumps({p: best(p) for p in sys.argv[2:]}))
"""
# Also kept out of a parse once the config's layout is cached (dag_layout.py): the config models.
PARSE_HEAVY = (*HEAVY, "include.patch_compliance.config")


def test_parse_time_against_an_empty_dag_file_is_printed(tmp_path):
    """A printed figure, not a timed assertion: each DAG file's parse time ÷ an empty DAG file's with the same
    Airflow import (target <= 2, issue 11). Asserted: no heavy module is loaded by a parse once the config's
    layout is cached (the first parse of a config validates it in full and may load the config models)."""
    empty, one_task = tmp_path / "empty_dag.py", tmp_path / "one_task_dag.py"
    empty.write_text(EMPTY_DAG)
    one_task.write_text(TASK_DAG)
    files = [str(empty), str(one_task), *(str(ROOT / "dags" / name) for name in DAG_FILES)]
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "PATCH_COMPLIANCE_LAYOUT_CACHE": str(tmp_path / "layout-cache"),
    }
    out = subprocess.run(
        [sys.executable, "-c", FORKED_PARSE, json.dumps(PARSE_HEAVY), *files],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    base, tasks = result.pop(str(empty)), result.pop(str(one_task))
    assert base["errors"] == [] and base["seconds"] > 0 and tasks["errors"] == []
    print(f"parse time empty DAG file: {base['seconds'] * 1000:.1f} ms")
    ratio = tasks["seconds"] / base["seconds"]
    print(f"parse time one-@task DAG file: {tasks['seconds'] * 1000:.1f} ms = {ratio:.1f} x the empty DAG file")
    for path, parsed in sorted(result.items()):
        assert parsed["errors"] == [], path
        print(
            f"parse time {Path(path).name}: {parsed['seconds'] * 1000:.1f} ms = "
            f"{parsed['seconds'] / base['seconds']:.1f} x the empty DAG file, "
            f"{parsed['seconds'] / tasks['seconds']:.1f} x the one-@task DAG file; "
            f"heavy modules: {parsed['heavy'] or 'none'} (first parse: {parsed['first_heavy'] or 'none'})"
        )
        assert parsed["heavy"] == [], path


def test_the_modules_dag_files_import_load_no_aws_sdk_or_dataframe_library():
    """The wiring the DAG files import keeps boto3, pandas, pyarrow and provider hooks for task execution."""
    probe = (
        "import json, sys\n"
        "import include.patch_compliance.orchestration.dag_wiring, include.patch_compliance.orchestration.params\n"
        "import include.patch_compliance.orchestration.assets, include.patch_compliance.orchestration.airflow_tasks\n"
        "import include.patch_compliance.config\n"
        f"print(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules]))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True, cwd=ROOT)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_every_dag_has_owner_tags_docs_and_no_catchup(dagbag):
    for dag in dagbag.dags.values():
        assert dag.tags, dag.dag_id
        assert dag.doc_md and len(dag.doc_md) > 200, dag.dag_id
        assert dag.catchup is False, dag.dag_id
        for t in dag.tasks:
            assert t.owner and t.owner != "airflow", f"{dag.dag_id}.{t.task_id} has no owner"


def test_aws_tasks_retry_with_exponential_backoff(dagbag):
    for dag in dagbag.dags.values():
        for t in dag.tasks:
            if t.task_id.rsplit(".", 1)[-1] in NO_AWS:
                continue
            assert t.retries >= 2, f"{dag.dag_id}.{t.task_id}"
            assert t.retry_exponential_backoff, f"{dag.dag_id}.{t.task_id}"
            assert t.max_retry_delay and t.max_retry_delay <= timedelta(hours=1)


@pytest.mark.parametrize("name", DAG_FILES)
def test_dag_files_are_thin_wiring(name):
    """Logic lives in include/: a DAG file has no AWS client or pandas of its own."""
    text = (ROOT / "dags" / name).read_text()
    for forbidden in ("boto3", "import pandas", "botocore", "airflow.decorators"):
        assert forbidden not in text, f"{name} uses {forbidden}"
