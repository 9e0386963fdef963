"""ShardCommandsSensor: wait until every command of a shard is terminal, then record every invocation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator

from include.patch_compliance.orchestration.links import SsmRunCommandLink, persist, ssm_command_fields

if TYPE_CHECKING:  # the run layer and AWS modules load at execution, not when the DAG file is parsed
    from include.patch_compliance.records import ScanRecord
    from include.patch_compliance.runtime import RunContext
    from include.patch_compliance.wait.status import Progress


def deadline_for(scan_records: list[ScanRecord], timeout_seconds: int) -> datetime:
    """The wait ends ``timeout_seconds`` after the shard's first command was sent (derived, so a rescheduled
    or retried sensor keeps the same deadline)."""
    sent = [datetime.fromisoformat(r["sent_at"]) for r in scan_records if r.get("sent_at")]
    start = min(sent) if sent else datetime.now(UTC)
    return start + timedelta(seconds=timeout_seconds)


class ShardCommandsSensor(BaseSensorOperator):
    """Wait for this run's SSM commands in one shard, without holding a worker slot (deferrable, or reschedule
    mode as the fallback). Failed, undeliverable or timed-out nodes do not fail the task: they are data for the
    report. At the configured timeout the wait stops and unfinished invocations are recorded as such.

    Each check is one paged ListCommands per account-region with a command still running; when the wait is
    over each command's invocations are read once, with the states the last check saw.

    :param shard: the shard reference from the plan: ``{"wave", "shard", "label", "targets"}``.
    :param deferrable: hand the wait to the triggerer; ``None`` takes ``scan.wait.deferrable`` from the config.
    """

    # shard is a template field so a mapped task group resolves it (a MappedArgument until rendered).
    template_fields = ("shard",)
    operator_extra_links = (SsmRunCommandLink(),)
    ui_color = "#f5ecd8"

    def __init__(self, *, shard: dict[str, Any], deferrable: bool | None = None, **kwargs) -> None:
        # Without deferral the sensor reschedules between pokes: no worker slot is held either way.
        kwargs.setdefault("mode", "reschedule")
        # Our own deadline ends the wait gracefully; Airflow's sensor timeout is only a backstop.
        kwargs.setdefault("timeout", 8 * 24 * 3600)
        super().__init__(**kwargs)
        self.shard = shard
        self.deferrable = deferrable
        self._last: Progress | None = None  # the latest check of this try
        self._fresh = False  # execute() has just checked: the first poke() uses that check

    def _load(self, context: Any) -> tuple[RunContext, list[ScanRecord]]:
        from include.patch_compliance.runtime import RunContext

        context["pc_label"] = self.shard.get("label", "")
        run = RunContext.from_airflow(context)
        self.poke_interval = run.cfg.scan.wait.poke_interval_seconds
        return run, run.get(run.key("scan", self.shard["wave"], int(self.shard["shard"])))

    def _check(self, run: RunContext, records: list[ScanRecord]) -> Progress:
        from include.patch_compliance.wait.status import shard_progress

        known = self._last.states if self._last else None
        self._last = shard_progress(run.members.get, records, document_name=run.cfg.scan.document_name, known=known)
        self.log.info(
            "%d of %d commands terminal (%d account-regions polled)",
            self._last.finished,
            self._last.commands,
            self._last.polled,
        )
        return self._last

    def execute(self, context: Any) -> dict[str, Any]:
        from include.patch_compliance.scan.command import first_command

        run, records = self._load(context)
        # The link is known before the wait starts: stored now, it is there when the task defers (the worker
        # formats every declared link at deferral too).
        first = first_command(records)
        if first:
            persist(SsmRunCommandLink, context, self, first[0], ssm_command_fields(*first))
        deadline = deadline_for(records, run.cfg.scan.wait.timeout_seconds)
        deferrable = run.cfg.scan.wait.deferrable if self.deferrable is None else self.deferrable
        # Deferrable: the trigger makes the first check at once, so the worker assumes no member role and polls
        # nothing (a scan's commands are never done the moment it returns: they run for tens of seconds at least).
        progress = None if deferrable else self._check(run, records)
        if progress is not None and progress.done:
            return self._finish(context, run, records, None)
        if datetime.now(UTC) >= deadline:
            return self._finish(context, run, records, self._timeout_text(run))
        if deferrable:
            from include.patch_compliance.orchestration.triggers import ShardCommandsTrigger

            self.defer(
                trigger=ShardCommandsTrigger(
                    scan_records=[
                        {"target": r["target"], "commands": r["commands"], "sent_at": r.get("sent_at")} for r in records
                    ],
                    access=run.cfg.access.model_dump(),
                    session_name=run.session_name,
                    poke_interval=float(self.poke_interval),
                    deadline=deadline.isoformat(),
                    document_name=run.cfg.scan.document_name,
                    states=None,
                ),
                method_name="execute_complete",
            )
        self._fresh = True
        super().execute(context)  # reschedule mode: poke() until done or the deadline
        timed_out = datetime.now(UTC) >= deadline and not (self._last and self._last.done)
        return self._finish(context, run, records, self._timeout_text(run) if timed_out else None)

    def poke(self, context: Any) -> bool:
        if self._fresh and self._last is not None:  # execute() checked a moment ago: no second call
            self._fresh = False
            return self._last.done
        run, records = self._load(context)
        if datetime.now(UTC) >= deadline_for(records, run.cfg.scan.wait.timeout_seconds):
            return True
        return self._check(run, records).done

    def execute_complete(self, context: Any, event: dict[str, Any]) -> dict[str, Any]:
        from include.patch_compliance.wait.status import Progress

        run, records = self._load(context)
        if event.get("status") not in ("done", "timeout"):
            raise RuntimeError(f"wait trigger ended with {event!r}")
        self._last = Progress(commands=0, finished=0, errors=[], states=event.get("states") or {})
        return self._finish(context, run, records, self._timeout_text(run) if event["status"] == "timeout" else None)

    @staticmethod
    def _timeout_text(run: RunContext) -> str:
        return f"still running when the wait timed out after {run.cfg.scan.wait.timeout_seconds} s"

    def _finish(
        self, context: Any, run: RunContext, records: list[ScanRecord], wait_error: str | None
    ) -> dict[str, Any]:
        from include.patch_compliance.wait.status import failure_ratio, outcome_records

        wave, shard = self.shard["wave"], int(self.shard["shard"])
        states = self._last.states if self._last else None
        outcomes = outcome_records(run.members.get, records, wait_error, states=states)
        run.put(run.key("commands", wave, shard), outcomes)
        ratio, failed, total = failure_ratio(outcomes)
        by_details: dict[str, int] = {}
        for o in outcomes:
            if o.get("instance_id"):
                by_details[o.get("status_details") or "unknown"] = (
                    by_details.get(o.get("status_details") or "unknown", 0) + 1
                )
        self.log.info("shard %s/%s: %d invocations, %d not successful %s", wave, shard, total, failed, by_details)
        first = next(((str(o["region"]), str(o["command_id"])) for o in outcomes if o.get("command_id")), None)
        if first:
            persist(SsmRunCommandLink, context, self, first[0], ssm_command_fields(*first))
        return {
            "wave": wave,
            "shard": shard,
            "invocations": total,
            "failed": failed,
            "failure_ratio": ratio,
            "by_status": by_details,
            "timed_out": wait_error is not None,
        }
