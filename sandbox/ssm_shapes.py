"""Builds SSM response items (InstanceInformation, InstancePatchState, PatchComplianceData, ComplianceItem)
from node data, in the shapes and spellings the live service returns (docs/aws-behaviours.md §6-§10)."""

from __future__ import annotations

import time

from sandbox.catalog import Patch
from sandbox.nodes import NON_COMPLIANT_STATES, Node, RegionData

SEVERITY_ORDER = ["CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", "UNSPECIFIED"]


def iso_z(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def instance_information(node: Node) -> dict:
    info = {
        "InstanceId": node.instance_id,
        "PingStatus": node.ping_status,
        "LastPingDateTime": node.last_ping,
        "AgentVersion": node.agent_version,
        "IsLatestVersion": node.agent_version == "3.3.1142.0",
        "PlatformType": node.platform.platform_type,
        "PlatformName": node.platform.platform_name,
        "PlatformVersion": node.platform.platform_version,
        "ResourceType": node.resource_type,
        "IPAddress": node.ip,
        "ComputerName": node.computer_name,
        "SourceId": node.instance_id,
        "SourceType": "AWS::EC2::Instance" if node.resource_type == "EC2Instance" else "AWS::SSM::ManagedInstance",
    }
    if node.association:
        when = node.association["ExecutionSummary"]["ExecutionTime"]
        info.update(
            {
                "AssociationStatus": "Success",
                "LastAssociationExecutionDate": when,
                "LastSuccessfulAssociationExecutionDate": when,
                "AssociationOverview": {
                    "DetailedStatus": "Success",
                    "InstanceAssociationStatusAggregatedCount": {"Success": 1},
                },
            }
        )
    if node.resource_type == "ManagedInstance":
        info.update(
            {
                "ActivationId": node.activation_id,
                "IamRole": "SSMServiceRole",
                "RegistrationDate": node.registered_at,
                "Name": node.name,
            }
        )
    return info


def patch_counts(node: Node, catalog: list[Patch]) -> dict:
    counts = {
        "InstalledCount": 0,
        "InstalledOtherCount": 0,
        "InstalledPendingRebootCount": 0,
        "InstalledRejectedCount": 0,
        "MissingCount": 0,
        "FailedCount": 0,
        "UnreportedNotApplicableCount": 0,
        "NotApplicableCount": 0,
        "CriticalNonCompliantCount": 0,
        "SecurityNonCompliantCount": 0,
        "OtherNonCompliantCount": 0,
    }
    available = 0
    for patch, state in zip(catalog, node.reported or [], strict=False):
        if state == "AvailableSecurityUpdate":
            available += 1
            continue
        counts[f"{state}Count"] += 1
        if state in NON_COMPLIANT_STATES:
            if patch.compliance_severity == "CRITICAL":
                counts["CriticalNonCompliantCount"] += 1
            elif patch.is_security:
                counts["SecurityNonCompliantCount"] += 1
            else:
                counts["OtherNonCompliantCount"] += 1
    if node.platform.platform_type == "Windows":  # Windows only (docs/aws-behaviours.md §6)
        counts["AvailableSecurityUpdateCount"] = available
    return counts


def instance_patch_state(node: Node, region: RegionData) -> dict | None:
    if node.patch_state is None:
        return None
    state = {
        "InstanceId": node.instance_id,
        "PatchGroup": node.patch_group,
        "BaselineId": node.baseline_id,
        "OwnerInformation": "",
    }
    state.update(node.patch_state)
    state.update(patch_counts(node, region.catalogs[node.platform.key]))
    return state


def patch_compliance_data(node: Node, region: RegionData) -> list[dict]:
    """DescribeInstancePatches items: CamelCase State, CVEIds only for Missing/Failed, InstalledTime 0 when not
    installed, empty Title/Classification/Severity for InstalledOther/NotApplicable (docs/aws-behaviours.md §7)."""
    out = []
    catalog = region.catalogs[node.platform.key]
    for i, (patch, state) in enumerate(zip(catalog, node.reported or [], strict=False)):
        blank = state in ("InstalledOther", "NotApplicable")
        item = {
            "Title": "" if blank else patch.title,
            "KBId": patch.kb_id,
            "Classification": "" if blank else patch.classification,
            "Severity": "" if blank else patch.severity,
            "State": state,
            "InstalledTime": node.reported_installed[i] if state.startswith("Installed") else 0.0,
        }
        if state in ("Missing", "Failed") and patch.cve_ids:
            item["CVEIds"] = ",".join(patch.cve_ids)
        out.append(item)
    return out


def compliance_items(node: Node, region: RegionData) -> list[dict]:
    items: list[dict] = []
    if node.association:
        a = node.association
        items.append(
            {"ComplianceType": "Association", "ResourceType": "ManagedInstance", "ResourceId": node.instance_id, **a}
        )
    if node.reported is not None and node.patch_exec:
        catalog = region.catalogs[node.platform.key]
        for i, (patch, state) in enumerate(zip(catalog, node.reported, strict=False)):
            if state == "NotApplicable":
                status = ""  # Windows not-applicable items carry an empty Status (docs/aws-behaviours.md §8)
            else:
                status = "NON_COMPLIANT" if state in NON_COMPLIANT_STATES else "COMPLIANT"
            details = {
                "DocumentName": "AWS-RunPatchBaseline",
                "DocumentVersion": "1",
                "Classification": patch.classification,
                "PatchBaselineId": node.baseline_id,
                "PatchSeverity": patch.severity,
                "PatchState": state,
                "PatchGroup": node.patch_group,
            }
            if state.startswith("Installed") and node.reported_installed[i]:
                details["InstalledTime"] = iso_z(node.reported_installed[i])
            if state in ("Missing", "Failed") and patch.cve_ids:
                details["CVEIds"] = ",".join(patch.cve_ids)
            items.append(
                {
                    "ComplianceType": "Patch",
                    "ResourceType": "ManagedInstance",
                    "ResourceId": node.instance_id,
                    "Id": patch.kb_id,
                    "Title": patch.title,
                    "Status": status,
                    "Severity": patch.compliance_severity,
                    "ExecutionSummary": dict(node.patch_exec),
                    "Details": details,
                }
            )
    return items


def _severity_summary(items: list[dict]) -> dict:
    keys = {
        "CRITICAL": "CriticalCount",
        "HIGH": "HighCount",
        "MEDIUM": "MediumCount",
        "LOW": "LowCount",
        "INFORMATIONAL": "InformationalCount",
        "UNSPECIFIED": "UnspecifiedCount",
    }
    out = dict.fromkeys(keys.values(), 0)
    for item in items:
        out[keys.get(item.get("Severity") or "UNSPECIFIED", "UnspecifiedCount")] += 1
    return out


def resource_compliance_summaries(node: Node, region: RegionData) -> list[dict]:
    by_type: dict[str, list[dict]] = {}
    for item in compliance_items(node, region):
        by_type.setdefault(item["ComplianceType"], []).append(item)
    out = []
    for ctype, items in by_type.items():
        compliant = [i for i in items if i["Status"] == "COMPLIANT"]
        non = [i for i in items if i["Status"] == "NON_COMPLIANT"]
        worst = min((SEVERITY_ORDER.index(i["Severity"]) for i in non), default=len(SEVERITY_ORDER) - 1)
        out.append(
            {
                "ComplianceType": ctype,
                "ResourceType": "ManagedInstance",
                "ResourceId": node.instance_id,
                "Status": "NON_COMPLIANT" if non else "COMPLIANT",
                "OverallSeverity": SEVERITY_ORDER[worst],
                "ExecutionSummary": dict(items[0]["ExecutionSummary"]),
                "CompliantSummary": {"CompliantCount": len(compliant), "SeveritySummary": _severity_summary(compliant)},
                "NonCompliantSummary": {"NonCompliantCount": len(non), "SeveritySummary": _severity_summary(non)},
            }
        )
    return out
