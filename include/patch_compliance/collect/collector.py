"""Collect both result channels of Patch Manager for one account-region into a raw document.

Channels: ``AWS:PatchSummary`` (DescribeInstancePatchStates / DescribeInstancePatches) and ``AWS:ComplianceItem``
(ListResourceComplianceSummaries for every resource, then ListComplianceItems with a Status filter only for the
resources NON_COMPLIANT there: Patch and Association, e.g. from AWS-RunPatchBaselineAssociation), plus managed-node
information (reused from the scan when fresh), running EC2 instances (to find unmanaged ones; their tags are the
owner tags) and the SSM tags of hybrid nodes. Items are kept as
the APIs return them; the transform step owns normalisation (docs/architecture.md, raw collection document).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from include.patch_compliance.aws import UNREACHABLE_CODES, AwsContext, TargetUnreachable, chunks, error_code, paginate
from include.patch_compliance.config import CollectConfig
from include.patch_compliance.records import RawDocument, TargetDict

# DescribeInstancePatchStates: ≤ 50 ids and MaxResults ≤ 50 on the live service (docs/aws-behaviours.md §6).
PATCH_STATE_BATCH = 50
# States that make a node non-compliant (docs/aws-behaviours.md §8), in the CamelCase the filter docs use (§7).
NON_COMPLIANT_STATES = ["Missing", "Failed", "InstalledPendingReboot", "InstalledRejected"]
NON_COMPLIANT_COUNTS = (
    "MissingCount",
    "FailedCount",
    "InstalledPendingRebootCount",
    "InstalledRejectedCount",
    "CriticalNonCompliantCount",
    "SecurityNonCompliantCount",
    "OtherNonCompliantCount",
)
EC2_KEEP = ("InstanceId", "State", "Tags", "PlatformDetails", "Platform", "LaunchTime", "InstanceType")
# The compliance types the compliance_items table holds, in the order their items are listed.
COMPLIANCE_TYPES = ("Patch", "Association")
# What SSM answers for a filter key it does not take (as the emulator does for unknown keys).
FILTER_REFUSED = frozenset({"InvalidFilter", "InvalidFilterKey", "ValidationException"})


def is_non_compliant(state: dict[str, Any]) -> bool:
    return any((state.get(k) or 0) > 0 for k in NON_COMPLIANT_COUNTS)


def managed_nodes(ssm: Any) -> list[dict[str, Any]]:
    # MaxResults 5..50 (docs/aws-behaviours.md §9); stopped/terminated nodes are not returned.
    return list(paginate(ssm, "describe_instance_information", "InstanceInformationList", MaxResults=50))


def running_instances(ec2: Any) -> list[dict[str, Any]]:
    filters = [{"Name": "instance-state-name", "Values": ["running"]}]
    return [
        {k: inst[k] for k in EC2_KEEP if k in inst}
        for reservation in paginate(ec2, "describe_instances", "Reservations", Filters=filters)
        for inst in reservation.get("Instances", [])
    ]


def patch_states(ssm: Any, instance_ids: list[str]) -> list[dict[str, Any]]:
    return [
        state
        for batch in chunks(instance_ids, PATCH_STATE_BATCH)
        for state in paginate(
            ssm, "describe_instance_patch_states", "InstancePatchStates", InstanceIds=batch, MaxResults=50
        )
    ]


def non_compliant_patches(ssm: Any, instance_id: str, available_security: bool = False) -> list[dict[str, Any]]:
    """The node's non-compliant patches; with ``available_security`` (its baseline counts them) also the
    AvailableSecurityUpdate ones (docs/aws-behaviours.md §37)."""
    states = NON_COMPLIANT_STATES + (["AvailableSecurityUpdate"] if available_security else [])
    filters = [{"Key": "State", "Values": states}]
    return list(
        paginate(ssm, "describe_instance_patches", "Patches", InstanceId=instance_id, Filters=filters, MaxResults=100)
    )


def baseline_setting(ssm: Any, baseline_id: str) -> dict[str, Any]:
    """What the report needs of one patch baseline: GetPatchBaseline's AvailableSecurityUpdatesComplianceStatus
    (docs/aws-behaviours.md §37), keyed by the id as the patch states name it."""
    baseline = ssm.get_patch_baseline(BaselineId=baseline_id)
    return {
        "BaselineId": baseline_id,
        "OperatingSystem": baseline.get("OperatingSystem"),
        "AvailableSecurityUpdatesComplianceStatus": baseline.get("AvailableSecurityUpdatesComplianceStatus"),
    }


def hybrid_node_ids(instance_information: list[dict[str, Any]]) -> list[str]:
    """Hybrid (``mi-``) nodes: their owner tags are SSM tags, not EC2 tags."""
    return sorted(n["InstanceId"] for n in instance_information if n.get("ResourceType") == "ManagedInstance")


def managed_instance_tags(ssm: Any, instance_id: str) -> list[dict[str, str]]:
    """The SSM tags of one hybrid node: one ListTagsForResource call (one resource, not paged; docs/aws-behaviours.md
    §36)."""
    return ssm.list_tags_for_resource(ResourceType="ManagedInstance", ResourceId=instance_id).get("TagList", [])


def non_compliant_types(ssm: Any) -> dict[str, list[str]]:
    """Per resource id, the compliance types (of COMPLIANCE_TYPES) ListResourceComplianceSummaries reports
    NON_COMPLIANT: one paged call per account-region for every node (docs/aws-behaviours.md §10, §35)."""
    filters = [{"Key": "ComplianceType", "Values": list(COMPLIANCE_TYPES), "Type": "EQUAL"}]
    out: dict[str, list[str]] = {}
    for summary in paginate(
        ssm, "list_resource_compliance_summaries", "ResourceComplianceSummaryItems", Filters=filters, MaxResults=50
    ):
        if summary.get("Status") == "NON_COMPLIANT" and summary.get("ComplianceType") in COMPLIANCE_TYPES:
            types = out.setdefault(summary["ResourceId"], [])
            if summary["ComplianceType"] not in types:
                types.append(summary["ComplianceType"])
    return out


def compliance_items(ssm: Any, instance_id: str, types: list[str]) -> list[dict[str, Any]]:
    """The NON_COMPLIANT items of one node. ListComplianceItems takes exactly one ResourceId per call today
    (docs/aws-behaviours.md §10). The Status filter key is not confirmed against the live service (§35): if it is
    refused, the node is listed by type only; either way only NON_COMPLIANT items are kept."""
    by_type = {"Key": "ComplianceType", "Values": sorted(types, key=COMPLIANCE_TYPES.index), "Type": "EQUAL"}
    by_status = {"Key": "Status", "Values": ["NON_COMPLIANT"], "Type": "EQUAL"}

    def listed(filters: list[dict[str, Any]]) -> list[dict[str, Any]]:
        items = paginate(
            ssm,
            "list_compliance_items",
            "ComplianceItems",
            ResourceIds=[instance_id],
            ResourceTypes=["ManagedInstance"],
            Filters=filters,
            MaxResults=50,
        )
        return [item for item in items if item.get("Status") == "NON_COMPLIANT"]

    try:
        return listed([by_type, by_status])
    except ClientError as exc:
        if error_code(exc) not in FILTER_REFUSED:
            raise
        return listed([by_type])


def collect_target(
    account_context: Callable[[str], AwsContext],
    target: TargetDict,
    cfg: CollectConfig,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    listing: list[dict[str, Any]] | None = None,
) -> RawDocument:
    """The raw document of one target. ``listing`` is the scan's DescribeInstanceInformation result for this
    target when it is fresh enough to reuse (None: list the nodes here). Unreachable accounts/regions are
    recorded; a failing per-node call is recorded in ``warnings`` and what was already collected is kept."""
    doc: RawDocument = {
        "target": target,
        "status": "OK",
        "error": None,
        "warnings": [],
        "collected_at": now().isoformat(),
        "listing_reused": listing is not None,
        "instance_information": [],
        "ec2_instances": [],
        "patch_states": [],
        "patches": {},
        "compliance_items": {},
        "node_tags": [],
        "baselines": [],
    }
    try:
        ctx = account_context(target["account_id"])
        ssm = ctx.client("ssm", target["region"])
        doc["instance_information"] = list(listing) if listing is not None else managed_nodes(ssm)
        doc["ec2_instances"] = running_instances(ctx.client("ec2", target["region"]))
        ids = sorted(n["InstanceId"] for n in doc["instance_information"])
        doc["patch_states"] = patch_states(ssm, ids)
    except TargetUnreachable as exc:
        doc["status"], doc["error"] = "UNREACHABLE", exc.as_dict()
        return doc
    except (ClientError, BotoCoreError) as exc:
        code = error_code(exc)
        doc["error"] = {"stage": "collect", "code": code, "message": str(exc)}
        if code in UNREACHABLE_CODES:
            doc["status"] = "UNREACHABLE"
        return doc
    for node_id in hybrid_node_ids(doc["instance_information"]):  # one call per hybrid node
        try:
            doc["node_tags"].append({"InstanceId": node_id, "Tags": managed_instance_tags(ssm, node_id)})
        except (ClientError, BotoCoreError) as exc:
            doc["warnings"].append(
                {"stage": "node_tags", "instance_id": node_id, "code": error_code(exc), "message": str(exc)}
            )
    for baseline_id in sorted({s["BaselineId"] for s in doc["patch_states"] if s.get("BaselineId")}):
        try:  # once per distinct baseline of the account-region
            doc["baselines"].append(baseline_setting(ssm, baseline_id))
        except (ClientError, BotoCoreError) as exc:
            doc["warnings"].append(
                {"stage": "baselines", "instance_id": None, "code": error_code(exc), "message": str(exc)}
            )
    counted = {
        b["BaselineId"] for b in doc["baselines"] if b["AvailableSecurityUpdatesComplianceStatus"] == "NON_COMPLIANT"
    }
    for state in doc["patch_states"]:
        available = state.get("BaselineId") in counted and (state.get("AvailableSecurityUpdateCount") or 0) > 0
        if is_non_compliant(state) or available:
            _per_node(
                doc, "patches", state["InstanceId"], partial(non_compliant_patches, ssm, available_security=available)
            )
    if cfg.compliance_items and ids:
        try:
            flagged = non_compliant_types(ssm)
        except (ClientError, BotoCoreError) as exc:
            flagged = {}
            doc["warnings"].append(
                {"stage": "compliance_summaries", "instance_id": None, "code": error_code(exc), "message": str(exc)}
            )
        for node_id in ids:
            if node_id in flagged:
                types = flagged[node_id]
                _per_node(doc, "compliance_items", node_id, partial(compliance_items, ssm, types=types))
    return doc


def _per_node(
    doc: RawDocument, field: Literal["patches", "compliance_items"], instance_id: str, fetch: Callable[[str], list]
) -> None:
    try:
        doc[field][instance_id] = fetch(instance_id)
    except (ClientError, BotoCoreError) as exc:
        doc["warnings"].append(
            {"stage": field, "instance_id": instance_id, "code": error_code(exc), "message": str(exc)}
        )
