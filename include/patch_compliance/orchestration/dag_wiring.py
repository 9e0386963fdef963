"""How the scan and collect DAGs are assembled from the step tasks (kept out of the DAG files)."""

from __future__ import annotations

from typing import Any

from airflow.sdk import TaskGroup, task_group

from include.patch_compliance.orchestration import airflow_tasks
from include.patch_compliance.orchestration.assets import table_assets
from include.patch_compliance.orchestration.operators import (
    PatchScanOperator,
    PublishFindingsOperator,
    PublishReportOperator,
)
from include.patch_compliance.orchestration.sensors import ShardCommandsSensor

LABEL = "{{ pc_label }}"


@task_group(group_id="shards")
def shard_pipeline(shard: dict[str, Any]) -> None:
    """One shard of account-regions: scan → wait → collect (mapped: one instance per shard)."""
    scan = PatchScanOperator(task_id="scan", shard=shard, map_index_template=LABEL)
    wait = ShardCommandsSensor(task_id="wait", shard=shard, map_index_template=LABEL)
    scan >> wait >> airflow_tasks.collect(shard)


def scan_waves(plan: Any, waves: list[dict[str, Any]]) -> list[Any]:
    """One task group per wave, chained in config order (a wave may run beside the previous one). Returns the
    groups whose end the publish chain waits for."""
    go = airflow_tasks.proceed()
    plan >> go
    # frontier: what the next sequential wave waits for; base: what a parallel wave shares with its predecessor.
    frontier: list[Any] = [go]
    base: list[Any] = [go]
    previous_name = None
    groups = []
    for wave in waves:
        ous = ", ".join(wave["ous"])
        with TaskGroup(group_id=f"wave_{wave['name']}", tooltip=f"Wave {wave['name']}: {ous}") as group:
            group.doc_md = (
                f"**Wave `{wave['name']}`** scans OUs {ous}. A failed task here means the step itself broke "
                "(S3, AWS credentials); failed nodes are data, not failures. A skipped wave was held back by "
                "the Install gate (see the gate task's log)."
            )
            refs = airflow_tasks.gate(plan, wave=wave["name"], previous=previous_name)
            shard_pipeline.expand(shard=refs)
        if wave["parallel"]:
            base >> group
            frontier.append(group)
        else:
            frontier >> group
            base, frontier = frontier, [group]
        previous_name = wave["name"]
        groups.append(group)
    return groups


def publish_chain(upstream: list[Any]) -> Any:
    """report → security_hub → final_gate, and security_hub → alert. The final gate also waits on the waves
    directly, so a failed step fails the run even though the reports still went out. The alert runs whatever
    happened before it (all_done) beside the gate: both are leaves, so the run fails when either does (a leaf
    after the gate that succeeded would hide the gate's failure)."""
    report = PublishReportOperator(task_id="report", outlets=table_assets())
    findings = PublishFindingsOperator(task_id="security_hub")
    gate = airflow_tasks.final_gate(report.output)
    upstream >> report >> findings >> gate
    findings >> airflow_tasks.alert()
    upstream >> gate
    return gate


def collect_only(plan: Any) -> Any:
    """discover → collect every shard (no command is sent) → publish chain."""
    go = airflow_tasks.proceed()
    refs = airflow_tasks.all_shards(plan)
    plan >> go >> refs
    collected = airflow_tasks.collect.expand(shard=refs)
    return publish_chain([collected])
