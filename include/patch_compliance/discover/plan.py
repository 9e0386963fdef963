"""The fleet plan: which account-regions are scanned, in which wave, grouped into shards for task mapping."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from include.patch_compliance.config import FleetConfig, OrganizationConfig, WaveConfig
from include.patch_compliance.discover.org import Account, OrgUnit
from include.patch_compliance.records import ShardRef, Target

# [core] max_map_length default (docs/aws-behaviours.md §21): a longer list fails the upstream task.
MAX_MAP_LENGTH = 1024


class PlanError(ValueError):
    """The configuration and the organization do not make a usable plan."""


@dataclass
class Plan:
    waves: dict[str, list[list[Target]]]  # wave -> shards -> targets, in wave order
    skipped: list[dict[str, str]] = field(default_factory=list)  # accounts left out, with the reason

    @property
    def targets(self) -> list[Target]:
        return [t for shards in self.waves.values() for shard in shards for t in shard]

    def shard_refs(self) -> dict[str, list[ShardRef]]:
        """Small per-wave lists for XCom and mapping; the targets themselves live in the S3 plan."""
        return {
            wave: [
                ShardRef(wave=wave, shard=i, label=shard_label(shard), targets=len(shard))
                for i, shard in enumerate(shards)
            ]
            for wave, shards in self.waves.items()
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "waves": {w: [[t.as_dict() for t in s] for s in shards] for w, shards in self.waves.items()},
            "skipped": self.skipped,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        return cls(
            waves={w: [[Target(**t) for t in s] for s in shards] for w, shards in data["waves"].items()},
            skipped=list(data.get("skipped", [])),
        )


def _resolve(refs: list[str], units: list[OrgUnit], what: str) -> list[OrgUnit]:
    """OU references (id or path) to units; an unknown reference is a config error, not a silent no-op."""
    by_id = {u.id: u for u in units}
    by_path = {u.path: u for u in units}
    resolved = []
    for ref in refs:
        unit = by_id.get(ref) or by_path.get(ref)
        if unit is None:
            known = ", ".join(sorted(by_path)[:20])
            raise PlanError(f"{what}: OU {ref!r} is not in the organization; known OU paths: {known}")
        resolved.append(unit)
    return resolved


def _under(path: str, unit: OrgUnit) -> bool:
    return path == unit.path or path.startswith(unit.path + "/")


def select_accounts(
    units: list[OrgUnit], accounts: list[Account], org: OrganizationConfig, ou_override: list[str] | None = None
) -> tuple[list[Account], list[dict[str, str]]]:
    """Accounts to scan: ACTIVE (by `State`), under the included OUs, not excluded. Returns (kept, skipped)."""
    include = _resolve(ou_override if ou_override else org.include_ous, units, "organization.include_ous")
    exclude = _resolve(org.exclude_ous, units, "organization.exclude_ous")
    kept, skipped = [], []
    for acct in accounts:
        reason = None
        if acct.state != "ACTIVE":
            reason = f"State is {acct.state or 'missing'}, only ACTIVE accounts are scanned"
        elif include and not any(_under(acct.ou_path, u) for u in include):
            reason = "not under an included OU"
        elif any(_under(acct.ou_path, u) for u in exclude):
            reason = "under an excluded OU"
        elif org.include_accounts and acct.id not in org.include_accounts:
            reason = "not in organization.include_accounts"
        elif acct.id in org.exclude_accounts:
            reason = "in organization.exclude_accounts"
        if reason:
            skipped.append(
                {"account_id": acct.id, "account_name": acct.name, "ou_path": acct.ou_path, "reason": reason}
            )
        else:
            kept.append(acct)
    return kept, skipped


def assign_waves(units: list[OrgUnit], accounts: list[Account], waves: list[WaveConfig]) -> dict[str, list[Account]]:
    """Each account goes to the wave naming its most specific OU; "*" takes the rest. Accounts matched by no wave
    (and with no "*" wave) are not scanned: that is reported by the caller as skipped."""
    named: list[tuple[OrgUnit, str]] = []
    star = None
    for wave in waves:
        refs = [r for r in wave.ous if r != "*"]
        if "*" in wave.ous:
            star = wave.name
        named += [(u, wave.name) for u in _resolve(refs, units, f"waves[{wave.name}].ous")]
    result: dict[str, list[Account]] = {w.name: [] for w in waves}
    for acct in accounts:
        matches = [(len(u.path), name) for u, name in named if _under(acct.ou_path, u)]
        if matches:
            result[max(matches)[1]].append(acct)
        elif star:
            result[star].append(acct)
    return result


def shard_label(shard: list[Target]) -> str:
    """A short label for the UI (map_index_template): OU, account range, regions."""
    if not shard:
        return "empty"
    ous = sorted({t.ou_path.rsplit("/", 1)[-1] for t in shard})
    accts = sorted({t.account_id for t in shard})
    regions = sorted({t.region for t in shard})
    ou_text = ", ".join(ous) if len(ous) <= 2 else f"{ous[0]} +{len(ous) - 1} OUs"
    acct_text = accts[0] if len(accts) == 1 else f"{accts[0]}..{accts[-1]}"
    region_text = regions[0] if len(regions) == 1 else f"{len(regions)} regions"
    return f"{ou_text} / {acct_text} / {region_text}"


def build_plan(
    units: list[OrgUnit],
    accounts: list[Account],
    cfg: FleetConfig,
    *,
    ou_override: list[str] | None = None,
    regions_override: list[str] | None = None,
) -> Plan:
    kept, skipped = select_accounts(units, accounts, cfg.organization, ou_override)
    by_wave = assign_waves(units, kept, cfg.waves)
    waved = {a.id for accts in by_wave.values() for a in accts}
    skipped += [
        {"account_id": a.id, "account_name": a.name, "ou_path": a.ou_path, "reason": "in no wave"}
        for a in kept
        if a.id not in waved
    ]
    regions = regions_override or cfg.regions
    waves: dict[str, list[list[Target]]] = {}
    for wave in cfg.waves:
        targets = [
            Target(a.ou_id, a.ou_path, a.id, a.name, region, wave.name)
            for a in sorted(by_wave[wave.name], key=lambda a: (a.ou_path, a.id))
            for region in regions
        ]
        size = cfg.orchestration.shard_size
        shards = [targets[i : i + size] for i in range(0, len(targets), size)]
        if len(shards) > MAX_MAP_LENGTH:
            need = -(-len(targets) // MAX_MAP_LENGTH)
            raise PlanError(
                f"wave {wave.name!r} has {len(targets)} account-regions = {len(shards)} shards, above Airflow's "
                f"max_map_length {MAX_MAP_LENGTH}; set orchestration.shard_size to at least {need}"
            )
        waves[wave.name] = shards
    return Plan(waves=waves, skipped=skipped)
