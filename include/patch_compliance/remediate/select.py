"""Which nodes a remediation run patches: the NON_COMPLIANT, reachable nodes of a published report that match the
run's filters, most urgent first, each left-out node with the reason.

Pure pandas on the published ``nodes`` and ``patches`` tables (docs/data-contract.md); nothing here calls AWS.
Filters pick nodes, not patches: ``AWS-RunPatchBaseline`` Install installs every patch the node's baseline
approves (docs/aws-behaviours.md §29).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from include.patch_compliance.vocab import ACCOUNT_ID_PATTERN, OU_REF_PATTERN, REGION_PATTERN, SEVERITIES

CVE_PATTERN = r"^CVE-\d{4}-\d{4,}$"
# Coverage that means an Install cannot reach the node (docs/data-contract.md, "Coverage status").
UNREACHABLE_COVERAGE = ("UNREACHABLE", "UNMANAGED", "OFFLINE")
# Patch states an Install changes: Missing/Failed are installed; pending-reboot ones only with a reboot.
INSTALLABLE_STATES = ("MISSING", "FAILED")
REBOOT_STATES = ("INSTALLED_PENDING_REBOOT",)
# Why a node was left out, in the order the checks run (the first that applies is recorded).
REASONS = {
    "NOT_A_NODE": "the account-region could not be collected by the scan (no node rows)",
    "COMPLIANT": "compliant in the report",
    "UNKNOWN": "compliance unknown in the report (no patch state)",
    "UNREACHABLE": "coverage UNREACHABLE in the report",
    "UNMANAGED": "coverage UNMANAGED: no SSM agent answers, an Install cannot reach it",
    "OFFLINE": "coverage OFFLINE: the agent is not connected, an Install would be undeliverable",
    "OU": "not under the OUs of the ou_ids param",
    "ACCOUNT": "not in the accounts param",
    "REGION": "not in the regions param",
    "TAGS": "its tags do not match the tags param",
    "NOTHING_TO_INSTALL": "no Missing or Failed patch: an Install would change nothing (InstalledRejected stays, "
    "and pending-reboot patches need RebootIfNeeded)",
    "PATCH_FILTER": "no installable patch matches min_severity / classifications / cve_ids",
    "MAX_NODES": "beyond the max_nodes param (more urgent nodes were taken first)",
}
NODE_KEY = ["account_id", "region", "instance_id"]


class SelectionError(ValueError):
    """Run params that cannot select anything meaningful; the message names the param and the fix."""


@dataclass(frozen=True)
class Filters:
    """The run's node filters (trigger-form params); empty = no restriction."""

    ou_ids: tuple[str, ...] = ()
    accounts: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    min_severity: str | None = None
    classifications: tuple[str, ...] = ()
    cve_ids: tuple[str, ...] = ()
    tags: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    max_nodes: int | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> Filters:
        """Validate the params (the form validates too; a CLI conf may not), naming the param and the fix."""

        def strings(name: str, pattern: str | None = None) -> tuple[str, ...]:
            value = params.get(name) or []
            if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
                raise SelectionError(f"param {name}={value!r}: give a list of strings, e.g. [] for no restriction")
            bad = [v for v in value if pattern and not re.match(pattern, v)]
            if bad:
                raise SelectionError(f"param {name}: {bad} do not match {pattern}")
            return tuple(dict.fromkeys(value))

        severity = params.get("min_severity") or None
        if severity is not None and severity not in SEVERITIES:
            raise SelectionError(f"param min_severity={severity!r}: use one of {', '.join(SEVERITIES)} or null")
        max_nodes = params.get("max_nodes")
        if max_nodes is not None and (isinstance(max_nodes, bool) or not isinstance(max_nodes, int) or max_nodes < 1):
            raise SelectionError(f"param max_nodes={max_nodes!r}: give a whole number >= 1, or null for no cap")
        tags = params.get("tags") or {}
        if not isinstance(tags, Mapping) or not all(
            isinstance(k, str) and isinstance(v, list | tuple) and all(isinstance(x, str) for x in v)
            for k, v in tags.items()
        ):
            raise SelectionError(
                f"param tags={tags!r}: give a map tag key -> list of values, e.g. {{'Patch': ['true']}}"
            )
        return cls(
            ou_ids=strings("ou_ids", OU_REF_PATTERN),
            accounts=strings("accounts", ACCOUNT_ID_PATTERN),
            regions=strings("regions", REGION_PATTERN),
            min_severity=severity,
            classifications=strings("classifications"),
            cve_ids=strings("cve_ids", CVE_PATTERN),
            tags={k: tuple(v) for k, v in sorted(tags.items())},
            max_nodes=max_nodes,
        )

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["tags"] = {k: list(v) for k, v in self.tags.items()}
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}

    @property
    def patch_filters(self) -> bool:
        return bool(self.min_severity or self.classifications or self.cve_ids)


@dataclass
class Selection:
    """The chosen nodes (rows of the report's nodes table, most urgent first) and every other row's reason."""

    selected: pd.DataFrame
    left_out: pd.DataFrame  # account_id, region, instance_id, compliance_status, coverage_status, reason

    def counts(self) -> dict[str, int]:
        counts = self.left_out["reason"].value_counts()
        return {reason: int(counts.get(reason, 0)) for reason in REASONS if counts.get(reason, 0)}


def _under_ous(nodes: pd.DataFrame, refs: tuple[str, ...]) -> pd.Series:
    """OU refs by path take descendants; an id is resolved to its path through the report's rows."""
    paths = nodes["ou_path"].astype(object).fillna("")
    by_id = dict(zip(nodes["ou_id"].astype(object), paths, strict=True))
    inside = pd.Series(False, index=nodes.index)
    for ref in refs:
        path = ref if ref.startswith("Root") else by_id.get(ref)
        if path is None:
            raise SelectionError(
                f"param ou_ids: {ref!r} is not the OU of any account in the report; name it by path "
                "(e.g. Root/Workloads/Prod) to take its descendants"
            )
        inside |= (paths == path) | paths.str.startswith(path + "/")
    return inside


