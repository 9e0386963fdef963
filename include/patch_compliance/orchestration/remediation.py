"""The remediation DAG's Airflow pieces: Install and rescan operators (the scan operator narrowed to explicit
nodes, so retries reuse their commands), publish operators, and the ``@task`` wrappers of the step bodies.

The run layer (pandas, boto3) is imported inside task execution, never while a DAG file is parsed."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow.sdk import get_current_context, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from include.patch_compliance.orchestration.operators import (
    PatchScanOperator,
    PublishFindingsOperator,
    PublishReportOperator,
)
from include.patch_compliance.vocab import RESCAN_WAVE

if TYPE_CHECKING:
    from airflow.sdk import Context

    from include.patch_compliance.records import Target
    from include.patch_compliance.runtime import RunContext
    from include.patch_compliance.scan.command import ScanRequest

log = logging.getLogger("airflow.task")

# The rescan is one shard: at most remediation.max_nodes nodes, a handful of account-regions.
RESCAN_SHARD: dict[str, Any] = {"wave": RESCAN_WAVE, "shard": 0, "label": "rescan", "targets": 0}


NOT_PLANNED = "select did not write a plan (it refused or failed, see its log): nothing was sent, nothing to do"


def _skip_unless_planned(context: Any) -> None:
    from include.patch_compliance import remediation_steps
    from include.patch_compliance.runtime import RunContext

    if not remediation_steps.planned(RunContext.from_airflow(context)):
        raise AirflowSkipException(NOT_PLANNED)


class RemediationInstallOperator(PatchScanOperator):
    """``AWS-RunPatchBaseline`` ``Operation=Install`` (``RebootOption`` from ``scan.reboot_option``) on exactly
    the plan's InstanceIds of one shard of a remediation wave, in batches of ≤ 50 per account-region; never
    Targets, never a whole account. Nodes no longer managed are left out (they would fail the whole batch).

    :param shard: the shard reference from the remediation plan: ``{"wave", "shard", "label", "targets"}``.
    """

    def __init__(self, *, shard: dict[str, Any], **kwargs) -> None:
        super().__init__(shard=shard, operation="Install", **kwargs)

    def shard_request(self, run: RunContext, operation: str, wave: str, shard: int) -> tuple[list[Target], ScanRequest]:
        from include.patch_compliance import remediation_steps

        return remediation_steps.install_request(run, wave, shard)


class RemediationRescanOperator(PatchScanOperator):
    """``Operation=Scan`` on the nodes whose patch state is older than their Install (decided once per run), so
    the verification reads fresh states. Runs after every wave, held or not (trigger rule ``all_done``)."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("trigger_rule", "all_done")
        super().__init__(shard=dict(RESCAN_SHARD), operation="Scan", **kwargs)

    def execute(self, context: Any) -> dict[str, Any]:
        _skip_unless_planned(context)
        return super().execute(context)

    def shard_request(self, run: RunContext, operation: str, wave: str, shard: int) -> tuple[list[Target], ScanRequest]:
        from include.patch_compliance import remediation_steps

        return remediation_steps.rescan_request(run)


class PublishRemediationOperator(PublishReportOperator):
    """Publish the ``remediation`` table (Parquet, CSV), report.html with its Remediation section and summary.json
    with the remediation block; ``latest/patch_compliance_remediate/summary.json`` last."""

    def execute(self, context: Any) -> dict[str, Any]:
        _skip_unless_planned(context)
        return super().execute(context)

    def publish(self, run: RunContext, context: Any) -> dict[str, Any]:
        from include.patch_compliance import remediation_publish

        return remediation_publish.report(run)


class PublishRemediationFindingsOperator(PublishFindingsOperator):
    """Security Hub lifecycle on the touched account-regions: fixed nodes' findings resolve (PASSED, ARCHIVED),
    the others are updated with their fresh state."""

    def execute(self, context: Any) -> dict[str, Any]:
        _skip_unless_planned(context)
        return super().execute(context)

    def publish(self, run: RunContext, context: Any) -> dict[str, Any]:
        from include.patch_compliance import remediation_publish

        return remediation_publish.security_hub(run)


def _run() -> tuple[RunContext, Context]:
    from include.patch_compliance.runtime import RunContext

    context = get_current_context()
    return RunContext.from_airflow(context), context


@task(task_id="select")
def select() -> dict[str, Any]:
    """Refuse without both opt-ins, above remediation.max_nodes or outside the change window; select the nodes
    from the latest scan, log and store the selection with every left-out reason, and write the plan."""
    from include.patch_compliance import remediation_steps
    from include.patch_compliance.remediate.select import SelectionError

    run, context = _run()
    try:
        return remediation_steps.select(run, context["params"], datetime.now(UTC))
    except (remediation_steps.RemediationRefused, SelectionError) as exc:  # settings must change: no retry
        raise AirflowFailException(str(exc)) from None


@task.short_circuit(task_id="proceed")
def proceed(selected: dict[str, Any]) -> bool:
    """False on a dry run (the default): the selection and plan are out, nothing is sent."""
    if selected["dry_run"]:
        log.info(
            "dry run: %d nodes selected, nothing sent; trigger with dry_run=false to install", selected["selected"]
        )
    return not selected["dry_run"]


@task(task_id="gate", trigger_rule="none_failed")
def gate(selected: dict[str, Any], wave: str, previous: str | None) -> list[dict[str, Any]]:
    """Release this wave's shards, or hold it (and every later wave) when the previous wave's Install failure
    ratio is above remediation.max_failure_ratio or the change window has closed."""
    from include.patch_compliance import remediation_steps

    run, _ = _run()
    decision = remediation_steps.gate(run, wave, previous, datetime.now(UTC))
    if decision["held"]:
        raise AirflowSkipException(decision["reason"])
    return selected["waves"].get(wave, [])


@task(task_id="verify", trigger_rule="all_done")
def verify() -> dict[str, Any]:
    """Collect every touched account-region after the Installs and the rescan (runs when a wave was held)."""
    from include.patch_compliance import remediation_steps

    run, _ = _run()
    if not remediation_steps.planned(run):
        raise AirflowSkipException(NOT_PLANNED)
    return remediation_steps.verify(run)
