"""Is every command of a shard terminal, and what did each invocation end as.

A check reads every command of the run in an account-region from one paged ListCommands (filtered on the run's
time window and document) and never asks again for a command already known terminal; each command's
invocations are read once, when the wait is over.

Why not the provider's SsmRunCommandCompletedSensor/trigger: they read one page of invocations, wait on nothing
when Targets leave InstanceIds empty, and end early on zero invocations (docs/aws-behaviours.md §23).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from botocore.exceptions import BotoCoreError, ClientError

from include.patch_compliance.aws import AwsContext, TargetUnreachable, error_code, paginate
from include.patch_compliance.records import CommandOutcome

# Command-level Status values that are final; Pending/InProgress/Cancelling are not (docs/aws-behaviours.md §3).
TERMINAL_COMMAND_STATUSES = frozenset({"Success", "Cancelled", "Failed", "TimedOut"})
# Invocation Status values that are final (CommandInvocationStatus enum, docs/aws-behaviours.md §3).
TERMINAL_INVOCATION_STATUSES = frozenset({"Success", "Cancelled", "TimedOut", "Failed"})
# How far before a target's first ``sent_at`` the listing reaches: clock skew between this host and SSM, and
# commands a retried scan reused from its earlier attempt. Commands still missing are then asked for by id.
LISTING_MARGIN = timedelta(minutes=15)
# ListCommands MaxResults is 1..50 (docs/aws-behaviours.md §4).
PAGE_SIZE = 50


@dataclass(frozen=True)
class Progress:
    """One check of a shard. ``states``: the last seen state of each command (JSON-ready, by command id), so a
    later check skips the terminal ones and the outcome step needs no ListCommands of its own."""

    commands: int
    finished: int
    errors: list[str]
    states: dict[str, dict[str, Any]] = field(default_factory=dict)
    polled: int = 0  # account-regions asked this time

    @property
    def done(self) -> bool:
        return self.finished >= self.commands


def is_terminal(state: dict[str, Any] | None) -> bool:
    return state is not None and state.get("Status") in TERMINAL_COMMAND_STATUSES


def _state(command: dict[str, Any]) -> dict[str, Any]:
    """What the wait keeps of a Command: JSON-ready (it travels in the trigger's event)."""
    return {
        "Status": command.get("Status"),
        "StatusDetails": command.get("StatusDetails"),
        "RequestedDateTime": _iso(command.get("RequestedDateTime")),
    }


def command_state(ssm: Any, command_id: str) -> dict[str, Any] | None:
    """ListCommands for one id; None while the service does not show it yet (eventual consistency)."""
    try:
        commands = ssm.list_commands(CommandId=command_id)["Commands"]
    except ClientError as exc:
        if error_code(exc) == "InvalidCommandId":
            return None
        raise
    return commands[0] if commands else None


def list_states(
    ssm: Any, command_ids: list[str], *, invoked_after: datetime, document_name: str | None
) -> dict[str, dict[str, Any]]:
    """The states of these commands of one account-region from one paged ListCommands, filtered on the run's
    time window (and document). Pages come newest first, so paging stops once every id was seen; an id the
    listing does not show (not visible yet, or sent before the window) is asked for by id."""
    wanted = set(command_ids)
    filters = [{"key": "InvokedAfter", "value": invoked_after.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}]
    if document_name:
        filters.append({"key": "DocumentName", "value": document_name})
    found: dict[str, dict[str, Any]] = {}
    pages = ssm.get_paginator("list_commands").paginate(Filters=filters, PaginationConfig={"PageSize": PAGE_SIZE})
    for page in pages:
        found.update({c["CommandId"]: _state(c) for c in page.get("Commands", []) if c["CommandId"] in wanted})
        if len(found) == len(wanted):
            break
    for command_id in sorted(wanted - set(found)):
        state = command_state(ssm, command_id)
        if state is not None:
            found[command_id] = _state(state)
    return found


def _by_account_region(scan_records: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """The shard's commands per (account, region), with the earliest ``sent_at`` there (None if unknown)."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for rec in scan_records:
        ids = [c["command_id"] for c in rec.get("commands", [])]
        if not ids:
            continue
        target = rec["target"]
        group = groups.setdefault((target["account_id"], target["region"]), {"ids": [], "since": [], "dated": True})
        group["ids"] += ids
        if rec.get("sent_at"):
            sent = datetime.fromisoformat(rec["sent_at"])
            group["since"].append(sent if sent.tzinfo else sent.replace(tzinfo=UTC))
        else:
            group["dated"] = False
    return groups


def shard_progress(
    account_context: Callable[[str], AwsContext],
    scan_records: Sequence[Mapping[str, Any]],
    *,
    document_name: str | None = None,
    known: dict[str, dict[str, Any]] | None = None,
) -> Progress:
    """How many of the shard's commands are terminal, at one paged ListCommands per account-region that still
    has a command not known to be terminal (``known``: states from an earlier check; terminal ones are never
    asked for again). Records without ``sent_at`` fall back to one ListCommands per command. An account or call
    that fails now counts as finished (its outcome records will say why): a broken account must not hold the
    whole shard until the timeout."""
    states = {cid: state for cid, state in (known or {}).items() if is_terminal(state)}
    failed: set[str] = set()
    errors: list[str] = []
    polled = 0
    groups = _by_account_region(scan_records)
    for (account_id, region), group in groups.items():
        waiting = [cid for cid in group["ids"] if cid not in states]
        if not waiting:
            continue
        polled += 1
        try:
            ssm = account_context(account_id).client("ssm", region)
            if group["dated"] and group["since"]:
                since = min(group["since"]) - LISTING_MARGIN
                seen = list_states(ssm, waiting, invoked_after=since, document_name=document_name)
            else:
                seen = {cid: _state(found) for cid in waiting if (found := command_state(ssm, cid)) is not None}
        except (TargetUnreachable, ClientError, BotoCoreError) as exc:
            failed.update(waiting)
            errors.append(f"{account_id}/{region}: {exc}")
            continue
        states.update(seen)
    ids = [cid for group in groups.values() for cid in group["ids"]]
    finished = sum(1 for cid in ids if cid in failed or is_terminal(states.get(cid)))
    return Progress(commands=len(ids), finished=finished, errors=errors, states=states, polled=polled)


def _base(target: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("ou_id", "ou_path", "account_id", "account_name", "region", "wave")
    return {k: target.get(k) for k in keys}


def _iso(value: Any) -> str | None:
    return value.isoformat() if hasattr(value, "isoformat") else (value or None)


# What the SSM Agent writes as the Output of a document step whose precondition does not match the node
# (docs/aws-behaviours.md §27).
SKIPPED_STEP_OUTPUT = "Step execution skipped"


def plugin_that_ran(plugins: list[dict[str, Any]]) -> dict[str, Any]:
    """The document step that ran on the node. AWS-RunPatchBaseline has one step per platform and reports the
    others as skipped (response code 0, start = end): on Linux the skipped PatchWindows comes first, before
    PatchLinux (docs/aws-behaviours.md §27). Without Details, or while nothing ran yet, the first step."""
    ran = [p for p in plugins if not str(p.get("Output") or "").startswith(SKIPPED_STEP_OUTPUT)]
    return (ran or plugins or [{}])[0]


def invocation_records(
    ssm: Any, target: Mapping[str, Any], command_id: str, wait_error: str | None, *, state: dict[str, Any] | None = None
) -> list[dict]:
    """One record per invocation, every page (the provider reads only the first 50, docs/aws-behaviours.md §23).
    ``state``: the command's state from the wait; without it one ListCommands asks for it."""
    if state is None:
        state = command_state(ssm, command_id) or {}
    head = {
        **_base(target),
        "command_id": command_id,
        "command_status": state.get("Status"),
        "command_status_details": state.get("StatusDetails"),
    }
    records = []
    for inv in paginate(ssm, "list_command_invocations", "CommandInvocations", CommandId=command_id, Details=True):
        plugin = plugin_that_ran(inv.get("CommandPlugins") or [])
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
    account_context: Callable[[str], AwsContext],
    scan_records: Sequence[Mapping[str, Any]],
    wait_error: str | None = None,
    *,
    states: dict[str, dict[str, Any]] | None = None,
) -> list[CommandOutcome]:
    """Every invocation outcome of a shard, plus one record per target that has no command, with the reason.
    ``states`` (``Progress.states`` of the last check): commands found there need no ListCommands here, only
    their ListCommandInvocations pages."""
    states = states or {}
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
            command_id = command["command_id"]
            try:
                ssm = account_context(target["account_id"]).client("ssm", target["region"])
                rows = invocation_records(ssm, target, command_id, wait_error, state=states.get(command_id))
            except (TargetUnreachable, ClientError, BotoCoreError) as exc:
                rows = [
                    {
                        **_base(target),
                        **empty,
                        "command_id": command_id,
                        "error": f"collect outcome: {error_code(exc)}: {exc}",
                    }
                ]
            out += [{**row, "target_status": rec.get("status")} for row in rows]
    return cast(list[CommandOutcome], out)  # rows built from _base() and the invocation fields above


def failure_ratio(records: Sequence[Mapping[str, Any]]) -> tuple[float, int, int]:
    """Share of invocations that did not succeed (for gating an Install wave). Returns (ratio, failed, total)."""
    invocations = [r for r in records if r.get("instance_id")]
    failed = sum(1 for r in invocations if r.get("status") != "Success")
    return (failed / len(invocations) if invocations else 0.0), failed, len(invocations)