def _tag_map(value: Any) -> dict[str, str]:
    """A node's tags as {key: value}: a mapping, Arrow map rows (key, value) pairs, or [{Key, Value}] items."""
    if value is None or (not isinstance(value, Mapping) and not isinstance(value, list | tuple | np.ndarray)):
        return {}
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    out = {}
    for item in value:
        if isinstance(item, Mapping):
            out[str(item.get("Key", item.get("key")))] = str(item.get("Value", item.get("value")))
        else:
            out[str(item[0])] = str(item[1])
    return out


def _tags_match(nodes: pd.DataFrame, wanted: Mapping[str, tuple[str, ...]]) -> pd.Series:
    """Keys ANDed, values of one key ORed, no values = the key is present (as SendCommand Targets, §1)."""
    if "tags" not in nodes.columns:
        raise SelectionError(
            "param tags: the report's nodes table has no tags column (the scan that published it does not record "
            "tags); leave tags empty, or filter by ou_ids / accounts / regions"
        )

    def ok(value: Any) -> bool:
        tags = _tag_map(value)
        return all(k in tags and (not values or tags[k] in values) for k, values in wanted.items())

    return nodes["tags"].map(ok).astype(bool)


def _matching_patch_nodes(patches: pd.DataFrame, filters: Filters, states: tuple[str, ...]) -> pd.DataFrame:
    """Node keys with at least one installable patch that matches every patch filter given."""
    rows = patches[patches["state"].isin(states)]
    if filters.min_severity:
        rank = {s: i for i, s in enumerate(SEVERITIES)}
        limit = rank[filters.min_severity]
        rows = rows[rows["severity"].map(lambda s: rank.get(s, len(SEVERITIES)) <= limit).astype(bool)]
    if filters.classifications:
        wanted = {c.lower() for c in filters.classifications}
        rows = rows[rows["classification"].map(lambda c: isinstance(c, str) and c.lower() in wanted).astype(bool)]
    if filters.cve_ids:
        wanted = set(filters.cve_ids)
        rows = rows[rows["cve_ids"].map(lambda ids: ids is not None and bool(wanted & set(ids))).astype(bool)]
    return rows[NODE_KEY].drop_duplicates()


def select_nodes(nodes: pd.DataFrame, patches: pd.DataFrame, filters: Filters, reboot_option: str) -> Selection:
    """Apply the checks of ``REASONS`` in order; the rest, most urgent first (highest missing severity, SLA
    breaches, missing + failed patches), capped at ``filters.max_nodes``."""
    frame = nodes.reset_index(drop=True)
    reason = pd.Series([None] * len(frame), index=frame.index, dtype=object)

    def leave(code: str, mask: pd.Series) -> None:
        reason[reason.isna() & mask.fillna(False).astype(bool)] = code

    counts = {c: frame[c].fillna(0).astype("int64") for c in ("missing_count", "failed_count")}
    pending = frame["installed_pending_reboot_count"].fillna(0).astype("int64")
    status = frame["compliance_status"].astype(object)
    coverage = frame["coverage_status"].astype(object)
    leave("NOT_A_NODE", frame["instance_id"].isna())
    leave("COMPLIANT", status == "COMPLIANT")
    leave("UNKNOWN", status != "NON_COMPLIANT")
    for code in UNREACHABLE_COVERAGE:
        leave(code, coverage == code)
    if filters.ou_ids:
        leave("OU", ~_under_ous(frame, filters.ou_ids))
    if filters.accounts:
        leave("ACCOUNT", ~frame["account_id"].isin(filters.accounts))
    if filters.regions:
        leave("REGION", ~frame["region"].isin(filters.regions))
    if filters.tags:
        leave("TAGS", ~_tags_match(frame, filters.tags))
    reboots = reboot_option == "RebootIfNeeded"
    installable = (counts["missing_count"] + counts["failed_count"] > 0) | ((pending > 0) & reboots)
    leave("NOTHING_TO_INSTALL", ~installable)
    if filters.patch_filters:
        states = INSTALLABLE_STATES + (REBOOT_STATES if reboots else ())
        matched = _matching_patch_nodes(patches, filters, states).assign(_match=True)
        hit = frame[NODE_KEY].merge(matched, on=NODE_KEY, how="left")["_match"].fillna(False).astype(bool)
        leave("PATCH_FILTER", ~hit.set_axis(frame.index))
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    order = frame.assign(
        _sev=frame["highest_missing_severity"].map(lambda s: rank.get(s, len(SEVERITIES))).astype("int64"),
        _sla=frame["sla_breaches"].fillna(0).astype("int64"),
        _todo=counts["missing_count"] + counts["failed_count"],
    ).sort_values(
        ["_sev", "_sla", "_todo", "ou_path", "account_id", "region", "instance_id"],
        ascending=[True, False, False, True, True, True, True],
        kind="stable",
    )
    chosen = [i for i in order.index if reason[i] is None]
    if filters.max_nodes is not None:
        for i in chosen[filters.max_nodes :]:
            reason[i] = "MAX_NODES"
        chosen = chosen[: filters.max_nodes]
    left = frame.loc[reason.notna(), [*NODE_KEY, "compliance_status", "coverage_status"]].assign(
        reason=reason[reason.notna()]
    )
    return Selection(selected=frame.loc[chosen].reset_index(drop=True), left_out=left.reset_index(drop=True))
