"""The emulated world: fleet, clock, faults, lazily generated account-regions, commands and their effects."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable

from sandbox.catalog import PLATFORMS, build_catalog
from sandbox.clock import EmulatedClock
from sandbox.faults import Faults, RateCounter
from sandbox.fleet import Fleet
from sandbox.nodes import Node, RegionData, generate_region
from sandbox.ssm_commands import Command, Invocation

Key = tuple[str, str]


class World:
    def __init__(
        self,
        fleet: Fleet,
        clock: EmulatedClock,
        faults: Faults,
        on_region_created: Callable[[RegionData], None] | None = None,
    ) -> None:
        self.fleet = fleet
        self.clock = clock
        self.faults = faults
        self.fault_counter = RateCounter()
        self.lock = threading.RLock()
        self.catalogs = {k: build_catalog(k, fleet.seed, clock.start) for k in PLATFORMS}
        self._regions: dict[Key, RegionData] = {}
        self.commands: dict[Key, dict[str, Command]] = {}
        self._command_seq = 0
        self._on_region_created = on_region_created

    @property
    def seed(self) -> int:
        return self.fleet.seed

    def region(self, account_id: str, region: str) -> RegionData:
        """The account-region's data, generated on first access (so `large` answers quickly)."""
        key = (account_id, region)
        with self.lock:
            rd = self._regions.get(key)
            if rd is None:
                account = self.fleet.account(account_id)
                if account is None or account.state != "ACTIVE" or region not in self.fleet.regions:
                    rd = RegionData(account_id, region, {}, {}, self.catalogs)
                else:
                    rd = generate_region(self.fleet, account, region, self.clock.start, self.catalogs)
                self._regions[key] = rd
                if self._on_region_created:
                    self._on_region_created(rd)
            return rd

    def generated_regions(self) -> list[RegionData]:
        with self.lock:
            return list(self._regions.values())

    def new_command_id(self, account_id: str, region: str) -> str:
        with self.lock:
            self._command_seq += 1
            seq = self._command_seq
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"sandbox:{self.seed}:{account_id}:{region}:{seq}"))

    def region_commands(self, account_id: str, region: str) -> dict[str, Command]:
        with self.lock:
            return self.commands.setdefault((account_id, region), {})

    def settle(self, rd: RegionData) -> None:
        """Apply the effects of every invocation that succeeded by now, in completion order (docs/aws-behaviours.md
        §2)."""
        now = self.clock.now()
        with self.lock:
            due: list[tuple[float, Command, Invocation]] = []
            for cmd in self.commands.get((rd.account_id, rd.region), {}).values():
                for inv in cmd.invocations:
                    if not inv.applied and inv.end_at <= now:
                        inv.applied = True
                        if inv.state(now)[0] == "Success":
                            due.append((inv.end_at, cmd, inv))
            for _, cmd, inv in sorted(due, key=lambda x: x[0]):
                node = rd.nodes.get(inv.instance_id)
                if node is not None and not node.terminated:
                    apply_success(node, cmd, inv)


def terminate(world: World, rd: RegionData, node: Node) -> None:
    """Admin: the node is gone. Its unfinished invocations end Undeliverable ("the managed node might not exist")."""
    now = world.clock.now()
    with world.lock:
        node.terminated = True
        for cmd in world.commands.get((rd.account_id, rd.region), {}).values():
            for inv in cmd.invocations:
                if inv.instance_id != node.instance_id or inv.terminated_at is not None or inv.end_at <= now:
                    continue
                if inv.cancel_at is not None and inv.cancel_at <= now:
                    continue
                inv.outcome, inv.response_code, inv.start_at = "Undeliverable", -1, None
                inv.end_at = max(now, inv.dispatch_at or now)


def _install(node: Node, when: float, reboot: str) -> None:
    for i, state in enumerate(node.truth):
        if state in ("Missing", "Failed"):
            node.truth[i] = "Installed" if reboot == "RebootIfNeeded" else "InstalledPendingReboot"
            node.truth_installed[i] = when
        elif state == "InstalledPendingReboot" and reboot == "RebootIfNeeded":
            node.truth[i] = "Installed"


def apply_success(node: Node, cmd: Command, inv: Invocation) -> None:
    """What a successful run changes on the node and in SSM's reported data."""
    name = cmd.doc.name
    if name == "AWS-RunShellScript":
        return
    op = cmd.operation
    reboot = (cmd.parameters.get("RebootOption") or ["RebootIfNeeded"])[0]
    end = inv.end_at
    if op == "Install":
        _install(node, end, reboot)
    if name == "AWS-RunPatchBaselineAssociation":
        # Reports through PutComplianceItems as type Association only, no patch detail (docs/aws-behaviours.md §2).
        node.association = {
            "Id": cmd.parameters["AssociationId"][0],
            "Title": "AWS-RunPatchBaselineAssociation",
            "Status": "COMPLIANT",
            "Severity": "UNSPECIFIED",
            "ExecutionSummary": {"ExecutionTime": end, "ExecutionId": cmd.command_id, "ExecutionType": "Command"},
            "Details": {"DocumentName": name, "PatchBaselineId": node.baseline_id, "DocumentVersion": "1"},
        }
        return
    previous = node.patch_state or {}
    default_snapshot = str(uuid.uuid5(uuid.NAMESPACE_URL, cmd.command_id + node.instance_id))
    snapshot = (cmd.parameters.get("SnapshotId") or [default_snapshot])[0]
    state: dict = {
        "Operation": op,
        "OperationStartTime": inv.start_at or end,
        "OperationEndTime": end,
        "SnapshotId": snapshot,
    }
    if "InstallOverrideList" in cmd.parameters:
        state["InstallOverrideList"] = cmd.parameters["InstallOverrideList"][0]
    if op == "Install":
        state["RebootOption"] = reboot
    if op == "Install" and reboot == "NoReboot":
        state["LastNoRebootInstallOperationTime"] = end
    elif "LastNoRebootInstallOperationTime" in previous:
        state["LastNoRebootInstallOperationTime"] = previous["LastNoRebootInstallOperationTime"]
    node.patch_state = state
    node.reported = list(node.truth)
    node.reported_installed = list(node.truth_installed)
    policy = "AssociationId" in cmd.parameters and "BaselineOverride" in cmd.parameters
    node.patch_exec = {
        "ExecutionTime": end,
        "ExecutionId": cmd.command_id,
        "ExecutionType": "PatchPolicy" if policy else "Command",
    }


def remediate(node: Node, when: float) -> int:
    """Admin: install every missing/failed patch and reboot, so the next Scan reports the node compliant."""
    changed = 0
    for i, state in enumerate(node.truth):
        if state in ("Missing", "Failed", "InstalledPendingReboot"):
            node.truth[i] = "Installed"
            node.truth_installed[i] = when
            changed += 1
        elif state == "InstalledRejected":
            node.truth[i] = "InstalledOther"  # the rejected package is treated as removed from the reject list
            changed += 1
    return changed
