"""How the remediation DAG is assembled: select → proceed (not on a dry run) → canary wave → the config's waves
(each: gate → install → wait per shard) → rescan → rescan_wait → verify → report → security_hub → final_gate."""

from __future__ import annotations

from typing import Any

from airflow.sdk import TaskGroup, task_group

from include.patch_compliance.orchestration import airflow_tasks, remediation
from include.patch_compliance.orchestration.sensors import ShardCommandsSensor
from include.patch_compliance.vocab import CANARY_WAVE, REMEDIATION_WAVES

LABEL = "{{ pc_label }}"


@task_group(group_id="shards")
def install_pipeline(shard: dict[str, Any]) -> None:
    """One shard of a wave's account-regions: Install on their selected nodes → wait (mapped per shard)."""
    install = remediation.RemediationInstallOperator(task_id="install", shard=shard, map_index_template=LABEL)
    wait = ShardCommandsSensor(task_id="wait", shard=shard, map_index_template=LABEL)
    install >> wait


def remediation_pipeline(waves: list[dict[str, Any]]) -> Any:
    """Waves always run in sequence (``parallel_with_previous`` does not apply: each gate judges the wave before
    it). Returns the final gate."""
    selected = remediation.select()
    frontier: Any = remediation.proceed(selected)
    selected >> frontier
    previous = None
    groups = []
    # A config wave with a reserved name would duplicate a task group id and break parsing; the config refuses it
    # when remediation is enabled, and select reports that.
    config_waves = [(w["name"], ", ".join(w["ous"])) for w in waves if w["name"] not in REMEDIATION_WAVES]
    for name, ous in [(CANARY_WAVE, "the canary nodes"), *config_waves]:
        with TaskGroup(group_id=f"wave_{name}", tooltip=f"Remediation wave {name}: {ous}") as group:
            group.doc_md = (
                f"**Remediation wave `{name}`** installs patches on the selected nodes of {ous}. A skipped wave "
                "was held by its gate (see the gate task's log): the previous wave failed too often, or the change "
                "window closed."
            )
            shards = remediation.gate(selected, wave=name, previous=previous)
            install_pipeline.expand(shard=shards)
        frontier >> group
        frontier, previous = group, name
        groups.append(group)
    rescan = remediation.RemediationRescanOperator(task_id="rescan")
    rescan_wait = ShardCommandsSensor(task_id="rescan_wait", shard=dict(remediation.RESCAN_SHARD))
    verified = remediation.verify()
    report = remediation.PublishRemediationOperator(task_id="report")
    findings = remediation.PublishRemediationFindingsOperator(task_id="security_hub")
    final = airflow_tasks.final_gate(report.output)
    frontier >> rescan >> rescan_wait >> verified >> report >> findings >> final
    groups >> final  # a broken wave step fails the run even though the report still went out
    return final
