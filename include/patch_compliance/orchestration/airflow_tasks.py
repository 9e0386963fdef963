"""The ``@task`` wrappers: each reads the run context and calls one plain step body of ``steps.py``."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, cast

from airflow.sdk import get_current_context, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

if TYPE_CHECKING:  # the step bodies and AWS modules load when a task runs, not when the DAG file is parsed
    from airflow.sdk import Context

    from include.patch_compliance.runtime import RunContext

log = logging.getLogger("airflow.task")


def _run() -> tuple[RunContext, Context]:
    from include.patch_compliance.runtime import RunContext

    context = get_current_context()
    return RunContext.from_airflow(context), context


@task(task_id="discover")
def discover() -> dict[str, Any]:
    """Validate the config, walk the organization and write the fleet plan to S3."""
    from include.patch_compliance.discover.plan import PlanError
    from include.patch_compliance.scan.command import InstallNotAllowed

    run, context = _run()
    try:
        return _discover(run, context["params"])
    except (PlanError, InstallNotAllowed, ValueError) as exc:  # the config or params must change: no retry
        raise AirflowFailException(str(exc)) from None


def _discover(run: RunContext, params: dict[str, Any]) -> dict[str, Any]:
    from include.patch_compliance import steps
    from include.patch_compliance.naming import known_region, one_partition
    from include.patch_compliance.scan.command import resolve_operation

    if params.get("regions"):
        try:
            one_partition([known_region(r) for r in params["regions"]])
        except ValueError as exc:
            raise ValueError(f"run param regions {params['regions']}: {exc}") from None
    if "operation" in params:
        operation = resolve_operation(params["operation"], run.cfg.scan)  # refuses Install without the opt-in
        parallel = [w.name for w in run.cfg.waves if w.parallel_with_previous]
        if operation == "Install" and parallel:
            raise ValueError(
                f"Install runs need waves in sequence, but waves {parallel} have parallel_with_previous: true; "
                "set it to false or run a Scan"
            )
    plan = steps.plan_fleet(run, params.get("ou_ids"), params.get("regions"))
    log.info(
        "plan: %d account-regions in %d accounts, %d skipped, waves %s",
        plan["targets"],
        plan["accounts"],
        plan["skipped"],
        {w: len(s) for w, s in plan["waves"].items()},
    )
    return plan


@task.short_circuit(task_id="proceed")
def proceed() -> bool:
    """False on a dry run: everything after the plan is skipped."""
    return not get_current_context()["params"].get("dry_run", False)


@task(task_id="gate", trigger_rule="none_failed")
def gate(plan: dict[str, Any], wave: str, previous: str | None) -> list[dict[str, Any]]:
    """Release this wave's shards, or hold an Install wave when the previous wave failed too often. Runs when
    the previous wave was skipped (an empty wave, or held: then this one is held too)."""
    from include.patch_compliance import steps
    from include.patch_compliance.scan.command import InstallNotAllowed, resolve_operation

    run, context = _run()
    try:
        operation = resolve_operation(context["params"].get("operation"), run.cfg.scan)
    except InstallNotAllowed as exc:
        raise AirflowFailException(str(exc)) from None
    decision = steps.wave_gate(run, wave, previous, operation)
    if decision["held"]:
        raise AirflowSkipException(decision["reason"])
    return plan["waves"].get(wave, [])


@task(task_id="collect", map_index_template="{{ pc_label }}")
def collect(shard: dict[str, Any]) -> dict[str, Any]:
    """Collect patch states, patches, compliance items, node and EC2 info of every target in the shard."""
    from include.patch_compliance import steps

    run, context = _run()
    # A map_index_template variable is set in the task's context (Airflow docs, Dynamic Task Mapping, "Named
    # mapping"); Context's TypedDict does not list custom keys.
    cast(dict, context)["pc_label"] = shard.get("label", "")
    return steps.collect_shard(run, shard)


@task(task_id="final_gate", trigger_rule="none_failed")
def final_gate(report: dict[str, Any]) -> str:
    """Fail the run, after the reports are published, above the unreachable threshold or if a wave was held."""
    from include.patch_compliance import steps

    run, _ = _run()
    try:
        verdict = steps.final_gate(run, report.get("totals", {}))
    except RuntimeError as exc:  # a verdict on this run's data: retrying would give the same answer
        raise AirflowFailException(str(exc)) from None
    log.info(verdict)
    return verdict


@task(task_id="alert", trigger_rule="all_done")
def alert() -> dict[str, Any]:
    """Send the digest of what changed since the last published run (alerts: in the config), and always when
    the run failed. A task, not a DAG callback: it runs on the worker with its AWS and Slack connections (DAG
    callbacks run in the dag-processor)."""
    from include.patch_compliance import alert_steps

    run, context = _run()
    states = context["ti"].get_task_states(dag_id=run.dag_id, run_ids=[run.run_id]).get(run.run_id, {})
    failed = sorted(t for t, state in states.items() if state in ("failed", "upstream_failed") and t != "alert")
    result = alert_steps.alert(run, failed_tasks=failed, aws_conn_id=run.cfg.access.aws_conn_id)
    log.info("alert: %s", result)
    return result


@task(task_id="shards")
def all_shards(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """Every shard of every wave, flattened: collection needs no wave order."""
    return [ref for refs in plan["waves"].values() for ref in refs]


@task(task_id="fleet_daily")
def fleet_daily() -> dict[str, Any]:
    """Rebuild the fleet_daily table from the published history of both DAGs."""
    from include.patch_compliance import steps

    run, _ = _run()
    return steps.trends(run)
