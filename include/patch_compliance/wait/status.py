"""Is every command of a shard terminal, and what did each invocation end as.

Why not the provider's SsmRunCommandCompletedSensor/trigger: they read one page of invocations, wait on nothing
when Targets leave InstanceIds empty, and end early on zero invocations (docs/aws-behaviours.md §23).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from include.patch_compliance.aws import AwsContext, TargetUnreachable, error_code, paginate

# Command-level Status values that are final; Pending/InProgress/Cancelling are not (docs/aws-behaviours.md §3).
TERMINAL_COMMAND_STATUSES = frozenset({"Success", "Cancelled", "Failed", "TimedOut"})
# Invocation Status values that are final (CommandInvocationStatus enum, docs/aws-behaviours.md §3).
TERMINAL_INVOCATION_STATUSES = frozenset({"Success", "Cancelled", "TimedOut", "Failed"})


@dataclass(frozen=True)
class Progress:
    commands: int
    finished: int
    errors: list[str]

    @property
    def done(self) -> bool:
        return self.finished >= self.commands


def _commands_by_account_region(scan_records: list[dict[str, Any]]) -> list[tuple[dict[str, Any], str]]:
    return [(rec["target"], c["command_id"]) for rec in scan_records for c in rec.get("commands", [])]


def command_state(ssm: Any, command_id: str) -> dict[str, Any] | None:
    """ListCommands for one id; None while the service does not show it yet (eventual consistency)."""
    try:
        commands = ssm.list_commands(CommandId=command_id)["Commands"]
    except ClientError as exc:
        if error_code(exc) == "InvalidCommandId":
            return None
        raise
    return commands[0] if commands else None


def shard_progress(account_context: Callable[[str], AwsContext], scan_records: list[dict[str, Any]]) -> Progress:
    """How many of the shard's commands are terminal. An account or call that fails now counts as finished
    (its outcome records will say why): a broken account must not hold the whole shard until the timeout."""
    pairs = _commands_by_account_region(scan_records)
    finished, errors = 0, []
    for target, command_id in pairs:
        try:
            ssm = account_context(target["account_id"]).client("ssm", target["region"])
            state = command_state(ssm, command_id)
        except (TargetUnreachable, ClientError, BotoCoreError) as exc:
            finished += 1
            errors.append(f"{target['account_id']}/{target['region']}/{command_id}: {exc}")
            continue
        if state is not None and state["Status"] in TERMINAL_COMMAND_STATUSES:
            finished += 1
    return Progress(commands=len(pairs), finished=finished, errors=errors)


def _base(target: dict[str, Any]) -> dict[str, Any]:
    keys = ("ou_id", "ou_path", "account_id", "account_name", "region", "wave")
    return {k: target.get(k) for k in keys}


def _iso(value: Any) -> str | None:
    return value.isoformat() if hasattr(value, "isoformat") else (value or None)


def invocation_records(ssm: Any, target: dict[str, Any], command_id: str, wait_error: str | None) -> list[dict]:
    """One record per invocation, every page (the provider reads only the first 50, docs/aws-behaviours.md §23)."""
    state = command_state(ssm, command_id) or {}
    head = {
        **_base(target),
        "command_id": command_id,
        "command_status": state.get("Status"),
        "command_status_details": state.get("StatusDetails"),
    }
    records = []
    for inv in paginate(ssm, "list_command_invocations", "CommandInvocations", CommandId=command_id, Details=True):
        plugins = inv.get("CommandPlugins") or [{}]
        plugin = plugins[0]
        terminal = inv.get("Status") in TERMINAL_INVOCATION_STATUSES
        records.append(
            {
                **head,
                "instance_id": inv.get("InstanceId"),
                "status": inv.get("Status"),
                "status_details": inv.get("StatusDetails"),
                "response_code": plugin.get("ResponseCode"),
                "plugin": plugin.get("Name"),
                "requested_at": _iso(inv.get("RequestedDateTime")),
                "started_at": _iso(plugin.get("ResponseStartDateTime")),
                "finished_at": _iso(plugin.get("ResponseFinishDateTime")),
                "error": None if terminal else wait_error,
            }
        )
    if not records:
        # A Targets command that matched nothing ends "No Instances In Tag" with no invocations
        # (docs/aws-behaviours.md §3).
        records.append(
            {
                **head,
                "instance_id": None,
                "status": None,
                "status_details": None,
                "response_code": None,
                "plugin": None,
                "requested_at": _iso(state.get("RequestedDateTime")),
                "started_at": None,
                "finished_at": None,
                "error": wait_error if state.get("Status") not in TERMINAL_COMMAND_STATUSES else None,
            }
        )
    return records


def outcome_records(
    account_context: Callable[[str], AwsContext], scan_records: list[dict[str, Any]], wait_error: str | None = None
) -> list[dict[str, Any]]:
    """Every invocation outcome of a shard, plus one record per target that has no command, with the reason."""
    out: list[dict[str, Any]] = []
    empty = {
        "command_id": None,
        "command_status": None,
        "command_status_details": None,
        "instance_id": None,
        "status": None,
        "status_details": None,
        "response_code": None,
        "plugin": None,
        "requested_at": None,
        "started_at": None,
        "finished_at": None,
    }
    for rec in scan_records:
        target = rec["target"]
        if not rec.get("commands"):
            err = rec.get("error")
            reason = f"{err['stage']}: {err['code']}: {err['message']}" if err else rec.get("status")
            out.append({**_base(target), **empty, "error": reason, "target_status": rec.get("status")})
            continue
        for command in rec["commands"]:
            try:
                ssm = account_context(target["account_id"]).client("ssm", target["region"])
                rows = invocation_records(ssm, target, command["command_id"], wait_error)
            except (TargetUnreachable, ClientError, BotoCoreError) as exc:
                rows = [
                    {
                        **_base(target),
                        **empty,
                        "command_id": command["command_id"],
                        "error": f"collect outcome: {error_code(exc)}: {exc}",
                    }
                ]
            out += [{**row, "target_status": rec.get("status")} for row in rows]
    return out


def failure_ratio(records: list[dict[str, Any]]) -> tuple[float, int, int]:
    """Share of invocations that did not succeed (for gating an Install wave). Returns (ratio, failed, total)."""
    invocations = [r for r in records if r.get("instance_id")]
    failed = sum(1 for r in invocations if r.get("status") != "Success")
    return (failed / len(invocations) if invocations else 0.0), failed, len(invocations)
