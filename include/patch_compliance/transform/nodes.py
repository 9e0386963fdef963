"""The ``nodes`` table: one row per node (and per unreachable target) with compliance and coverage.

Coverage precedence (first match wins; docs/data-contract.md):
UNREACHABLE (target could not be collected) > UNMANAGED (running EC2 instance absent from
DescribeInstanceInformation) > OFFLINE (PingStatus ConnectionLost/Inactive, or this run's invocation
Undeliverable) > SCAN_FAILED (this run's invocation Failed / timed out / cancelled ...) > NOT_SCANNED (managed, no
patch state) > STALE (patch state older than stale_after_days) > SCANNED.

Compliance: NON_COMPLIANT if any non-compliant count is > 0 (docs/aws-behaviours.md §6, §8), COMPLIANT if a patch state
exists and all are 0, UNKNOWN otherwise.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from include.patch_compliance.transform.commands import OFFLINE_OUTCOMES, SCAN_FAILED_OUTCOMES
from include.patch_compliance.transform.keys import lookup
from include.patch_compliance.transform.normalise import (
    blank_to_null,
    map_values,
    normalise_enum,
    parse_time_strings,
    take_targets,
    unrecognised_list,
    whole_days_since,
)
from include.patch_compliance.transform.raw import (
    BASELINE,
    EC2_INSTANCE,
    INSTANCE_INFORMATION,
    NODE_TAGS,
    PATCH_STATE,
    list_items,
)
from include.patch_compliance.transform.schema import (
    EC2_STATES,
    PATCH_COMPLIANCE_STATUSES,
    PATCH_OPERATIONS,
    PING_STATUSES,
    PLATFORM_TYPES,
    RESOURCE_TYPES,
    SEVERITIES,
    TS,
    UNRECOGNISED,
)
from include.patch_compliance.transform.tags import node_tags, tag_maps

NON_COMPLIANT_COUNTS = (
    "critical_non_compliant_count",
    "security_non_compliant_count",
    "other_non_compliant_count",
    "missing_count",
    "failed_count",
    "installed_pending_reboot_count",
    "installed_rejected_count",
)
_STATE_COLUMNS = {
    "PatchGroup": "patch_group",
    "BaselineId": "baseline_id",
    "CriticalNonCompliantCount": "critical_non_compliant_count",
    "SecurityNonCompliantCount": "security_non_compliant_count",
    "OtherNonCompliantCount": "other_non_compliant_count",
    "MissingCount": "missing_count",
    "FailedCount": "failed_count",
    "InstalledPendingRebootCount": "installed_pending_reboot_count",
    "InstalledRejectedCount": "installed_rejected_count",
    "InstalledCount": "installed_count",
    "InstalledOtherCount": "installed_other_count",
    "NotApplicableCount": "not_applicable_count",
    "AvailableSecurityUpdateCount": "available_security_update_count",
}
OFFLINE_PING = ("ConnectionLost", "Inactive")
# Enum columns of the nodes table: column -> its AWS vocabulary. An unknown value is UNKNOWN in the column and
# kept raw in a "_raw_<column>" helper column until the row's unrecognised list is built.
ENUM_COLUMNS = {
    "ping_status": PING_STATUSES,
    "platform_type": PLATFORM_TYPES,
    "resource_type": RESOURCE_TYPES,
    "ec2_state": EC2_STATES,
    "last_operation": PATCH_OPERATIONS,
    "available_security_updates_compliance": PATCH_COMPLIANCE_STATUSES,
}
# The patch-state columns patch_rows needs (first_seen from the scan, AVAILABLE_SECURITY_UPDATE rows kept).
STATE_COLUMNS = ["t", "instance_id", "last_scan_time", "counts_available_security"]


def _enum(frame: pd.DataFrame, column: str, arr: pa.Array | pa.ChunkedArray) -> None:
    normalised, raw = normalise_enum(arr, ENUM_COLUMNS[column])
    frame[column] = _s(normalised)
    frame[f"_raw_{column}"] = _s(raw)


def _s(arr: pa.Array | pa.ChunkedArray) -> pd.Series:
    return pd.Series(arr, dtype=pd.ArrowDtype(arr.type))


def patch_state_frame(raw_docs: list[dict]) -> pd.DataFrame:
    """DescribeInstancePatchStates items per (t, instance_id); the newest OperationEndTime wins on duplicates."""
    table = list_items(raw_docs, "patch_states", PATCH_STATE)
    frame = pd.DataFrame(
        {"t": table.column("t").to_numpy(), "instance_id": _s(blank_to_null(table.column("InstanceId")))}
    )
    for src, dst in _STATE_COLUMNS.items():
        col = table.column(src)
        frame[dst] = _s(blank_to_null(col) if pa.types.is_string(col.type) else col.combine_chunks())
    _enum(frame, "last_operation", table.column("Operation"))
    # The baseline's AvailableSecurityUpdatesComplianceStatus (docs/aws-behaviours.md §37), null when unread.
    baselines = list_items(raw_docs, "baselines", BASELINE)
    settings = pd.DataFrame(
        {
            "t": baselines.column("t").to_numpy(),
            "baseline_id": _s(blank_to_null(baselines.column("BaselineId"))),
            "setting": _s(blank_to_null(baselines.column("AvailableSecurityUpdatesComplianceStatus"))),
        }
    )
    _enum(frame, "available_security_updates_compliance", lookup(frame, settings, ["t", "baseline_id"], "setting"))
    # Its available security updates make it non-compliant (and are patch rows) exactly when both hold.
    has_available = frame["available_security_update_count"].astype("Int64").fillna(0) > 0
    counted = (frame["available_security_updates_compliance"] == "NON_COMPLIANT").fillna(False).astype(bool)
    frame["counts_available_security"] = has_available.to_numpy() & counted.to_numpy()
    frame["last_scan_time"] = _s(
        parse_time_strings(table.column("OperationEndTime"), "patch_states[].OperationEndTime")
    )
    frame["has_patch_state"] = True
    frame = frame[frame["instance_id"].notna()]
    frame = frame.sort_values(["t", "instance_id", "last_scan_time"], na_position="first")
    return frame.drop_duplicates(["t", "instance_id"], keep="last")


def _managed_frame(raw_docs: list[dict]) -> pd.DataFrame:
    table = list_items(raw_docs, "instance_information", INSTANCE_INFORMATION)
    frame = pd.DataFrame(
        {
            "t": table.column("t").to_numpy(),
            "instance_id": _s(blank_to_null(table.column("InstanceId"))),
            "last_ping_time": _s(
                parse_time_strings(table.column("LastPingDateTime"), "instance_information[].LastPingDateTime")
            ),
            "agent_version": _s(blank_to_null(table.column("AgentVersion"))),
            "platform_name": _s(blank_to_null(table.column("PlatformName"))),
            "platform_version": _s(blank_to_null(table.column("PlatformVersion"))),
            "_info_name": _s(
                pc.coalesce(blank_to_null(table.column("ComputerName")), blank_to_null(table.column("Name")))
            ),
        }
    )
    for column, field in (
        ("ping_status", "PingStatus"),
        ("platform_type", "PlatformType"),
        ("resource_type", "ResourceType"),
    ):
        _enum(frame, column, table.column(field))
    frame = frame[frame["instance_id"].notna()].drop_duplicates(["t", "instance_id"], keep="first")
    frame["managed"] = True
    return frame


def _tags_of(table: pa.Table) -> pa.Table:
    """(t, instance_id, tags map) of EC2 instances or of hybrid nodes' SSM tags."""
    ids = blank_to_null(table.column("InstanceId"))
    return tag_maps(pa.table({"t": table.column("t"), "instance_id": ids, "Tags": table.column("Tags")}))


