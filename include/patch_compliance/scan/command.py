"""Send ``AWS-RunPatchBaseline`` to one account-region, never twice for the same run (retries reuse commands)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from include.patch_compliance.aws import UNREACHABLE_CODES, AwsContext, TargetUnreachable, chunks, error_code, paginate
from include.patch_compliance.config import ScanConfig
from include.patch_compliance.records import ScanRecord, SentCommand, Target, TargetError

COMMENT_PREFIX = "patch-compliance"
# SendCommand takes at most 50 InstanceIds; botocore does not check the max (docs/aws-behaviours.md §1).
MAX_INSTANCE_IDS = 50


class InstallNotAllowed(ValueError):
    """Install asked for without the configuration's opt-in."""


@dataclass(frozen=True)
class ScanRequest:
    """What every target of a shard is sent. ``instance_ids`` narrows it to explicit nodes per (account, region)
    (remediation): exactly those, in batches of 50, never Targets or every managed node; a target it does not
    name gets no command."""

    operation: str
    run_id: str
    run_tag: str
    scan: ScanConfig
    instance_ids: Mapping[tuple[str, str], Sequence[str]] | None = None

    @property
    def parameters(self) -> dict[str, list[str]]:
        params = {"Operation": [self.operation]}
        if self.operation == "Install":
            params["RebootOption"] = [self.scan.reboot_option]
        return params


def resolve_operation(requested: str | None, scan: ScanConfig) -> str:
    """Scan unless the run asks for Install AND the config allows it; Install without the opt-in is an error."""
    if requested in (None, "", "Scan"):
        return "Scan"
    if requested != "Install":
        raise ValueError(f"run param operation={requested!r} is not allowed; use 'Scan' or 'Install'")
    if not scan.allow_install:
        raise InstallNotAllowed(
            "run param operation='Install' refused: the configuration has scan.allow_install: false. "
            "Set scan.allow_install: true in the config file to allow patch installation, or run a Scan."
        )
    return "Install"


def run_tag(dag_id: str, run_id: str) -> str:
    """A short stable tag of the run, carried in every command's Comment (≤ 100 chars, docs/aws-behaviours.md §1)."""
    return hashlib.sha256(f"{dag_id}|{run_id}".encode()).hexdigest()[:16]


def comment(tag: str, batch: int, total: int, run_id: str) -> str:
    return f"{COMMENT_PREFIX} {tag} {batch}/{total} {run_id}"[:100]


_COMMENT = re.compile(rf"^{COMMENT_PREFIX} ([0-9a-f]{{16}}) (\d+)/(\d+)")


