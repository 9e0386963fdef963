"""Run Command model: documents, per-invocation schedule over emulated time, and AWS's status rules.

The whole schedule (dispatch ramp under MaxConcurrency, outcomes, MaxErrors termination) is computed once at
SendCommand from the seed, then every read evaluates it at the current emulated time (docs/aws-behaviours.md §1, §3).
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass, field

from sandbox.nodes import Node

VISIBILITY_DELAY = 1.0  # emulated seconds before invocations appear (eventual consistency, docs/aws-behaviours.md §5)
RAMP_STEP = 5.0  # emulated seconds between ramp-up steps (1, then 2 more, then 4 more ...)
UNDELIVERABLE_AFTER = 30.0


@dataclass(frozen=True)
class DocSpec:
    name: str
    params: dict[str, tuple[bool, tuple[str, ...] | None]]  # name -> (required, allowed values)
    platforms: tuple[str, ...]
    execution_timeout: float
    ec2_only: bool = False

    def plugin_for(self, platform_type: str) -> str:
        if self.name == "AWS-RunShellScript":
            return "aws:runShellScript"
        return "PatchWindows" if platform_type == "Windows" else "PatchLinux"


DOCUMENTS: dict[str, DocSpec] = {
    "AWS-RunPatchBaseline": DocSpec(
        "AWS-RunPatchBaseline",
        {
            "Operation": (True, ("Scan", "Install")),
            "SnapshotId": (False, None),
            "InstallOverrideList": (False, None),
            "RebootOption": (False, ("RebootIfNeeded", "NoReboot")),
            "BaselineOverride": (False, None),
            "AssociationId": (False, None),
        },
        ("Linux", "Windows"),
        7200.0,
    ),
    "AWS-RunPatchBaselineAssociation": DocSpec(
        "AWS-RunPatchBaselineAssociation",
        {
            "Operation": (True, ("Scan", "Install")),
            "AssociationId": (True, None),
            "BaselineTags": (False, None),
            "InstallOverrideList": (False, None),
            "RebootOption": (False, ("RebootIfNeeded", "NoReboot")),
        },
        ("Linux", "Windows"),
        7200.0,
        ec2_only=True,
    ),
    "AWS-RunShellScript": DocSpec(
        "AWS-RunShellScript",
        {"commands": (True, None), "workingDirectory": (False, None), "executionTimeout": (False, None)},
        ("Linux",),
        3600.0,
    ),
}

# Invocation StatusDetails -> Status (CommandInvocationStatus enum). "Terminated" is reported as Cancelled:
# "subsequent command invocations were canceled by the system" (botocore doc text).
DETAIL_STATUS = {
    "Pending": "Pending",
    "In Progress": "InProgress",
    "Delayed": "Delayed",
    "Success": "Success",
    "Failed": "Failed",
    "Delivery Timed Out": "TimedOut",
    "Execution Timed Out": "TimedOut",
    "Undeliverable": "Failed",
    "Invalid Platform": "Failed",
    "Terminated": "Cancelled",
    "Cancelled": "Cancelled",
}
TERMINAL = {
    "Success",
    "Failed",
    "Delivery Timed Out",
    "Execution Timed Out",
    "Undeliverable",
    "Invalid Platform",
    "Terminated",
    "Cancelled",
}
ERRORS = {"Failed", "Execution Timed Out"}  # count against MaxErrors


def unit(*parts: object) -> float:
    """A deterministic number in [0, 1) from the parts (stable across processes, unlike hash())."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass
class Invocation:
    instance_id: str
    instance_name: str
    platform_type: str
    plugin: str
    outcome: str
    response_code: int
    dispatch_at: float | None = None
    start_at: float | None = None
    end_at: float = math.inf
    terminated_at: float | None = None
    cancel_at: float | None = None
    applied: bool = False

    def state(self, now: float) -> tuple[str, int, float | None, float | None]:
        """(StatusDetails, ResponseCode, started, finished) at emulated time `now`."""
        if self.terminated_at is not None:
            if self.cancel_at is not None and self.cancel_at < self.terminated_at and now >= self.cancel_at:
                return "Cancelled", -1, None, self.cancel_at
            return (
                ("Terminated", -1, None, self.terminated_at)
                if now >= self.terminated_at
                else ("Pending", -1, None, None)
            )
        if self.cancel_at is not None and self.cancel_at < self.end_at and now >= self.cancel_at:
            started = self.start_at if self.start_at is not None and self.start_at <= self.cancel_at else None
            return "Cancelled", -1, started, self.cancel_at
        if now >= self.end_at:
            return self.outcome, self.response_code, self.start_at, self.end_at
        if self.start_at is not None and now >= self.start_at:
            return "In Progress", -1, self.start_at, None
        return "Pending", -1, None, None