def _ec2_frame(table: pa.Table) -> pd.DataFrame:
    tags = table.column("Tags").combine_chunks()
    flat_tags = pc.list_flatten(tags)
    owners = pc.list_parent_indices(tags)
    is_name = pc.fill_null(pc.equal(pc.struct_field(flat_tags, "Key"), "Name"), False)
    name = pa.nulls(len(table), type=pa.string())
    if len(flat_tags):
        name_values = pc.struct_field(flat_tags, "Value").filter(is_name)
        name_owner = owners.filter(is_name).to_numpy()
        names = np.full(len(table), None, dtype=object)
        names[name_owner] = name_values.to_numpy(zero_copy_only=False)
        name = pa.array(names, type=pa.string())
    frame = pd.DataFrame(
        {
            "t": table.column("t").to_numpy(),
            "instance_id": _s(blank_to_null(table.column("InstanceId"))),
            "_ec2_name": _s(blank_to_null(name)),
            "_ec2_platform": _s(blank_to_null(table.column("PlatformDetails"))),
        }
    )
    _enum(frame, "ec2_state", pc.struct_field(table.column("State").combine_chunks(), "Name"))
    return frame[frame["instance_id"].notna()].drop_duplicates(["t", "instance_id"], keep="first")


def node_rows(
    raw_docs: list[dict],
    targets: pd.DataFrame,
    states: pd.DataFrame,
    invocations: pd.DataFrame,
    patches: pd.DataFrame,
    *,
    now: datetime,
    stale_after_days: int,
) -> pd.DataFrame:
    managed = _managed_frame(raw_docs)
    ec2_items = list_items(raw_docs, "ec2_instances", EC2_INSTANCE)
    ec2 = _ec2_frame(ec2_items)
    # UNMANAGED: running EC2 instances that DescribeInstanceInformation does not list (it omits stopped and
    # terminated nodes, docs/aws-behaviours.md §9, so only running ones are expected to be managed).
    running = ec2[ec2["ec2_state"] == "running"][["t", "instance_id"]]
    known = managed[["t", "instance_id"]].assign(_known=True)
    unmanaged = running.merge(known, on=["t", "instance_id"], how="left")
    unmanaged = unmanaged[unmanaged["_known"].isna()].drop(columns="_known").assign(managed=False)
    frame = pd.concat([managed, unmanaged], ignore_index=True)
    frame = frame.merge(ec2, on=["t", "instance_id"], how="left")
    frame["instance_name"] = frame["_info_name"].fillna(frame["_ec2_name"])
    frame["platform_name"] = frame["platform_name"].fillna(frame["_ec2_platform"])
    frame = frame.merge(states, on=["t", "instance_id"], how="left")

    # One row per unreachable target (null instance_id) so rollups count it, with the stage that failed.
    down = targets.index[targets["target_status"] == "UNREACHABLE"].to_numpy()
    stages = [_error_stage(raw_docs[t]) for t in down]  # a handful of rows: the unreachable targets
    unreachable = pd.DataFrame(
        {"t": down, "managed": False, "target_error_stage": pd.Series(stages, dtype=pd.ArrowDtype(pa.string()))}
    )
    frame = pd.concat([frame, unreachable], ignore_index=True)
    # EC2 tags for instances, SSM tags (ListTagsForResource) for hybrid nodes.
    tag_sources = [_tags_of(ec2_items), _tags_of(list_items(raw_docs, "node_tags", NODE_TAGS))]
    frame["tags"] = node_tags(frame, tag_sources)

    for name, column in take_targets(targets, frame["t"].to_numpy(), list(targets.columns)).items():
        frame[name] = column.array
    frame = frame.merge(invocations, on=["account_id", "region", "instance_id"], how="left")
    frame = _with_patch_aggregates(frame, patches)
    return classify_nodes(_with_unrecognised(frame), pd.Timestamp(now).tz_convert("UTC"), stale_after_days)


