"""Deterministic organisation generator: OUs, accounts, regions (per seed and profile).

Nodes are not generated here; `sandbox.nodes` builds them lazily per account-region.
"""

from __future__ import annotations

import random
import string
from dataclasses import asdict, dataclass, field

MANAGEMENT_ACCOUNT_ID = "123456789012"  # moto's DEFAULT_ACCOUNT_ID, the caller of dummy credentials
MEMBER_ROLE_NAME = "PatchComplianceScanRole"


@dataclass(frozen=True)
class Profile:
    name: str
    regions: tuple[str, ...]
    accounts: int  # including the management account
    nodes: int  # approximate total over all active account-regions
    nested_ous: bool


PROFILES: dict[str, Profile] = {
    "small": Profile("small", ("us-east-1", "eu-west-1"), 6, 60, False),
    "medium": Profile("medium", ("us-east-1", "eu-west-1", "ap-southeast-2"), 50, 2_000, True),
    "large": Profile("large", ("us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2"), 500, 50_000, True),
}


@dataclass(frozen=True)
class Ou:
    id: str
    name: str
    path: str
    parent_id: str


@dataclass(frozen=True)
class Account:
    id: str
    name: str
    ou_id: str
    state: str  # Organizations `State`: ACTIVE | SUSPENDED
    has_role: bool
    email: str
    joined: float  # epoch seconds
    environment: str


@dataclass
class Fleet:
    seed: int
    profile: Profile
    org_id: str
    root_id: str
    ous: list[Ou]
    accounts: list[Account]
    member_role_name: str = MEMBER_ROLE_NAME
    management_account_id: str = MANAGEMENT_ACCOUNT_ID
    _by_id: dict[str, Account] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._by_id = {a.id: a for a in self.accounts}

    @property
    def regions(self) -> tuple[str, ...]:
        return self.profile.regions

    def account(self, account_id: str) -> Account | None:
        return self._by_id.get(account_id)

    def ou(self, ou_id: str) -> Ou | None:
        return next((o for o in self.ous if o.id == ou_id), None)

    def ou_path(self, ou_id: str) -> str:
        if ou_id == self.root_id:
            return "Root"
        ou = self.ou(ou_id)
        return ou.path if ou else ""

    def nodes_per_account_region(self) -> int:
        active = sum(1 for a in self.accounts if a.state == "ACTIVE")
        return max(1, round(self.profile.nodes / max(1, active * len(self.regions))))

    def to_dict(self) -> dict:
        return {
            "management_account_id": self.management_account_id,
            "member_role_name": self.member_role_name,
            "regions": list(self.regions),
            "organization_id": self.org_id,
            "root_id": self.root_id,
            "ous": [asdict(o) for o in self.ous],
            "accounts": [
                {"id": a.id, "name": a.name, "ou_id": a.ou_id, "state": a.state, "has_role": a.has_role}
                for a in self.accounts
            ],
            "profile": self.profile.name,
            "seed": self.seed,
        }


def _rand_str(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.ascii_lowercase + string.digits) for _ in range(n))


def _ou_tree(profile: Profile) -> list[tuple[str, str | None, str]]:
    """(name, parent name or None for Root, environment tag value)."""
    tree: list[tuple[str, str | None, str]] = [
        ("Infrastructure", None, "infra"),
        ("Workloads", None, "prod"),
        ("Prod", "Workloads", "prod"),
        ("NonProd", "Workloads", "nonprod"),
        ("Sandbox", None, "sandbox"),
    ]
    if profile.nested_ous:
        tree += [
            ("Payments", "Prod", "prod"),
            ("Analytics", "Prod", "prod"),
            ("Dev", "NonProd", "dev"),
            ("Test", "NonProd", "test"),
        ]
    return tree


def generate_fleet(profile_name: str = "small", seed: int = 7, created_at: float = 1_700_000_000.0) -> Fleet:
    if profile_name not in PROFILES:
        raise ValueError(f"profile={profile_name!r} is not one of {sorted(PROFILES)}")
    profile = PROFILES[profile_name]
    rng = random.Random(f"fleet:{profile_name}:{seed}")
    root_id = "r-" + _rand_str(rng, 4)
    org_id = "o-" + _rand_str(rng, 10)
    root_suffix = root_id[2:]
    ous: list[Ou] = []
    env_of: dict[str, str] = {}
    by_name: dict[str, Ou] = {}
    for name, parent, env in _ou_tree(profile):
        parent_ou = by_name.get(parent) if parent else None
        ou = Ou(
            id=f"ou-{root_suffix}-{_rand_str(rng, 8)}",
            name=name,
            path=f"{parent_ou.path if parent_ou else 'Root'}/{name}",
            parent_id=parent_ou.id if parent_ou else root_id,
        )
        ous.append(ou)
        by_name[name] = ou
        env_of[ou.id] = env
    # Accounts go to leaf OUs (and Infrastructure/Sandbox); Workloads itself holds none, like most landing zones.
    leaf_ous = [o for o in ous if not any(c.parent_id == o.id for c in ous)]
    used: set[str] = {MANAGEMENT_ACCOUNT_ID}
    accounts = [
        Account(
            MANAGEMENT_ACCOUNT_ID,
            "management",
            root_id,
            "ACTIVE",
            True,
            "master@example.com",
            created_at - 900 * 86400,
            "infra",
        )
    ]

    def new_id() -> str:
        while True:
            candidate = str(rng.randrange(10**11, 10**12 - 1)).zfill(12)
            if candidate not in used:
                used.add(candidate)
                return candidate

    members = profile.accounts - 1
    sandbox_ou = by_name["Sandbox"]
    nonprod_leaf = [o for o in leaf_ous if o.path.startswith("Root/Workloads/NonProd")]
    workload_leaf = [o for o in leaf_ous if o.path.startswith("Root/Workloads/")]
    counters: dict[str, int] = {}
    for i in range(members):
        if i == 0:
            ou = by_name["Infrastructure"]
        elif i == members - 1:
            ou = sandbox_ou  # the last one is the suspended sandbox account (every profile has one)
        elif i == members - 2:
            ou = nonprod_leaf[0]  # the role-less account (every profile has one)
        else:
            ou = (workload_leaf + leaf_ous)[(i - 1) % (len(workload_leaf) + len(leaf_ous))]
        counters[ou.name] = counters.get(ou.name, 0) + 1
        name = f"{ou.name.lower()}-{counters[ou.name]:02d}"
        suspended = i == members - 1 or (members > 20 and rng.random() < 0.02)
        no_role = i == members - 2 or (members > 20 and rng.random() < 0.02)
        accounts.append(
            Account(
                id=new_id(),
                name=name,
                ou_id=ou.id,
                state="SUSPENDED" if suspended else "ACTIVE",
                has_role=not no_role,
                email=f"aws+{name}@example.com",
                joined=created_at - rng.randrange(30, 800) * 86400,
                environment=env_of[ou.id],
            )
        )
    return Fleet(seed=seed, profile=profile, org_id=org_id, root_id=root_id, ous=ous, accounts=accounts)
