"""The step operators: scan a shard (send the command), publish the reports, publish the findings."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from include.patch_compliance.orchestration.links import (
    S3ReportLink,
    SecurityHubFindingsLink,
    SsmRunCommandLink,
    persist,
    s3_report_fields,
    securityhub_fields,
    ssm_command_fields,
)

if TYPE_CHECKING:  # the step bodies and AWS modules load when a task runs, not when the DAG file is parsed
    from include.patch_compliance.records import Target
    from include.patch_compliance.runtime import RunContext
    from include.patch_compliance.scan.command import ScanRequest

# How far before the DAG run's start a retry looks for this run's earlier commands (clock skew margin).
LOOKBACK = timedelta(minutes=15)


class PatchScanOperator(BaseOperator):
    """Send ``AWS-RunPatchBaseline`` (Scan, or Install with the opt-in) to every account-region of a shard.

    Retries never send a second command: each target is first searched for this run's earlier commands
    (document, time window, Comment), and keep the first attempt's ``sent_at`` (the wait deadline's start).
    Unreachable accounts and refused regions are recorded, not raised.

    :param shard: the shard reference from the plan: ``{"wave", "shard", "label", "targets"}``.
    :param operation: ``Scan`` | ``Install``; ``None`` (default) takes the run's ``operation`` param.
    """

    # shard is a template field so a mapped task group resolves it (a MappedArgument until rendered).
    template_fields = ("shard", "operation")
    operator_extra_links = (SsmRunCommandLink(),)
    ui_color = "#d8e8f5"

    def __init__(self, *, shard: dict[str, Any], operation: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.shard = shard
        self.operation = operation

    def execute(self, context: Any) -> dict[str, Any]:
        from include.patch_compliance import run_staging
        from include.patch_compliance.runtime import RunContext
        from include.patch_compliance.scan.command import (
            first_command,
            keep_first_sent_at,
            resolve_operation,
            scan_record,
        )

        context["pc_label"] = self.shard.get("label", "")
        run = RunContext.from_airflow(context)
        requested = self.operation if self.operation is not None else context["params"].get("operation")
        operation = resolve_operation(requested, run.cfg.scan)
        wave, shard = self.shard["wave"], int(self.shard["shard"])
        started = context["dag_run"].start_date or datetime.now(UTC)
        targets, req = self.shard_request(run, operation, wave, shard)
        with ThreadPoolExecutor(max_workers=run.cfg.orchestration.max_workers) as pool:
            records = list(pool.map(lambda t: scan_record(run.members.get, t, req, started - LOOKBACK), targets))
        records = keep_first_sent_at(records, run_staging.staged(run, "scan", wave, shard) or [])
        run.put(run.key("scan", wave, shard), records)
        for rec in records:
            self.log.info(
                "%s/%s %s: %s command(s)%s",
                rec["target"]["account_id"],
                rec["target"]["region"],
                rec["status"],
                len(rec["commands"]),
                f" ({rec['error']['code']})" if rec["error"] else "",
            )
        first = first_command(records)
        if first:
            persist(SsmRunCommandLink, context, self, first[0], ssm_command_fields(*first))
        return {
            "wave": wave,
            "shard": shard,
            "label": self.shard.get("label", ""),
            "operation": operation,
            "targets": len(records),
            "commands": sum(len(r["commands"]) for r in records),
            "reused": sum(1 for r in records for c in r["commands"] if c["reused"]),
            "unreachable": sum(1 for r in records if r["status"] == "UNREACHABLE"),
            "errors": sum(1 for r in records if r["status"] == "ERROR"),
        }

    def shard_request(self, run: RunContext, operation: str, wave: str, shard: int) -> tuple[list[Target], ScanRequest]:
        """The shard's targets from the plan and the request they all get (a subclass may narrow both)."""
        from include.patch_compliance import run_staging
        from include.patch_compliance.scan.command import ScanRequest, run_tag

        req = ScanRequest(
            operation=operation, run_id=run.run_id, run_tag=run_tag(run.dag_id, run.run_id), scan=run.cfg.scan
        )
        return run_staging.load_plan(run).waves[wave][shard], req


class _PublishOperator(BaseOperator):
    """A publish step: runs even when a wave failed (trigger rule ``all_done``), so nothing already collected is
    lost; the final gate still fails the run. Whether there is anything to publish is decided from what this run
    produced (the upstream step's XCom, the staged data), never by publishing an empty run. Subclasses name the
    step body and store their console link."""

    ui_color: str

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("trigger_rule", "all_done")
        super().__init__(**kwargs)

    def execute(self, context: Any) -> dict[str, Any]:
        from include.patch_compliance import steps
        from include.patch_compliance.runtime import RunContext

        run = RunContext.from_airflow(context)
        try:
            result = self.publish(run, context)
        except steps.NothingToPublish as exc:  # the run's own data decides: a retry would say the same
            raise AirflowFailException(str(exc)) from None
        self.link(context, run, result)
        return result

    def publish(self, run: RunContext, context: Any) -> dict[str, Any]:
        raise NotImplementedError

    def link(self, context: Any, run: RunContext, result: dict[str, Any]) -> None:
        raise NotImplementedError


class PublishReportOperator(_PublishOperator):
    """Build the run's pandas tables from the staged raw documents and command outcomes, and publish Parquet
    (Hive-partitioned), CSV, summary.json and the HTML report to S3; ``latest/`` is written last. Fails without
    writing anything when discover did not succeed or nothing was collected (``steps.publishable_docs``).

    :param discover_task_id: the task whose XCom (the plan) shows that discover succeeded in this run.
    """

    operator_extra_links = (S3ReportLink(),)
    ui_color = "#d8f5e0"

    def __init__(self, *, discover_task_id: str = "discover", **kwargs) -> None:
        super().__init__(**kwargs)
        self.discover_task_id = discover_task_id

    def publish(self, run: RunContext, context: Any) -> dict[str, Any]:
        from include.patch_compliance import steps

        plan = context["ti"].xcom_pull(task_ids=self.discover_task_id)
        return steps.report(run, discovered=bool(plan))

    def link(self, context: Any, run: RunContext, result: dict[str, Any]) -> None:
        region = run.hub.session.region_name or "us-east-1"
        persist(S3ReportLink, context, self, region, s3_report_fields(run.bucket, result["run_prefix"]))


class PublishFindingsOperator(_PublishOperator):
    """Import one Security Hub finding per non-compliant node into each node's own account-region, update the
    ones seen again and archive the remediated or vanished ones. Disabled hubs and unreachable accounts are
    recorded, not fatal. Skipped when the report step published nothing in this run.

    :param report_task_id: the report task; its XCom shows that this run's reports were published.
    """

    operator_extra_links = (SecurityHubFindingsLink(),)
    ui_color = "#f5d8d8"

    def __init__(self, *, report_task_id: str = "report", **kwargs) -> None:
        super().__init__(**kwargs)
        self.report_task_id = report_task_id

    def publish(self, run: RunContext, context: Any) -> dict[str, Any]:
        from include.patch_compliance import steps

        if not context["ti"].xcom_pull(task_ids=self.report_task_id):
            raise AirflowSkipException(f"{self.report_task_id} published nothing in this run: no findings to import")
        return steps.security_hub(run)

    def link(self, context: Any, run: RunContext, result: dict[str, Any]) -> None:
        persist(SecurityHubFindingsLink, context, self, run.cfg.regions[0], securityhub_fields())
