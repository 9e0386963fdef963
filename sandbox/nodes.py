"""Per account-region node inventory, generated lazily and deterministically from (seed, account, region).

A node keeps two patch views: `truth` (what is on disk now) and `reported` (what the last Scan/Install
told SSM). DescribeInstancePatches / patch states / Patch compliance items serve `reported`; only a
successful AWS-RunPatchBaseline run copies `truth` into `reported` (docs/aws-behaviours.md §2, §8).
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field

from sandbox.catalog import PLATFORM_WEIGHTS, PLATFORMS, Patch, Platform
from sandbox.fleet import Account, Fleet

NON_COMPLIANT_STATES = frozenset({"Missing", "Failed", "InstalledPendingReboot", "InstalledRejected"})
DAY = 86400.0


@dataclass
class Node:
    instance_id: str
    name: str
    platform: Platform
    resource_type: str  # EC2Instance | ManagedInstance
    has_agent: bool
    ec2_state: str | None  # running | stopped | None for hybrid nodes
    ping_status: str  # Online | ConnectionLost
    tags: dict[str, str]
    patch_group: str
    baseline_id: str
    agent_version: str
    ip: str
    computer_name: str
    registered_at: float
    last_ping: float
    truth: list[str]
    truth_installed: list[float]
    reported: list[str] | None = None
    reported_installed: list[float] = field(default_factory=list)
    patch_state: dict | None = None
    patch_exec: dict | None = None  # ExecutionSummary of the Patch compliance items
    association: dict | None = None  # the one Association compliance item (Quick Setup)
    activation_id: str | None = None
    terminated: bool = False

    @property
    def managed(self) -> bool:
        """Listed by DescribeInstanceInformation: agent registered, not stopped/terminated (docs/aws-behaviours.md
        §9)."""
        return self.has_agent and not self.terminated and self.ec2_state in (None, "running")


@dataclass
class RegionData:
    account_id: str
    region: str
    nodes: dict[str, Node]
    baselines: dict[str, dict]  # platform key -> {"BaselineId", "BaselineName", "OperatingSystem", ...}
    catalogs: dict[str, list[Patch]]
    invocation_counter: int = 0

    def managed_nodes(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.managed]


def _hex(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def _weighted(rng: random.Random, weights: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([k for k, _ in weights], weights=[w for _, w in weights])[0]


def _draw_states(
    rng: random.Random, platform: Platform, catalog: list[Patch], now: float, healthy: bool
) -> tuple[list[str], list[float]]:
    states: list[str] = []
    installed: list[float] = []
    for patch in catalog:
        r = rng.random()
        if platform.platform_type == "Windows":
            table = (
                ("Installed", 0.55),
                ("NotApplicable", 0.2),
                ("InstalledOther", 0.08),
                ("Missing", 0.13),
                ("Failed", 0.02),
                ("AvailableSecurityUpdate", 0.02),
            )
        else:
            table = (
                ("Installed", 0.55),
                ("InstalledOther", 0.25),
                ("Missing", 0.16),
                ("Failed", 0.02),
                ("InstalledRejected", 0.02),
            )
        acc = 0.0
        state = table[0][0]
        for name, p in table:
            acc += p
            if r < acc:
                state = name
                break
        if healthy and state in NON_COMPLIANT_STATES:
            state = "Installed"
        states.append(state)
        installed.append(
            min(now - DAY, patch.released + rng.randrange(1, 20) * DAY) if state.startswith("Installed") else 0.0
        )
    return states, installed


def _baselines(rng: random.Random, account: Account, region: str) -> dict[str, dict]:
    out = {}
    for key, plat in PLATFORMS.items():
        os_name = {
            "al2023": "AMAZON_LINUX_2023",
            "ubuntu2204": "UBUNTU",
            "rhel9": "REDHAT_ENTERPRISE_LINUX",
            "win2022": "WINDOWS",
        }[key]
        out[key] = {
            "BaselineId": "pb-" + _hex(rng, 17),
            "BaselineName": f"org-{key}-baseline",
            "OperatingSystem": os_name,
            "BaselineDescription": f"Organisation baseline for {plat.platform_name}",
            "DefaultBaseline": True,
        }
    return out


def available_security_updates_status(account_id: str) -> str:
    """The baselines' AvailableSecurityUpdatesComplianceStatus: NON_COMPLIANT in accounts whose id has an odd digit
    sum, COMPLIANT in the others, so the fleet has both settings (no rng draw: the rest of the world is unchanged)."""
    return "NON_COMPLIANT" if sum(int(d) for d in account_id) % 2 else "COMPLIANT"


# Owner tags of the generated nodes (EC2 tags, SSM tags of hybrid nodes), for reports.group_by_tags.
TEAMS = ("payments", "platform", "data")


def generate_region(
    fleet: Fleet, account: Account, region: str, now: float, catalogs: dict[str, list[Patch]]
) -> RegionData:
    rng = random.Random(f"region:{fleet.seed}:{account.id}:{region}")
    baselines = _baselines(rng, account, region)
    avg = fleet.nodes_per_account_region()
    count = max(2, rng.randint(int(avg * 0.6), int(avg * 1.4) + 1))
    nodes: dict[str, Node] = {}
    env = account.environment
    for i in range(count):
        pkey = _weighted(rng, PLATFORM_WEIGHTS)
        plat = PLATFORMS[pkey]
        hybrid = i == count - 1 and rng.random() < 0.5 and plat.platform_type == "Linux"
        instance_id = ("mi-" if hybrid else "i-") + _hex(rng, 17)
        family = "windows" if plat.platform_type == "Windows" else "linux"
        patch_group = f"{env}-{family}"
        tags = {"Name": f"{account.name}-{pkey}-{i:03d}", "Environment": env, "PatchGroup": patch_group}
        tags["Team"] = TEAMS[(int(account.id) + i) % len(TEAMS)]  # no rng draw: the rest of the world is unchanged
        if rng.random() < 0.85:
            tags["Patch"] = "true"
        has_agent = hybrid or rng.random() > 0.1  # ~10% of EC2 instances have no SSM agent: unmanaged
        ec2_state = None if hybrid else ("stopped" if rng.random() < 0.04 else "running")
        ping = "ConnectionLost" if rng.random() < 0.08 else "Online"
        healthy = rng.random() < 0.35
        truth, truth_installed = _draw_states(rng, plat, catalogs[pkey], now, healthy)
        ip = f"10.{rng.randrange(0, 255)}.{rng.randrange(0, 255)}.{rng.randrange(1, 254)}"
        node = Node(
            instance_id=instance_id,
            name=tags["Name"],
            platform=plat,
            resource_type="ManagedInstance" if hybrid else "EC2Instance",
            has_agent=has_agent,
            ec2_state=ec2_state,
            ping_status=ping,
            tags=tags,
            patch_group=patch_group,
            baseline_id=baselines[pkey]["BaselineId"],
            agent_version=rng.choice(["3.3.1142.0", "3.3.987.0", "3.2.2303.0"]),
            ip=ip,
            computer_name=f"ip-{ip.replace('.', '-')}.{region}.compute.internal"
            if not hybrid
            else f"onprem-{i:03d}.corp.example.com",
            registered_at=now - rng.randrange(40, 600) * DAY,
            last_ping=now - (rng.randrange(2, 30) * DAY if ping == "ConnectionLost" else rng.randrange(10, 300)),
            truth=truth,
            truth_installed=truth_installed,
            activation_id=str(uuid.UUID(int=rng.getrandbits(128))) if hybrid else None,
        )
        if has_agent:
            _seed_history(rng, node, now)
        nodes[instance_id] = node
    return RegionData(account.id, region, nodes, baselines, catalogs)


def _seed_history(rng: random.Random, node: Node, now: float) -> None:
    """Quick Setup leftovers: ~8% never scanned, ~12% last scanned > 30 days ago, the rest within a week."""
    r = rng.random()
    if r < 0.08:
        return
    age = rng.randrange(31, 120) * DAY if r < 0.20 else rng.randrange(1, 7) * DAY + rng.randrange(0, 86000)
    end = now - age
    node.reported = list(node.truth)
    node.reported_installed = list(node.truth_installed)
    exec_id = str(uuid.UUID(int=rng.getrandbits(128)))
    node.patch_state = {
        "Operation": "Scan",
        "OperationStartTime": end - rng.randrange(40, 400),
        "OperationEndTime": end,
        "SnapshotId": str(uuid.UUID(int=rng.getrandbits(128))),
    }
    node.patch_exec = {"ExecutionTime": end, "ExecutionId": exec_id, "ExecutionType": "Command"}
    if node.resource_type == "EC2Instance":  # AWS-RunPatchBaselineAssociation is EC2-only (docs/aws-behaviours.md §2)
        assoc_id = str(uuid.UUID(int=rng.getrandbits(128)))
        node.association = {
            "Id": assoc_id,
            "Title": "AWS-QuickSetup-PatchPolicy-scan",
            "Status": "COMPLIANT",
            "Severity": "UNSPECIFIED",
            "ExecutionSummary": {"ExecutionTime": end, "ExecutionId": exec_id, "ExecutionType": "Command"},
            "Details": {
                "DocumentName": "AWS-RunPatchBaselineAssociation",
                "PatchBaselineId": node.baseline_id,
                "DocumentVersion": "1",
            },
        }
