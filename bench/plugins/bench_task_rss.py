"""Bench-only Airflow plugin (loaded by bench/bench_scale.py, never by the product): when a task instance ends,
its task process appends its own peak RSS to the JSON-lines file ``PC_BENCH_RSS_FILE``.

The peak is the process's VmHWM (/proc/self/status), which counts the pages it shares with the worker process it
was forked from, so it is an upper bound of what the task itself needs. Listeners run in the task process
(``airflow.sdk.execution_time.task_runner`` calls ``on_task_instance_success``/``failed`` there).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from airflow.listeners import hookimpl
from airflow.plugins_manager import AirflowPlugin


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _record(task_instance: Any, state: str) -> None:
    target = os.environ.get("PC_BENCH_RSS_FILE")
    if not target:
        return
    line = {
        "dag_id": task_instance.dag_id,
        "run_id": task_instance.run_id,
        "task_id": task_instance.task_id,
        "map_index": getattr(task_instance, "map_index", -1),
        "try_number": getattr(task_instance, "try_number", None),
        "state": state,
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "pid": os.getpid(),
    }
    with open(target, "a", encoding="utf-8") as out:  # one short line per write: O_APPEND keeps lines whole
        out.write(json.dumps(line) + "\n")


class _Listener:
    @hookimpl
    def on_task_instance_success(self, previous_state: Any, task_instance: Any) -> None:
        _record(task_instance, "success")

    @hookimpl
    def on_task_instance_failed(self, previous_state: Any, task_instance: Any, error: Any) -> None:
        _record(task_instance, "failed")


class BenchTaskRssPlugin(AirflowPlugin):
    name = "bench_task_rss"
    listeners = [_Listener()]
