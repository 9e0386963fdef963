"""What a run has staged under its ``_staging/`` prefix, read back: the plan, the JSON records of each kind,
the scan's node listings and the collect tasks' Parquet shards (key layout in ``storage``). The step bodies
(``steps``, ``remediation_steps``) and tests read a run's state through these."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from include.patch_compliance.discover.plan import Plan
from include.patch_compliance.runtime import RunContext
from include.patch_compliance.storage import StorageError, download, list_keys, s3_uri, staged_prefix

if TYPE_CHECKING:
    from include.patch_compliance.transform.staging import StagedRun


def load_plan(run: RunContext) -> Plan:
    return Plan.from_dict(run.get(run.key("plan")))


def read_records(run: RunContext, kind: str, wave: str | None = None) -> list[dict[str, Any]]:
    """Every record of a staging kind for this run (all shards, optionally one wave), in key order."""
    out: list[dict[str, Any]] = []
    for key in list_keys(run.hub, run.bucket, run.prefix(kind, wave)):
        out += run.get(key)
    return out


def staged(run: RunContext, kind: str, wave: str | None = None, shard: int | None = None) -> Any | None:
    """This run's staging object of ``kind`` if an earlier attempt wrote it, else None."""
    key = run.key(kind, wave, shard)
    return run.get(key) if key in list_keys(run.hub, run.bucket, key) else None


def scan_listings(run: RunContext, wave: str, shard: int) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """The scan's node listing per (account_id, region) of this shard, where it is at most
    ``collect.node_listing_max_age_seconds`` old (none for the collect DAG, or for tag-targeted scans)."""
    max_age = run.cfg.collect.node_listing_max_age_seconds
    if max_age <= 0:
        return {}
    now = datetime.now(UTC)
    fresh = {}
    for rec in shard_records(run, "scan", wave, shard):
        listing, listed_at = rec.get("instance_information"), rec.get("listed_at")
        if listing is not None and listed_at and (now - datetime.fromisoformat(listed_at)).total_seconds() <= max_age:
            fresh[(rec["target"]["account_id"], rec["target"]["region"])] = listing
    return fresh


def shard_records(run: RunContext, kind: str, wave: str, shard: int) -> list[dict[str, Any]]:
    """A shard's staged JSON records of ``kind``; [] when the step that writes them did not run for it."""
    return staged(run, kind, wave, shard) or []


def staged_run(run: RunContext, workdir: str, tables: tuple[str, ...] | None = None) -> StagedRun:
    """Download every complete staged shard (its targets table is written last) into ``workdir``, only
    ``tables`` (default all). The command outcomes of a shard whose collect task never staged it are normalised
    here, one shard at a time, so they are not lost (the only JSON the report step reads)."""
    from include.patch_compliance.transform.staging import STAGED, StagedRun, stage_commands

    wanted = tuple(STAGED) if tables is None else tables
    base = staged_prefix(run.cfg.reports.prefix, run.run_id)
    shards: dict[str, dict[str, str]] = {}
    for key in list_keys(run.hub, run.bucket, base):
        folder, name = key[len(base) :].rsplit("/", 1)
        shards.setdefault(folder, {})[name.removesuffix(".parquet")] = key
    out: list[dict[str, Any]] = []
    for index, folder in enumerate(sorted(f for f, names in shards.items() if "targets" in names)):
        missing = [name for name in wanted if name not in shards[folder]]
        if missing:
            raise StorageError(
                f"staged shard {s3_uri(run.bucket, base + folder)}/ lacks {missing}; re-run that shard's collect task"
            )
        os.makedirs(os.path.join(workdir, str(index)))
        out.append(
            {
                name: download(run.hub, run.bucket, shards[folder][name], os.path.join(workdir, str(index), name))
                for name in wanted
            }
        )
    if "commands" in wanted:
        done = {folder for folder, names in shards.items() if "targets" in names}
        commands_base = run.prefix("commands")
        for key in list_keys(run.hub, run.bucket, commands_base):
            if key[len(commands_base) :].removesuffix(".json.gz") not in done:
                out.append({"commands": stage_commands(run.get(key))})
    return StagedRun(tuple(out))
