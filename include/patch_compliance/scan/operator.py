"""PatchScanOperator: send this run's AWS-RunPatchBaseline commands to every account-region of one shard."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import BaseOperator

from include.patch_compliance.discover.plan import Plan
from include.patch_compliance.runtime import RunContext
from include.patch_compliance.scan.command import ScanRequest, resolve_operation, run_tag, scan_record
from include.patch_compliance.ui.links import XCOM_SSM_COMMAND, SsmRunCommandLink, ssm_command_url

# How far before the DAG run's start a retry looks for this run's earlier commands (clock skew margin).
LOOKBACK = timedelta(minutes=15)


def shard_targets(run: RunContext, wave: str, shard: int) -> list:
    plan = Plan.from_dict(run.get(run.key("plan")))
    return plan.waves[wave][shard]


class PatchScanOperator(BaseOperator):
    """Send ``AWS-RunPatchBaseline`` (Scan, or Install with the opt-in) to every account-region of a shard.

    Retries never send a second command: each target is first searched for this run's earlier commands
    (document, time window, Comment). Unreachable accounts and refused regions are recorded, not raised.

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
        context["pc_label"] = self.shard.get("label", "")
        run = RunContext.from_airflow(context)
        requested = self.operation if self.operation is not None else context["params"].get("operation")
        operation = resolve_operation(requested, run.cfg.scan)
        wave, shard = self.shard["wave"], int(self.shard["shard"])
        targets = shard_targets(run, wave, shard)
        started = context["dag_run"].start_date or datetime.now(UTC)
        req = ScanRequest(
            operation=operation, run_id=run.run_id, run_tag=run_tag(run.dag_id, run.run_id), scan=run.cfg.scan
        )
        with ThreadPoolExecutor(max_workers=run.cfg.orchestration.max_workers) as pool:
            records = list(pool.map(lambda t: scan_record(run.members.get, t, req, started - LOOKBACK), targets))
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
        first = next(((r["target"]["region"], r["commands"][0]["command_id"]) for r in records if r["commands"]), None)
        if first:
            context["ti"].xcom_push(key=XCOM_SSM_COMMAND, value=ssm_command_url(*first))
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
