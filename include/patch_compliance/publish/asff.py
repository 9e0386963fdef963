"""ASFF findings for patch compliance: one finding per node, built from a ``nodes`` row and its ``patches`` rows.

Pure functions (no AWS calls). Field rules and limits: docs/aws-behaviours.md §14-§16 and the botocore securityhub
model.

Severity mapping (``FindingProviderFields.Severity.Label``) for a NON_COMPLIANT node, the highest of:
* the node's ``highest_missing_severity`` (the worst normalised severity among its non-compliant patches):
  CRITICAL, HIGH, MEDIUM, LOW map to themselves;
* the baseline's compliance levels Patch Manager counted: ``critical_non_compliant_count > 0`` -> CRITICAL,
  ``security_non_compliant_count > 0`` -> HIGH (Patch Manager's own finding uses the compliance level too);
* LOW as a floor: an open FAILED finding is never INFORMATIONAL, so INFORMATIONAL means "resolved" and
  ``SeverityLabel NOT_EQUALS INFORMATIONAL`` lists every open problem.
``Severity.Original`` keeps the node's raw ``highest_missing_severity`` (or UNSPECIFIED). Resolved and archived
findings get INFORMATIONAL, as Security Hub's own resolved findings do.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from include.patch_compliance.vocab import FINDINGS_GENERATOR_ID, SEVERITIES

SCHEMA_VERSION = "2018-10-08"
FINDING_TYPE = "Software and Configuration Checks/Patch Management"
MAX_FINDING_BYTES = 240 * 1024  # per finding (finding-update-batchimportfindings.md)
_SIZE_MARGIN = 8 * 1024  # Security Hub's own size measure is not documented byte-for-byte; stay clear of it
MAX_CVES_PER_PATCH = 20
MAX_COUNT = 100_000  # PatchSummary counts are 0..100000 (model doc)
REMEDIATION_URL = "https://docs.aws.amazon.com/systems-manager/latest/userguide/patch-compliance-remediation.html"
REMEDIATION_TEXT = (
    "Install the missing patches: run AWS-RunPatchBaseline with Operation=Install (or Patch now) on this node in a "
    "maintenance window, reboot if patches are pending reboot, then scan again. Vulnerabilities lists the most "
    "severe missing patches and their CVEs."
)
_LABEL_RANK = {"CRITICAL": 4, "HIGH": 3, "MEDIUM": 2, "LOW": 1, "INFORMATIONAL": 0}
# Fields we send. A finding read back from GetFindings is reduced to these before it is re-imported: the rest is
# Security Hub's (ProcessedAt, Region, ProductName, top-level Severity...) or the customer's (Workflow, Note...).
PROVIDER_KEYS = (
    "SchemaVersion",
    "Id",
    "ProductArn",
    "GeneratorId",
    "AwsAccountId",
    "CreatedAt",
    "UpdatedAt",
    "FirstObservedAt",
    "LastObservedAt",
    "Title",
    "Description",
    "Remediation",
    "SourceUrl",
    "ProductFields",
    "Resources",
    "Compliance",
    "RecordState",
    "PatchSummary",
    "Vulnerabilities",
    "FindingProviderFields",
)
_FRACTION = re.compile(r"\.(\d+)")


def finding_id(account_id: str, region: str, instance_id: str) -> str:
    """Deterministic and stable across runs, so each node keeps one finding that updates over time."""
    return f"{account_id}/{region}/{instance_id}/patch-compliance"


def product_arn(partition: str, region: str, account_id: str) -> str:
    """The account's default (custom integration) product (securityhub-custom-providers.md)."""
    return f"arn:{partition}:securityhub:{region}:{account_id}:product/{account_id}/default"


def _observed(node: Mapping[str, Any], now: datetime) -> datetime:
    scanned = node.get("last_scan_time")  # when the node's patch state was observed, else the run's clock
    return scanned if isinstance(scanned, datetime) else now


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(value: str) -> datetime:
    """An ASFF timestamp (RFC 3339, up to 9 fractional digits) as an aware datetime, truncated to microseconds."""
    text = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), value.replace("Z", "+00:00"))
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def next_updated_at(now: datetime, previous: str | None) -> str:
    """``now``, or just after the stored UpdatedAt: an equal or earlier UpdatedAt is silently ignored by
    BatchImportFindings (docs/aws-behaviours.md §16), so a rerun with the same clock would otherwise change nothing."""
    if previous:
        floor = parse_iso(previous) + timedelta(milliseconds=1)
        if now < floor:
            return iso(floor)
    return iso(now)