@dataclass
class Command:
    command_id: str
    account_id: str
    region: str
    doc: DocSpec
    document_version: str
    parameters: dict[str, list[str]]
    instance_ids: list[str]
    targets: list[dict]
    comment: str
    requested_at: float
    timeout_seconds: int
    max_concurrency: str
    max_errors: str
    extra: dict = field(default_factory=dict)  # OutputS3*, ServiceRoleArn, NotificationConfig, CloudWatchOutputConfig
    invocations: list[Invocation] = field(default_factory=list)
    cancel_at: float | None = None

    @property
    def visible_at(self) -> float:
        return self.requested_at + VISIBILITY_DELAY

    def visible(self, now: float) -> bool:
        return now >= self.visible_at

    @property
    def operation(self) -> str:
        return (self.parameters.get("Operation") or [""])[0]


def threshold(spec: str, total: int) -> int:
    """MaxConcurrency/MaxErrors as a count: "10" or "10%" of the target count."""
    if spec.endswith("%"):
        return math.floor(int(spec[:-1]) * total / 100)
    return int(spec)


def plan_outcome(cmd: Command, node: Node | None, seed: int, fail_fault: bool) -> tuple[str, int]:
    """Final StatusDetails and ResponseCode of one invocation, deterministic from the seed."""
    if node is None or node.terminated or not node.managed or node.ping_status == "ConnectionLost":
        return "Undeliverable", -1
    if node.platform.platform_type not in cmd.doc.platforms:
        return "Invalid Platform", -1
    if cmd.doc.ec2_only and node.resource_type != "EC2Instance":
        return "Failed", 1
    seeded = seeded_outcome(seed, node.instance_id, cmd.doc.name)
    if seeded[0] == "Success" and fail_fault:
        return "Failed", 1
    return seeded


def seeded_outcome(seed: int, instance_id: str, document: str) -> tuple[str, int]:
    """Most nodes succeed; ~3% fail, ~1.5% time out in execution, ~1.5% in delivery (same node, same result)."""
    r = unit("outcome", seed, instance_id, document)
    if r < 0.03:
        return "Failed", 1
    if r < 0.045:
        return "Execution Timed Out", -1
    if r < 0.06:
        return "Delivery Timed Out", -1
    return "Success", 0


def _duration(cmd: Command, inv: Invocation, seed: int, slow: float) -> float:
    r = unit("duration", seed, inv.instance_id, cmd.command_id)
    if cmd.doc.name == "AWS-RunShellScript":
        base = 2 + 8 * r
    elif cmd.operation == "Install":
        base = 300 + 900 * r
    else:
        base = (60 + 240 * r) if inv.platform_type == "Windows" else (30 + 90 * r)
    return base * slow


def _execution_timeout(cmd: Command) -> float:
    value = (cmd.parameters.get("executionTimeout") or [""])[0]
    return float(value) if value.isdigit() else cmd.doc.execution_timeout


