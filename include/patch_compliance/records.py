"""The records that pass between steps (plan → scan → wait → collect → transform), defined once.

Steps never import each other; what two of them exchange is declared here, at the bottom of the dependency order
(docs/architecture.md, "Shared contracts").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict


@dataclass(frozen=True)
class Target:
    """One account-region of the plan, in one wave."""

    ou_id: str
    ou_path: str
    account_id: str
    account_name: str
    region: str
    wave: str

    def as_dict(self) -> TargetDict:
        return TargetDict(
            ou_id=self.ou_id,
            ou_path=self.ou_path,
            account_id=self.account_id,
            account_name=self.account_name,
            region=self.region,
            wave=self.wave,
        )


# What passes between the steps as JSON (XCom for the small ones, S3 staging for the rest). Typed here so each
# step's inputs and outputs are checked by mypy; at run time they are plain dicts (json round trips).


class TargetDict(TypedDict):
    """``Target.as_dict()``: one account-region of the plan."""

    ou_id: str
    ou_path: str
    account_id: str
    account_name: str
    region: str
    wave: str


class ShardRef(TypedDict):
    """A shard as discover's XCom names it for task mapping; its targets are in the staged plan."""

    wave: str
    shard: int
    label: str
    targets: int


class TargetError(TypedDict):
    """Why an account-region could not be read or scanned (``stage``: assume_role, scan, collect, ...)."""

    stage: str
    code: str
    message: str


class SentCommand(TypedDict):
    """One SendCommand of a scan: its batch of up to 50 InstanceIds (``instance_ids``: how many; None for a
    Targets-based send or a batch known only from an earlier attempt)."""

    command_id: str
    batch: int
    reused: bool
    instance_ids: int | None


class ScanRecord(TypedDict):
    """The scan step's outcome for one target (staged as ``scan/<wave>/shard=<n>``). ``instance_information`` is
    the DescribeInstanceInformation listing the batches came from, reused by collect (listed at ``listed_at``)."""

    target: TargetDict
    operation: str
    sent_at: str
    status: str  # SENT | NO_TARGETS | UNREACHABLE | ERROR
    commands: list[SentCommand]
    error: TargetError | None
    listed_at: NotRequired[str]
    instance_information: NotRequired[list[dict[str, Any]]]


class CommandOutcome(TypedDict):
    """One invocation's outcome as the wait step records it (staged as ``commands/<wave>/shard=<n>``), or one
    row for a target without a command, with the reason in ``error``."""

    ou_id: str | None
    ou_path: str | None
    account_id: str | None
    account_name: str | None
    region: str | None
    wave: str | None
    command_id: str | None
    command_status: str | None
    command_status_details: str | None
    instance_id: str | None
    status: str | None
    status_details: str | None
    response_code: int | None
    plugin: str | None
    requested_at: str | None
    started_at: str | None
    finished_at: str | None
    error: str | None
    target_status: NotRequired[str | None]


class RawDocument(TypedDict):
    """What collect reads for one target, in memory until it is normalised into the staged tables
    (docs/architecture.md, "Raw collection document"): AWS items as the APIs returned them."""

    target: TargetDict
    status: str  # OK | UNREACHABLE
    error: TargetError | None
    collected_at: str
    instance_information: list[dict[str, Any]]
    ec2_instances: list[dict[str, Any]]
    patch_states: list[dict[str, Any]]
    patches: dict[str, list[dict[str, Any]]]
    compliance_items: dict[str, list[dict[str, Any]]]
    warnings: list[dict[str, Any]]
    listing_reused: bool
    node_tags: list[dict[str, Any]]  # ListTagsForResource of hybrid (mi-) nodes
    baselines: list[dict[str, Any]]  # GetPatchBaseline of each distinct baseline