def severity_label(node: Mapping[str, Any]) -> str:
    """Severity of an open finding (module docstring)."""
    labels = ["LOW"]
    raw = node.get("highest_missing_severity")
    if raw in _LABEL_RANK:
        labels.append(raw)
    if (_int(node.get("critical_non_compliant_count")) or 0) > 0:
        labels.append("CRITICAL")
    if (_int(node.get("security_non_compliant_count")) or 0) > 0:
        labels.append("HIGH")
    return max(labels, key=_LABEL_RANK.__getitem__)


def console_url(partition: str, region: str, instance_id: str) -> str:
    """The node's patch page in the Systems Manager console (the SourceUrl Patch Manager itself uses)."""
    host = {
        "aws-cn": f"{region}.console.amazonaws.cn",
        "aws-us-gov": "console.amazonaws-us-gov.com",
    }.get(partition, f"{region}.console.aws.amazon.com")
    return f"https://{host}/systems-manager/managed-instances/{instance_id}/patch?region={region}"


def resource(node: Mapping[str, Any], partition: str) -> dict:
    """EC2 instances as AwsEc2Instance (ARN id, so they correlate with other integrations); hybrid ``mi-`` nodes
    as Other with their managed-instance ARN."""
    account, region, instance_id = node["account_id"], node["region"], node["instance_id"]
    if instance_id.startswith("mi-"):
        kind, arn = "Other", f"arn:{partition}:ssm:{region}:{account}:managed-instance/{instance_id}"
    else:
        kind, arn = "AwsEc2Instance", f"arn:{partition}:ec2:{region}:{account}:instance/{instance_id}"
    details = {
        "InstanceId": instance_id,
        "InstanceName": node.get("instance_name"),
        "PlatformType": node.get("platform_type"),
        "PlatformName": node.get("platform_name"),
        "PatchGroup": node.get("patch_group"),
        "PingStatus": node.get("ping_status"),
    }
    other = {k: _text(v, 1024) for k, v in details.items() if _present(v)}
    return {"Type": kind, "Id": arn, "Partition": partition, "Region": region, "Details": {"Other": other}}


def patch_summary(node: Mapping[str, Any]) -> dict:
    missing = _count(node.get("missing_count"))
    failed = _count(node.get("failed_count"))
    summary: dict[str, Any] = {
        "Id": _text(node.get("baseline_id") or "unknown-baseline", 256),
        "InstalledCount": _count(node.get("installed_count")),
        # "The count includes patches that failed to install" (model PatchSummary.MissingCount).
        "MissingCount": min(missing + failed, MAX_COUNT),
        "FailedCount": failed,
        "InstalledOtherCount": _count(node.get("installed_other_count")),
        "InstalledRejectedCount": _count(node.get("installed_rejected_count")),
        "InstalledPendingReboot": _count(node.get("installed_pending_reboot_count")),
    }
    start = node.get("operation_start_time")
    end = node.get("operation_end_time") or node.get("last_scan_time")
    if isinstance(start, datetime):
        summary["OperationStartTime"] = iso(start)
    if isinstance(end, datetime):
        summary["OperationEndTime"] = iso(end)
    if _present(node.get("last_operation")):
        summary["Operation"] = str(node["last_operation"]).upper()
    return summary


def top_patches(patches: Iterable[Mapping[str, Any]], limit: int) -> list[Mapping[str, Any]]:
    """The ``limit`` most urgent patches: most severe, SLA breached, oldest, then by id (deterministic)."""
    rank = {s: i for i, s in enumerate(SEVERITIES)}

    def key(p: Mapping[str, Any]) -> tuple:
        return (
            rank.get(str(p.get("severity")), len(rank)),
            not bool(p.get("sla_breached")),
            -(_int(p.get("age_days")) or 0),
            str(p.get("kb_id") or ""),
            str(p.get("title") or ""),
        )

    return sorted(patches, key=key)[: max(limit, 0)]


def vulnerability(patch: Mapping[str, Any], vendor: str) -> dict:
    """One missing patch as an ASFF Vulnerability: the patch id, its CVEs (bounded) and the vendor severity."""
    item: dict[str, Any] = {
        "Id": _text(patch.get("kb_id") or patch.get("title") or "unknown-patch", 512),
        "Vendor": {"Name": _text(vendor, 256)},
        "FixAvailable": "YES",
    }
    if _present(patch.get("severity")):
        item["Vendor"]["VendorSeverity"] = str(patch["severity"])
    cves = [str(c) for c in _list(patch.get("cve_ids")) if c][:MAX_CVES_PER_PATCH]
    if cves:
        item["RelatedVulnerabilities"] = cves
    if _present(patch.get("title")):
        item["VulnerablePackages"] = [{"Name": _text(patch["title"], 256)}]
    return item