def schedule(cmd: Command, seed: int, slow: float) -> None:
    """Dispatch with the ramp (1, +2, +4, ... up to MaxConcurrency), then stop dispatching once errors exceed
    MaxErrors: the rest become Terminated (docs/aws-behaviours.md §1 MaxConcurrency/MaxErrors)."""
    invs = cmd.invocations
    total = len(invs)
    if not total:
        return
    cap = max(1, threshold(cmd.max_concurrency, total))
    max_errors = threshold(cmd.max_errors, total)
    t0 = cmd.visible_at
    t = t0
    inflight: list[Invocation] = []
    errors = 0
    i = 0
    while i < total:
        step = int((t - t0) // RAMP_STEP)
        allowed = min(cap, 2 ** (step + 1) - 1)
        while i < total and len(inflight) < allowed:
            _dispatch(cmd, invs[i], t, seed, slow)
            inflight.append(invs[i])
            i += 1
        if i >= total:
            break
        next_end = min(inv.end_at for inv in inflight) if inflight else math.inf
        next_ramp = t0 + (step + 1) * RAMP_STEP if allowed < cap else math.inf
        t = min(next_end, next_ramp)
        for inv in [x for x in inflight if x.end_at <= t]:
            inflight.remove(inv)
            if inv.outcome in ERRORS:
                errors += 1
        if errors > max_errors:
            for rest in invs[i:]:
                rest.terminated_at = t
            break


def _dispatch(cmd: Command, inv: Invocation, t: float, seed: int, slow: float) -> None:
    inv.dispatch_at = t
    delivery = 1 + 2 * unit("delivery", seed, inv.instance_id, cmd.command_id)
    if inv.outcome == "Undeliverable":
        inv.end_at = t + UNDELIVERABLE_AFTER
    elif inv.outcome == "Invalid Platform":
        inv.end_at = t + delivery
    elif inv.outcome == "Delivery Timed Out":
        inv.end_at = t + cmd.timeout_seconds
    else:
        inv.start_at = t + delivery
        limit = _execution_timeout(cmd)
        duration = _duration(cmd, inv, seed, slow)
        if inv.outcome == "Execution Timed Out" or duration > limit:
            # A slow run past the document's executionTimeout is killed by the agent.
            inv.outcome, inv.response_code = "Execution Timed Out", -1
            inv.end_at = inv.start_at + limit
        else:
            inv.end_at = inv.start_at + duration


def command_status(cmd: Command, now: float) -> dict:
    """Status, StatusDetails and counters by AWS's rules (docs/aws-behaviours.md §3)."""
    invs = cmd.invocations
    visible = cmd.visible(now)
    details = [inv.state(now)[0] for inv in invs] if visible else []
    completed = sum(1 for d in details if d in TERMINAL)
    error_count = sum(1 for d in details if d in ERRORS)
    dto = sum(1 for d in details if d == "Delivery Timed Out")
    target_count = len(invs) if (visible or not cmd.targets) else 0
    out = {
        "TargetCount": target_count,
        "CompletedCount": completed,
        "ErrorCount": error_count,
        "DeliveryTimedOutCount": dto,
    }
    if not visible:
        status, detail = "Pending", "Pending"
    elif not invs:
        status, detail = "Success", "No Instances In Tag"
    elif completed < len(invs):
        started = any(d not in ("Pending",) for d in details)
        status, detail = ("InProgress", "In Progress") if started else ("Pending", "Pending")
    else:
        max_errors = threshold(cmd.max_errors, len(invs))
        eto = sum(1 for d in details if d == "Execution Timed Out")
        if cmd.cancel_at is not None:
            status, detail = "Cancelled", "Cancelled"
        elif all(d == "Undeliverable" for d in details):
            status, detail = "Failed", "Failed"
        elif error_count > max_errors or any(d == "Terminated" for d in details):
            status, detail = ("TimedOut", "Execution Timed Out") if eto > error_count - eto else ("Failed", "Failed")
        elif dto > max_errors:
            status, detail = "TimedOut", "Delivery Timed Out"
        elif all(d in ("Success", "Undeliverable") for d in details):
            status, detail = "Success", "Success"
        else:
            # "attempted on all nodes, one or more not Success, but not enough failed for Failed"
            status, detail = "Success", "Incomplete"
    out["Status"], out["StatusDetails"] = status, detail
    return out


def iso_ms(ts: float | None) -> str:
    if ts is None:
        return ""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int((ts % 1) * 1000):03d}Z"


def elapsed(start: float | None, end: float | None) -> str:
    if start is None or end is None:
        return ""
    seconds = max(0.0, end - start)
    minutes, sec = divmod(seconds, 60)
    return f"PT{int(minutes)}M{sec:.3f}S" if minutes else f"PT{sec:.3f}S"