def _with_unrecognised(frame: pd.DataFrame) -> pd.DataFrame:
    """The row's unrecognised list from the "_raw_<column>" helpers, which are then dropped. Built with the rows,
    before staging, so the report step's classify_nodes (on staged nodes, without helpers) keeps it."""
    raw = {column: _raw(frame, column) for column in ENUM_COLUMNS}
    unrecognised = unrecognised_list(len(frame), raw)
    frame[UNRECOGNISED] = pd.Series(unrecognised, dtype=pd.ArrowDtype(unrecognised.type), index=frame.index)
    return frame.drop(columns=[f"_raw_{c}" for c in ENUM_COLUMNS if f"_raw_{c}" in frame])


def _error_stage(doc: dict) -> str | None:
    error = doc.get("error")
    return error.get("stage") if isinstance(error, dict) else None


def _with_patch_aggregates(frame: pd.DataFrame, patches: pd.DataFrame) -> pd.DataFrame:
    if len(patches):
        rank = map_values(patches["severity"], {s: i for i, s in enumerate(SEVERITIES)}, len(SEVERITIES) - 1)
        grouped = patches.assign(_rank=rank, _breach=patches["sla_breached"].astype("int64")).groupby(
            ["t", "instance_id"], sort=False, observed=True
        )
        agg = grouped.agg(
            _min_rank=("_rank", "min"), non_compliant_patches=("_rank", "size"), sla_breaches=("_breach", "sum")
        )
        agg = agg.reset_index()
        agg["highest_missing_severity"] = np.asarray(SEVERITIES, dtype=object)[agg["_min_rank"].to_numpy()]
        frame = frame.merge(agg.drop(columns="_min_rank"), on=["t", "instance_id"], how="left")
    else:
        frame["non_compliant_patches"] = np.nan
        frame["sla_breaches"] = np.nan
        frame["highest_missing_severity"] = None
    has_state = frame["has_patch_state"].fillna(False).astype(bool)
    for name in ("non_compliant_patches", "sla_breaches"):
        # 0 for nodes with a patch state and nothing non-compliant; null where nothing is known.
        values = frame[name].astype("Float64")
        frame[name] = values.where(values.notna() | ~has_state, 0).astype("Int64")
    return frame