def first_observed(node_patches: Sequence[Mapping[str, Any]], existing: Mapping[str, Any] | None) -> datetime | None:
    """The earliest ``first_seen`` of the node's patches, or the finding's own earlier FirstObservedAt."""
    seen = [p["first_seen"] for p in node_patches if isinstance(p.get("first_seen"), datetime)]
    if existing and existing.get("FirstObservedAt"):
        seen.append(parse_iso(existing["FirstObservedAt"]))
    return min(seen) if seen else None


def failed_finding(
    node: Mapping[str, Any],
    node_patches: Sequence[Mapping[str, Any]],
    existing: Mapping[str, Any] | None,
    *,
    partition: str,
    run_id: str,
    now: datetime,
    max_patches: int,
) -> dict:
    """The ACTIVE/FAILED finding of a non-compliant node (a full finding: an update must resend everything)."""
    instance_id = node["instance_id"]
    label = severity_label(node)
    listed = top_patches(node_patches, max_patches)
    vendor = node.get("platform_name") or node.get("platform_type") or "Unknown"
    observed = _observed(node, now)
    first = first_observed(node_patches, existing) or observed
    counts = patch_summary(node)
    problems = counts["MissingCount"] + counts["InstalledRejectedCount"] + counts["InstalledPendingReboot"]
    finding = _base(node, existing, partition=partition, now=now)
    finding.update(
        {
            "FirstObservedAt": iso(min(first, observed)),
            "LastObservedAt": iso(observed),
            "Title": _text(f"Patch compliance: {instance_id} is non-compliant ({problems} patches need action)", 256),
            "Description": _text(_description(node, counts, label), 1024),
            "Remediation": {"Recommendation": {"Text": REMEDIATION_TEXT, "Url": REMEDIATION_URL}},
            "Compliance": {"Status": "FAILED"},
            "RecordState": "ACTIVE",
            "PatchSummary": counts,
            "FindingProviderFields": {
                "Severity": {
                    "Label": label,
                    "Original": _text(node.get("highest_missing_severity") or "UNSPECIFIED", 64),
                },
                "Types": [FINDING_TYPE],
            },
            "ProductFields": _product_fields(node, run_id, len(listed), len(node_patches)),
        }
    )
    if listed:
        finding["Vulnerabilities"] = [vulnerability(p, str(vendor)) for p in listed]
    return fit_size(finding)


def resolved_finding(
    node: Mapping[str, Any], existing: Mapping[str, Any], *, partition: str, run_id: str, now: datetime
) -> dict:
    """A node that is compliant now: same Id, Compliance PASSED, INFORMATIONAL, ARCHIVED (docs/aws-behaviours.md
    §16)."""
    observed = _observed(node, now)
    finding = _base(node, existing, partition=partition, now=now)
    finding.update(
        {
            "FirstObservedAt": existing.get("FirstObservedAt") or iso(observed),
            "LastObservedAt": iso(observed),
            "Title": _text(f"Patch compliance: {node['instance_id']} is compliant again", 256),
            "Description": _text(
                f"Node {node['instance_id']} in account {node['account_id']} ({node['region']}) is COMPLIANT with "
                f"patch baseline {node.get('baseline_id') or 'unknown'} as of {iso(observed)}.",
                1024,
            ),
            "Remediation": {"Recommendation": {"Text": "No action needed.", "Url": REMEDIATION_URL}},
            "Compliance": {"Status": "PASSED"},
            "RecordState": "ARCHIVED",
            "PatchSummary": patch_summary(node),
            "FindingProviderFields": {
                "Severity": {"Label": "INFORMATIONAL", "Original": "COMPLIANT"},
                "Types": [FINDING_TYPE],
            },
            "ProductFields": {**_product_fields(node, run_id, 0, 0), "patch-compliance/ResolvedReason": "COMPLIANT"},
        }
    )
    return finding


def archived_finding(existing: Mapping[str, Any], *, run_id: str, now: datetime) -> dict:
    """A node that is gone from the fleet: its last finding resent as ARCHIVED, INFORMATIONAL, NOT_AVAILABLE."""
    finding = provider_view(existing)
    finding.pop("Vulnerabilities", None)
    finding["UpdatedAt"] = next_updated_at(now, existing.get("UpdatedAt"))
    finding["RecordState"] = "ARCHIVED"
    finding["Compliance"] = {"Status": "NOT_AVAILABLE"}
    provider = dict(finding.get("FindingProviderFields") or {})
    provider["Severity"] = {"Label": "INFORMATIONAL", "Original": "NODE_NOT_FOUND"}
    finding["FindingProviderFields"] = provider
    fields = dict(finding.get("ProductFields") or {})
    fields.update({"patch-compliance/RunId": run_id, "patch-compliance/ResolvedReason": "NODE_NOT_FOUND"})
    finding["ProductFields"] = fields
    return finding


