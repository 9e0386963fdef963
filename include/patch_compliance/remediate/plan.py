"""The remediation plan: a canary wave of a few nodes, then the rest by the config's waves, each wave in shards of
account-regions with the exact InstanceIds of each account-region (sent in batches of ≤ 50 by ``scan/``)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from include.patch_compliance.config import CanaryConfig, WaveConfig
from include.patch_compliance.records import Target
from include.patch_compliance.vocab import CANARY_WAVE

TargetKey = tuple[str, str]  # (account_id, region)
NODE_FIELDS = ("ou_id", "ou_path", "account_id", "account_name", "region", "instance_id", "wave")


@dataclass
class RemediationPlan:
    """Waves in order (canary first), each a list of shards of Targets, and the nodes of every Target."""

    waves: dict[str, list[list[Target]]]
    instance_ids: dict[str, dict[TargetKey, list[str]]]

    def nodes(self, wave: str) -> int:
        return sum(len(ids) for ids in self.instance_ids.get(wave, {}).values())

    def wave_of(self) -> dict[tuple[str, str, str], str]:
        """(account_id, region, instance_id) -> the wave that installs it."""
        return {
            (a, r, i): w for w, by_target in self.instance_ids.items() for (a, r), ids in by_target.items() for i in ids
        }

    def as_dict(self) -> dict[str, Any]:
        """The fleet plan's shape (``waves``, ``skipped``) plus ``instance_ids``, so the scan machinery reads it."""
        return {
            "waves": {w: [[t.as_dict() for t in shard] for shard in shards] for w, shards in self.waves.items()},
            "wave_order": list(self.waves),  # staging JSON sorts keys: the order is kept here
            "skipped": [],
            "instance_ids": {
                w: [{"account_id": a, "region": r, "instance_ids": ids} for (a, r), ids in sorted(by_target.items())]
                for w, by_target in self.instance_ids.items()
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RemediationPlan:
        order = data.get("wave_order") or list(data["waves"])
        return cls(
            waves={w: [[Target(**t) for t in shard] for shard in data["waves"][w]] for w in order},
            instance_ids={
                w: {(e["account_id"], e["region"]): list(e["instance_ids"]) for e in entries}
                for w, entries in data.get("instance_ids", {}).items()
            },
        )


def canary_size(canary: CanaryConfig, selected: int) -> int:
    """Nodes in the canary wave: ``nodes`` (at most the selection), or ``percent`` rounded up, at least one."""
    if selected <= 0:
        return 0
    if canary.nodes is not None:
        return min(canary.nodes, selected)
    return min(selected, max(1, math.ceil(selected * float(canary.percent or 0) / 100)))


def config_wave(node_wave: str | None, waves: list[WaveConfig]) -> str:
    """The config wave a node is patched in: the wave the scan put it in (same OU rules), else the "*" wave,
    else the last wave (a wave renamed since the scan)."""
    names = [w.name for w in waves]
    if node_wave in names:
        return str(node_wave)
    star = next((w.name for w in waves if "*" in w.ous), None)
    return star or names[-1]


def plan_remediation(
    nodes: Iterable[dict[str, Any]], waves: list[WaveConfig], canary: CanaryConfig, shard_size: int
) -> RemediationPlan:
    """``nodes``: the selected rows (``NODE_FIELDS``). Canary nodes come from the earliest config wave first
    (the one the config trusts least), then OU path and ids; every wave's account-regions are sharded in order."""
    order = {w.name: i for i, w in enumerate(waves)}
    rows = [dict(n, _wave=config_wave(n.get("wave"), waves)) for n in nodes]
    rows.sort(key=lambda n: (order[n["_wave"]], n["ou_path"] or "", n["account_id"], n["region"], n["instance_id"]))
    size = canary_size(canary, len(rows))
    for i, row in enumerate(rows):
        row["_wave"] = CANARY_WAVE if i < size else row["_wave"]
    names = [CANARY_WAVE, *(w.name for w in waves)]
    targets: dict[str, dict[TargetKey, Target]] = {name: {} for name in names}
    instance_ids: dict[str, dict[TargetKey, list[str]]] = {name: {} for name in names}
    for row in rows:
        wave, key = row["_wave"], (row["account_id"], row["region"])
        targets[wave].setdefault(
            key, Target(row["ou_id"], row["ou_path"], row["account_id"], row["account_name"], row["region"], wave)
        )
        instance_ids[wave].setdefault(key, []).append(row["instance_id"])
    shards = {}
    for wave in names:
        ordered = list(targets[wave].values())
        shards[wave] = [ordered[i : i + shard_size] for i in range(0, len(ordered), shard_size)]
    return RemediationPlan(
        waves=shards, instance_ids={w: {k: sorted(v) for k, v in ids.items()} for w, ids in instance_ids.items()}
    )