def _flag(series: pd.Series) -> np.ndarray:
    return series.fillna(False).astype(bool).to_numpy()


def classify_nodes(frame: pd.DataFrame, now: pd.Timestamp, stale_after_days: int) -> pd.DataFrame:
    """compliance_status, scan_age_days and coverage_status from the node's columns and the run's clock (the
    report step runs it again on staged nodes, with its own clock)."""
    has_state = _flag(frame["has_patch_state"])
    counts = frame[list(NON_COMPLIANT_COUNTS)].astype("Int64").fillna(0).to_numpy()
    # Available security updates count against the node where its baseline says so (docs/aws-behaviours.md §37).
    available = frame["available_security_update_count"].astype("Int64").fillna(0).to_numpy() > 0
    counted = _flag(frame["available_security_updates_compliance"] == "NON_COMPLIANT")
    non_compliant = (counts > 0).any(axis=1) | (available & counted)
    frame["compliance_status"] = np.select(
        [non_compliant, has_state], ["NON_COMPLIANT", "COMPLIANT"], default="UNKNOWN"
    )

    # A node scanned during the run ends its scan after the run's clock: age 0, not -1 (nulls stay null).
    age = pc.max_element_wise(whole_days_since(now, frame["last_scan_time"]), 0, skip_nulls=False)
    frame["scan_age_days"] = pd.Series(age, dtype=pd.ArrowDtype(age.type), index=frame.index)
    cutoff = pa.scalar(now - pd.Timedelta(days=stale_after_days), type=TS)
    stale = pc.fill_null(pc.less(pa.array(frame["last_scan_time"]).cast(TS), cutoff), False).to_numpy(
        zero_copy_only=False
    )
    outcome = frame["outcome"].astype(object)
    offline = _flag(frame["ping_status"].isin(OFFLINE_PING)) | _flag(outcome.isin(OFFLINE_OUTCOMES))
    failed = _flag(outcome.isin(SCAN_FAILED_OUTCOMES))
    unreachable = (frame["target_status"] == "UNREACHABLE").to_numpy()
    unmanaged = ~_flag(frame["managed"]) & ~unreachable
    frame["coverage_status"] = np.select(
        [unreachable, unmanaged, offline, failed, ~has_state, stale],
        ["UNREACHABLE", "UNMANAGED", "OFFLINE", "SCAN_FAILED", "NOT_SCANNED", "STALE"],
        default="SCANNED",
    )
    return frame


def _raw(frame: pd.DataFrame, column: str) -> pa.Array | None:
    """The raw unrecognised values of an enum column, aligned with ``frame`` (null where the row has none)."""
    name = f"_raw_{column}"
    if name not in frame:
        return None
    return pa.array(frame[name].astype(pd.ArrowDtype(pa.string())), type=pa.string(), from_pandas=True)
