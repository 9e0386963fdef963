"""SSM node, patch and compliance read APIs (docs/aws-behaviours.md §6-§10) over the generated fleet."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sandbox.awsproto import AwsError
from sandbox.nodes import Node, RegionData, available_security_updates_status
from sandbox.paging import page
from sandbox.ssm_api import INSTANCE_ID_RE, Handler
from sandbox.ssm_shapes import (
    SEVERITY_ORDER,
    compliance_items,
    instance_information,
    instance_patch_state,
    patch_compliance_data,
    resource_compliance_summaries,
)
from sandbox.validation import check_max
from sandbox.world import World

DII_KEYS = {
    "ActivationIds",
    "AgentVersion",
    "AssociationStatus",
    "IamRole",
    "InstanceIds",
    "PingStatus",
    "PlatformTypes",
    "PlatformType",
    "ResourceType",
    "SourceIds",
    "SourceTypes",
}
DII_VALUES = {
    "PingStatus": {"Online", "ConnectionLost", "Inactive"},
    "PlatformTypes": {"Windows", "Linux", "MacOS"},
    "PlatformType": {"Windows", "Linux", "MacOS"},
    "ResourceType": {"EC2Instance", "ManagedInstance"},
    "AssociationStatus": {"Success", "Pending", "Failed"},
    "SourceTypes": {"AWS::EC2::Instance", "AWS::SSM::ManagedInstance", "AWS::IoT::Thing"},
}
PATCH_STATE_KEYS = {
    "InstalledCount",
    "InstalledOtherCount",
    "InstalledPendingRebootCount",
    "InstalledRejectedCount",
    "MissingCount",
    "FailedCount",
    "UnreportedNotApplicableCount",
    "NotApplicableCount",
}
PATCH_FILTER_KEYS = {"Classification", "KBId", "Severity", "State"}


def _dii_field(info: dict, key: str) -> str | None:
    return {
        "ActivationIds": info.get("ActivationId"),
        "AgentVersion": info.get("AgentVersion"),
        "AssociationStatus": info.get("AssociationStatus"),
        "IamRole": info.get("IamRole"),
        "InstanceIds": info["InstanceId"],
        "PingStatus": info["PingStatus"],
        "PlatformTypes": info["PlatformType"],
        "PlatformType": info["PlatformType"],
        "ResourceType": info["ResourceType"],
        "SourceIds": info.get("SourceId"),
        "SourceTypes": info.get("SourceType"),
    }[key]


def describe_instance_information(world: World, rd: RegionData, body: dict) -> dict:
    filters = body.get("Filters") or []
    legacy = body.get("InstanceInformationFilterList") or []
    if filters and legacy:
        raise AwsError(
            "ValidationException", "InstanceInformationFilterList and Filters can't be used together; use Filters"
        )
    pairs = [(f["Key"], f["Values"]) for f in filters] + [(f["key"], f["valueSet"]) for f in legacy]
    has_tag = any(k.startswith("tag:") or k == "tag-key" for k, _ in pairs)
    if has_tag and any(not (k.startswith("tag:") or k == "tag-key") for k, _ in pairs):
        raise AwsError(
            "InvalidFilterKey", "Tag filters can't be combined with other filter keys (docs/aws-behaviours.md §9)"
        )
    for key, values in pairs:
        if not (key.startswith("tag:") or key == "tag-key" or key in DII_KEYS):
            raise AwsError(
                "InvalidFilterKey",
                f"The filter key {key} is not valid; use one of {', '.join(sorted(DII_KEYS))}, tag-key or tag:<key>",
            )
        allowed = DII_VALUES.get(key)
        bad = [v for v in values if allowed and v not in allowed]
        if bad:
            raise AwsError("InvalidInstanceInformationFilterValue", f"{bad[0]} is not a valid value for {key}")
        if key == "InstanceIds":
            for v in values:
                if not INSTANCE_ID_RE.match(v):
                    raise AwsError("InvalidInstanceId", f"Instance ID {v} is not valid.")
    out = []
    for node in rd.managed_nodes():  # never stopped or terminated nodes (docs/aws-behaviours.md §9)
        info = instance_information(node)
        if all(_dii_match(node, info, k, v) for k, v in pairs):
            out.append(info)
    items, token = page(
        out,
        body.get("MaxResults") or 10,
        body.get("NextToken"),
        f"DII:{rd.account_id}:{rd.region}:{sorted(map(str, pairs))}",
    )
    return {"InstanceInformationList": items, **({"NextToken": token} if token else {})}


def _dii_match(node: Node, info: dict, key: str, values: list[str]) -> bool:
    if key.startswith("tag:"):
        return node.tags.get(key[4:]) in values
    if key == "tag-key":
        return any(v in node.tags for v in values)
    return _dii_field(info, key) in values


def describe_instance_patch_states(world: World, rd: RegionData, body: dict) -> dict:
    # Model allows 100, the live service rejects > 50 (docs/aws-behaviours.md §6).
    check_max(body.get("MaxResults"), 50, "maxResults")
    world.settle(rd)
    states = []
    for iid in body["InstanceIds"]:
        node = rd.nodes.get(iid)
        if node is not None and node.managed:
            state = instance_patch_state(node, rd)
            if state:
                states.append(state)
    items, token = page(
        states,
        body.get("MaxResults") or 10,
        body.get("NextToken"),
        f"DIPS:{rd.account_id}:{rd.region}:{','.join(body['InstanceIds'])}",
    )
    return {"InstancePatchStates": items, **({"NextToken": token} if token else {})}


def _compare(actual: float, op: str, value: float) -> bool:
    return {
        "Equal": actual == value,
        "NotEqual": actual != value,
        "LessThan": actual < value,
        "GreaterThan": actual > value,
    }[op]


def describe_instance_patch_states_for_patch_group(world: World, rd: RegionData, body: dict) -> dict:
    filters = body.get("Filters") or []
    for f in filters:
        if f["Key"] not in PATCH_STATE_KEYS:
            raise AwsError(
                "InvalidFilter",
                f"The filter key {f['Key']} is not valid; use one of {', '.join(sorted(PATCH_STATE_KEYS))}",
            )
        if not f["Values"][0].isdigit():
            raise AwsError("InvalidFilter", f"The filter value {f['Values'][0]} for {f['Key']} must be an integer >= 0")
    world.settle(rd)
    states = []
    for node in rd.managed_nodes():
        if node.patch_group != body["PatchGroup"]:
            continue
        state = instance_patch_state(node, rd)
        if state and all(_compare(state[f["Key"]], f["Type"], int(f["Values"][0])) for f in filters):
            states.append(state)
    items, token = page(
        states,
        body.get("MaxResults") or 10,
        body.get("NextToken"),
        f"DIPSFPG:{rd.account_id}:{rd.region}:{body['PatchGroup']}:{filters}",
    )
    return {"InstancePatchStates": items, **({"NextToken": token} if token else {})}


def describe_instance_patches(world: World, rd: RegionData, body: dict) -> dict:
    iid = body["InstanceId"]
    node = rd.nodes.get(iid)
    if node is None or not node.managed:
        raise AwsError("InvalidInstanceId", f"Instance ID {iid} is not a managed node in this account and region.")
    filters = body.get("Filters") or []
    for f in filters:
        if f.get("Key") not in PATCH_FILTER_KEYS:
            raise AwsError(
                "InvalidFilter",
                f"The filter key {f.get('Key')} is not valid; use one of {', '.join(sorted(PATCH_FILTER_KEYS))}",
            )
    world.settle(rd)
    patches = patch_compliance_data(node, rd)
    for f in filters:
        wanted = {_norm(v) for v in f.get("Values") or []}
        patches = [p for p in patches if _norm(p[f["Key"]]) in wanted]
    items, token = page(
        patches, body.get("MaxResults") or 10, body.get("NextToken"), f"DIP:{rd.account_id}:{rd.region}:{iid}:{filters}"
    )
    return {"Patches": items, **({"NextToken": token} if token else {})}


def _norm(value: str) -> str:
    """State filters accept CamelCase and UPPER_SNAKE spellings (docs/aws-behaviours.md §7)."""
    return value.replace("_", "").lower()


def _compliance_filter(filters: list[dict], keys: set[str]) -> Callable[[dict], bool]:
    for f in filters:
        if f.get("Key") not in keys:
            raise AwsError(
                "InvalidFilter", f"The filter key {f.get('Key')} is not valid; use one of {', '.join(sorted(keys))}"
            )

    def value_of(item: dict, key: str) -> object:
        if key == "ExecutionTime":
            return item["ExecutionSummary"]["ExecutionTime"]
        if key == "PatchState":
            return item.get("Details", {}).get("PatchState", "")
        return item.get(key, "")

    def ok(item: dict) -> bool:
        for f in filters:
            actual = value_of(item, f["Key"])
            op = f.get("Type") or "EQUAL"
            values = f.get("Values") or []
            if f["Key"] == "ExecutionTime":
                values = [datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp() for v in values]
            if op == "EQUAL" and actual not in values:
                return False
            if op == "NOT_EQUAL" and actual in values:
                return False
            if op == "BEGIN_WITH" and not any(str(actual).startswith(str(v)) for v in values):
                return False
            if op == "LESS_THAN" and not all(actual < v for v in values):
                return False
            if op == "GREATER_THAN" and not all(actual > v for v in values):
                return False
        return True

    return ok


def list_compliance_items(world: World, rd: RegionData, body: dict) -> dict:
    ids = body.get("ResourceIds") or []
    if len(ids) != 1:  # "Currently, you can only specify one resource ID" (docs/aws-behaviours.md §10)
        raise AwsError("ValidationException", f"ResourceIds must hold exactly one resource ID, got {len(ids)}")
    types = body.get("ResourceTypes") or ["ManagedInstance"]
    if types != ["ManagedInstance"]:
        raise AwsError("InvalidResourceType", "The only supported resource type is ManagedInstance.")
    ok = _compliance_filter(
        body.get("Filters") or [],
        {"ComplianceType", "Status", "Severity", "Id", "Title", "ExecutionTime", "PatchState"},
    )
    world.settle(rd)
    node = rd.nodes.get(ids[0])
    items = [i for i in compliance_items(node, rd) if ok(i)] if node is not None and not node.terminated else []
    chunk, token = page(
        items,
        body.get("MaxResults") or 10,
        body.get("NextToken"),
        f"LCI:{rd.account_id}:{rd.region}:{ids[0]}:{body.get('Filters')}",
    )
    return {"ComplianceItems": chunk, **({"NextToken": token} if token else {})}


def list_resource_compliance_summaries(world: World, rd: RegionData, body: dict) -> dict:
    ok = _compliance_filter(
        body.get("Filters") or [],
        {"ComplianceType", "Status", "OverallSeverity", "ResourceId", "ResourceType", "ExecutionTime"},
    )
    world.settle(rd)
    out = [s for node in rd.managed_nodes() for s in resource_compliance_summaries(node, rd) if ok(s)]
    chunk, token = page(
        out,
        body.get("MaxResults") or 10,
        body.get("NextToken"),
        f"LRCS:{rd.account_id}:{rd.region}:{body.get('Filters')}",
    )
    return {"ResourceComplianceSummaryItems": chunk, **({"NextToken": token} if token else {})}


def list_compliance_summaries(world: World, rd: RegionData, body: dict) -> dict:
    ok = _compliance_filter(body.get("Filters") or [], {"ComplianceType"})
    world.settle(rd)
    keys = {s: s.capitalize() + "Count" for s in SEVERITY_ORDER}
    by_type: dict[str, dict] = {}
    for node in rd.managed_nodes():
        for s in resource_compliance_summaries(node, rd):
            if not ok(s):
                continue
            entry = by_type.setdefault(
                s["ComplianceType"],
                {
                    "ComplianceType": s["ComplianceType"],
                    "CompliantSummary": {"CompliantCount": 0, "SeveritySummary": dict.fromkeys(keys.values(), 0)},
                    "NonCompliantSummary": {"NonCompliantCount": 0, "SeveritySummary": dict.fromkeys(keys.values(), 0)},
                },
            )
            side = "CompliantSummary" if s["Status"] == "COMPLIANT" else "NonCompliantSummary"
            entry[side]["CompliantCount" if side == "CompliantSummary" else "NonCompliantCount"] += 1
            entry[side]["SeveritySummary"][keys[s["OverallSeverity"]]] += 1
    chunk, token = page(
        list(by_type.values()),
        body.get("MaxResults") or 50,
        body.get("NextToken"),
        f"LCS:{rd.account_id}:{rd.region}:{body.get('Filters')}",
    )
    return {"ComplianceSummaryItems": chunk, **({"NextToken": token} if token else {})}


def describe_patch_baselines(world: World, rd: RegionData, body: dict) -> dict:
    ids = [{**b} for b in rd.baselines.values()]
    chunk, token = page(ids, body.get("MaxResults") or 50, body.get("NextToken"), f"DPB:{rd.account_id}:{rd.region}")
    return {"BaselineIdentities": chunk, **({"NextToken": token} if token else {})}


def get_patch_baseline_for_patch_group(world: World, rd: RegionData, body: dict) -> dict:
    # One baseline per operating system per account-region in the fleet, registered as the default, so it is the
    # answer for every patch group of that OS (the OperatingSystem default is WINDOWS, as in the API).
    os_name = body.get("OperatingSystem", "WINDOWS")
    baseline = next((b for b in rd.baselines.values() if b["OperatingSystem"] == os_name), None)
    return {
        "BaselineId": baseline["BaselineId"] if baseline else "",
        "PatchGroup": body["PatchGroup"],
        "OperatingSystem": os_name,
    }


def get_patch_baseline(world: World, rd: RegionData, body: dict) -> dict:
    """One of the account-region's baselines (moto has none of the fleet's, nor this field), as the API returns
    it, with AvailableSecurityUpdatesComplianceStatus (docs/aws-behaviours.md §37)."""
    baseline_id = str(body["BaselineId"]).rsplit("/", 1)[-1]  # an id or a patchbaseline ARN
    baseline = next((b for b in rd.baselines.values() if b["BaselineId"] == baseline_id), None)
    if baseline is None:
        raise AwsError("DoesNotExistException", f"Patch baseline {baseline_id} does not exist.")
    created = world.fleet.account(rd.account_id).joined  # epoch seconds, as the JSON protocol sends times
    return {
        "BaselineId": baseline["BaselineId"],
        "Name": baseline["BaselineName"],
        "OperatingSystem": baseline["OperatingSystem"],
        "Description": baseline["BaselineDescription"],
        "GlobalFilters": {"PatchFilters": []},
        "ApprovalRules": {"PatchRules": []},
        "ApprovedPatches": [],
        "ApprovedPatchesComplianceLevel": "UNSPECIFIED",
        "ApprovedPatchesEnableNonSecurity": False,
        "RejectedPatches": [],
        "RejectedPatchesAction": "ALLOW_AS_DEPENDENCY",
        "PatchGroups": [],
        "CreatedDate": created,
        "ModifiedDate": created,
        "Sources": [],
        "AvailableSecurityUpdatesComplianceStatus": available_security_updates_status(rd.account_id),
    }


def list_tags_for_resource(world: World, rd: RegionData, body: dict) -> dict:
    """ManagedInstance tags of a hybrid node (moto keeps none for managed instances). Tags of an EC2 instance are
    EC2's (DescribeInstances), not SSM's: AWS answers InvalidResourceId for an i- id here, as for an unknown mi- id
    (SSM API reference, ListTagsForResource). Other resource types are not modelled."""
    kind, rid = body["ResourceType"], str(body["ResourceId"])
    if kind != "ManagedInstance":
        raise AwsError("InvalidResourceType", f"only ManagedInstance is modelled, not {kind}")
    node = rd.nodes.get(rid)
    if node is None or node.resource_type != "ManagedInstance":
        raise AwsError("InvalidResourceId", f"{rid} is not a managed instance of this account and Region")
    return {"TagList": [{"Key": k, "Value": v} for k, v in sorted(node.tags.items())]}


HANDLERS: dict[str, Handler] = {
    "DescribeInstanceInformation": describe_instance_information,
    "DescribeInstancePatchStates": describe_instance_patch_states,
    "DescribeInstancePatchStatesForPatchGroup": describe_instance_patch_states_for_patch_group,
    "DescribeInstancePatches": describe_instance_patches,
    "ListComplianceItems": list_compliance_items,
    "ListResourceComplianceSummaries": list_resource_compliance_summaries,
    "ListComplianceSummaries": list_compliance_summaries,
    "DescribePatchBaselines": describe_patch_baselines,
    "GetPatchBaselineForPatchGroup": get_patch_baseline_for_patch_group,
    "ListTagsForResource": list_tags_for_resource,
    "GetPatchBaseline": get_patch_baseline,
}