def provider_view(existing: Mapping[str, Any]) -> dict:
    """A stored finding reduced to the fields a provider sends (``aws/`` ProductFields are Security Hub's)."""
    finding = {k: json.loads(json.dumps(existing[k])) for k in PROVIDER_KEYS if k in existing}
    fields = {k: v for k, v in (finding.get("ProductFields") or {}).items() if not k.startswith("aws/")}
    if fields:
        finding["ProductFields"] = fields
    else:
        finding.pop("ProductFields", None)
    return finding


def size(finding: Mapping[str, Any]) -> int:
    return len(json.dumps(finding, separators=(",", ":")).encode())


def fit_size(finding: dict) -> dict:
    """Drop the least urgent listed patches until the finding is safely under the 240 KB limit."""
    vulnerabilities = finding.get("Vulnerabilities") or []
    while vulnerabilities and size(finding) > MAX_FINDING_BYTES - _SIZE_MARGIN:
        vulnerabilities.pop()
        fields = finding["ProductFields"]
        total = fields["patch-compliance/PatchesListed"].split(" of ")[1]
        fields["patch-compliance/PatchesListed"] = f"{len(vulnerabilities)} of {total}"
    if not vulnerabilities:
        finding.pop("Vulnerabilities", None)
    if size(finding) > MAX_FINDING_BYTES - _SIZE_MARGIN:
        raise ValueError(f"finding {finding['Id']} is {size(finding)} bytes even without patches; check the node row")
    return finding


def _base(node: Mapping[str, Any], existing: Mapping[str, Any] | None, *, partition: str, now: datetime) -> dict:
    account, region, instance_id = node["account_id"], node["region"], node["instance_id"]
    return {
        "SchemaVersion": SCHEMA_VERSION,
        "Id": finding_id(account, region, instance_id),
        "ProductArn": product_arn(partition, region, account),
        "GeneratorId": FINDINGS_GENERATOR_ID,
        "AwsAccountId": account,
        "CreatedAt": (existing or {}).get("CreatedAt") or iso(now),
        "UpdatedAt": next_updated_at(now, (existing or {}).get("UpdatedAt")),
        "SourceUrl": console_url(partition, region, instance_id),
        "Resources": [resource(node, partition)],
    }


def _description(node: Mapping[str, Any], counts: dict, label: str) -> str:
    name = node.get("instance_name")
    who = f"{node['instance_id']} ({name})" if _present(name) else node["instance_id"]
    account = node.get("account_name")
    where = f"{account} ({node['account_id']})" if _present(account) else node["account_id"]
    scanned = counts.get("OperationEndTime", "an unknown time")
    return (
        f"Node {who} in account {where}, {node['region']}, is NON_COMPLIANT with patch baseline {counts['Id']}: "
        f"{counts['MissingCount'] - counts['FailedCount']} missing, {counts['FailedCount']} failed, "
        f"{counts['InstalledPendingReboot']} installed pending reboot, {counts['InstalledRejectedCount']} installed "
        f"but rejected. Highest severity {label}. Last scan {scanned}."
    )


def _product_fields(node: Mapping[str, Any], run_id: str, listed: int, total: int) -> dict[str, str]:
    values = {
        "patch-compliance/RunId": run_id,
        "patch-compliance/OuPath": node.get("ou_path"),
        "patch-compliance/AccountName": node.get("account_name"),
        "patch-compliance/PatchGroup": node.get("patch_group"),
        "patch-compliance/CoverageStatus": node.get("coverage_status"),
        "patch-compliance/SlaBreaches": node.get("sla_breaches"),
        "patch-compliance/PatchesListed": f"{listed} of {total}",
    }
    return {k: _text(v, 2048) for k, v in values.items() if _present(v)}


def _present(value: Any) -> bool:
    """Rows arrive cleaned (missing values are None, see securityhub._records)."""
    return value is not None and value != ""


def _text(value: Any, limit: int) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _int(value: Any) -> int | None:
    if not _present(value):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _count(value: Any) -> int:
    return min(max(_int(value) or 0, 0), MAX_COUNT)


def _list(value: Any) -> list:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)