def earlier_commands(ssm: Any, tag: str, invoked_after: datetime, document_name: str) -> dict[int, dict[str, Any]]:
    """Commands this run already sent here, by batch number: found by document, time window and Comment."""
    filters = [
        {"key": "DocumentName", "value": document_name},
        {"key": "InvokedAfter", "value": invoked_after.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")},
    ]
    found: dict[int, dict[str, Any]] = {}
    for command in paginate(ssm, "list_commands", "Commands", Filters=filters):
        match = _COMMENT.match(command.get("Comment") or "")
        if match and match.group(1) == tag:
            found.setdefault(int(match.group(2)), command)
    return found


def _send(ssm: Any, req: ScanRequest, batch: int, total: int, instance_ids: list[str] | None) -> dict[str, Any]:
    scan = req.scan
    kwargs: dict[str, Any] = {
        "DocumentName": scan.document_name,
        "Parameters": req.parameters,
        "MaxConcurrency": scan.max_concurrency,
        "MaxErrors": scan.max_errors,
        "TimeoutSeconds": scan.timeout_seconds,
        "Comment": comment(req.run_tag, batch, total, req.run_id),
    }
    if instance_ids is not None:
        kwargs["InstanceIds"] = instance_ids
    else:
        # Several Keys are ANDed, several Values of one Key ORed; no values = tag-key (docs/aws-behaviours.md §1).
        kwargs["Targets"] = [
            {"Key": f"tag:{k}", "Values": v} if v else {"Key": "tag-key", "Values": [k]}
            for k, v in sorted(scan.targets.tags.items())
        ]
    if scan.output_s3_bucket:
        kwargs["OutputS3BucketName"] = scan.output_s3_bucket
        if scan.output_s3_prefix:
            kwargs["OutputS3KeyPrefix"] = scan.output_s3_prefix
    return ssm.send_command(**kwargs)["Command"]


def scan_target(
    ctx: AwsContext, target: Target, req: ScanRequest, invoked_after: datetime
) -> tuple[list[SentCommand], list[dict[str, Any]] | None]:
    """Send (or find) this run's commands in one account-region. Returns one entry per command, and the
    DescribeInstanceInformation listing the batches came from (None when tags select the nodes): collect reuses it
    instead of listing the nodes again (``collect.node_listing_max_age_seconds``)."""
    ssm = ctx.client("ssm", target.region)
    earlier = earlier_commands(ssm, req.run_tag, invoked_after, req.scan.document_name)
    batches: list[list[str] | None]
    listing: list[dict[str, Any]] | None = None
    if req.instance_ids is not None:
        ids = sorted(set(req.instance_ids.get((target.account_id, target.region), ())))
        batches = list(chunks(ids, MAX_INSTANCE_IDS))
    elif req.scan.targets.mode == "all_managed":
        # MaxResults 5..50 (docs/aws-behaviours.md §9); stopped/terminated nodes are not returned.
        listing = list(paginate(ssm, "describe_instance_information", "InstanceInformationList", MaxResults=50))
        ids = sorted(i["InstanceId"] for i in listing)
        batches = list(chunks(ids, MAX_INSTANCE_IDS))
    else:
        batches = [None]
    total = max(len(batches), max(earlier, default=0))
    sent: list[SentCommand] = []
    for number, batch in enumerate(batches, start=1):
        if number in earlier:
            command, reused = earlier[number], True
        else:
            command, reused = _send(ssm, req, number, total, batch), False
        sent.append(
            SentCommand(
                command_id=command["CommandId"],
                batch=number,
                reused=reused,
                instance_ids=len(batch) if batch is not None else None,
            )
        )
    # Commands of batches this attempt no longer has (nodes gone since) are still this run's: keep waiting on them.
    for number in sorted(set(earlier) - set(range(1, len(batches) + 1))):
        sent.append(SentCommand(command_id=earlier[number]["CommandId"], batch=number, reused=True, instance_ids=None))
    return sent, listing


def scan_record(
    account_context: Callable[[str], AwsContext],
    target: Target,
    req: ScanRequest,
    invoked_after: datetime,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> ScanRecord:
    """The scan outcome of one target as a JSON-ready record; failures are recorded, never raised. With
    ``all_managed`` targets it carries the node listing (``instance_information``, listed at ``listed_at``)."""
    record: ScanRecord = {
        "target": target.as_dict(),
        "operation": req.operation,
        "sent_at": now().isoformat(),
        "status": "SENT",
        "commands": [],
        "error": None,
    }
    try:
        listed_at = now().isoformat()
        record["commands"], listing = scan_target(account_context(target.account_id), target, req, invoked_after)
        if listing is not None:
            record["listed_at"], record["instance_information"] = listed_at, listing
    except TargetUnreachable as exc:
        record["status"], record["error"] = "UNREACHABLE", exc.as_dict()
    except (ClientError, BotoCoreError) as exc:
        code = error_code(exc)
        status = "UNREACHABLE" if code in UNREACHABLE_CODES else "ERROR"
        record["status"], record["error"] = status, TargetError(stage="scan", code=code, message=str(exc))
    if record["status"] == "SENT" and not record["commands"]:
        record["status"] = "NO_TARGETS"
    return record


def keep_first_sent_at(records: list[ScanRecord], earlier: list[ScanRecord]) -> list[ScanRecord]:
    """A retried scan task keeps, per target, the ``sent_at`` of the earlier attempt that sent its commands: the
    wait deadline is counted from it (``sent_at`` + ``scan.wait.timeout_seconds``), so retries never push it later.
    A target that had no command before (unreachable, send failed) takes this attempt's time."""
    first = {
        (r["target"]["account_id"], r["target"]["region"]): r["sent_at"]
        for r in earlier
        if r.get("commands") and r.get("sent_at")
    }
    return [
        {**r, "sent_at": first.get((r["target"]["account_id"], r["target"]["region"]), r["sent_at"])} for r in records
    ]


def first_command(scan_records: Sequence[Mapping[str, Any]]) -> tuple[str, str] | None:
    """(region, command id) of the first command a shard sent or reused: what its console link opens."""
    return next(((r["target"]["region"], r["commands"][0]["command_id"]) for r in scan_records if r["commands"]), None)
