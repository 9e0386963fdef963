"""Security Hub emulator: what BatchImportFindings refuses in a finding (required fields, lengths, enums,
severity, types, resources, field maps; docs/aws-behaviours.md §14)."""

from __future__ import annotations

from typing import Any

from sandbox.securityhub.model import (
    _ACCOUNT,
    COMPLIANCE_STATUSES,
    PARTITIONS,
    RECORD_STATES,
    REQUIRED_FIELDS,
    SCHEMA_VERSION,
    SEVERITY_LABELS,
    TYPE_NAMESPACES,
    VERIFICATION_STATES,
    WORKFLOW_STATUSES,
    parse_timestamp,
)


def validate_finding(finding: Any) -> str | None:
    """The first ASFF problem of a finding, worded like Security Hub's ("data should have required property
    'Title'"), or None (docs/aws-behaviours.md §14 required and bounded fields)."""
    if not isinstance(finding, dict):
        return "data should be object"
    for name in REQUIRED_FIELDS:
        if finding.get(name) in (None, "", []):
            return f"data should have required property '{name}'"
    problems = [
        _check(finding["SchemaVersion"] == SCHEMA_VERSION, f"data.SchemaVersion should be '{SCHEMA_VERSION}'"),
        _length(finding, "Id", 1, 512),
        _length(finding, "GeneratorId", 1, 512),
        _length(finding, "ProductArn", 12, 2048),
        _check(bool(_ACCOUNT.match(str(finding["AwsAccountId"]))), "data.AwsAccountId should be 12 digits"),
        _length(finding, "Title", 1, 256),
        _length(finding, "Description", 1, 1024),
        *[_timestamp(finding, name) for name in ("CreatedAt", "UpdatedAt", "FirstObservedAt", "LastObservedAt")],
        _severity(finding),
        _types(finding.get("Types"), "data.Types"),
        _types((finding.get("FindingProviderFields") or {}).get("Types"), "data.FindingProviderFields.Types"),
        _resources_problem(finding["Resources"]),
        _enum((finding.get("Compliance") or {}).get("Status"), COMPLIANCE_STATUSES, "data.Compliance.Status"),
        _enum(finding.get("RecordState"), RECORD_STATES, "data.RecordState"),
        _enum((finding.get("Workflow") or {}).get("Status"), WORKFLOW_STATUSES, "data.Workflow.Status"),
        _enum(finding.get("VerificationState"), VERIFICATION_STATES, "data.VerificationState"),
        _field_map(finding.get("ProductFields"), "data.ProductFields", 2048),
        _field_map(finding.get("UserDefinedFields"), "data.UserDefinedFields", 1024),
        _remediation(finding.get("Remediation")),
        _patch_summary(finding.get("PatchSummary")),
        _vulnerabilities(finding.get("Vulnerabilities")),
    ]
    return next((p for p in problems if p), None)


def _check(ok: bool, message: str) -> str | None:
    return None if ok else message


def _length(finding: dict, name: str, low: int, high: int) -> str | None:
    value = finding.get(name)
    return _check(
        isinstance(value, str) and low <= len(value) <= high,
        f"data.{name} should be a string of {low}..{high} characters",
    )


def _timestamp(finding: dict, name: str) -> str | None:
    if name not in finding:
        return None
    return _check(parse_timestamp(finding[name]) is not None, f"data.{name} should be an RFC 3339 timestamp")


def _enum(value: Any, allowed: tuple[str, ...], where: str) -> str | None:
    return _check(
        value is None or value in allowed, f"{where} should be equal to one of the allowed values {list(allowed)}"
    )


def _severity(finding: dict) -> str | None:
    top = finding.get("Severity") or {}
    provider = (finding.get("FindingProviderFields") or {}).get("Severity") or {}
    for where, severity in (("data.Severity", top), ("data.FindingProviderFields.Severity", provider)):
        if "Label" in severity and severity["Label"] not in SEVERITY_LABELS:
            return f"{where}.Label should be equal to one of the allowed values {list(SEVERITY_LABELS)}"
        if "Original" in severity and not (
            isinstance(severity["Original"], str) and 1 <= len(severity["Original"]) <= 64
        ):
            return f"{where}.Original should be a string of 1..64 characters"
    normalized = top.get("Normalized")
    if normalized is not None and not (isinstance(normalized, int) and 0 <= normalized <= 100):
        return "data.Severity.Normalized should be an integer 0..100"
    # Label or Normalized must be set, at the top level or in FindingProviderFields ("If neither attribute is
    # populated, then the finding is not valid", docs/aws-behaviours.md §14).
    if "Label" not in top and normalized is None and "Label" not in provider:
        return "data should have required property 'Severity', data should match some schema in anyOf"
    return None


def _types(types: Any, where: str) -> str | None:
    if types is None:
        return None
    if not isinstance(types, list) or len(types) > 50:
        return f"{where} should be a list of at most 50 types"
    for value in types:
        parts = str(value).split("/")
        if not 2 <= len(parts) <= 3 or parts[0] not in TYPE_NAMESPACES or not all(parts):
            namespaces = list(TYPE_NAMESPACES)
            return f"{where} item {value!r} should be namespace/category[/classifier], namespace one of {namespaces}"
    return None


def _resources_problem(resources: Any) -> str | None:
    if not isinstance(resources, list) or not 1 <= len(resources) <= 32:
        return "data.Resources should hold 1..32 resources"
    for index, resource in enumerate(resources):
        where = f"data.Resources[{index}]"
        if not isinstance(resource, dict):
            return f"{where} should be object"
        for name in ("Type", "Id"):
            if not isinstance(resource.get(name), str) or not resource[name]:
                return f"{where} should have required property '{name}'"
        if len(resource["Type"]) > 256:
            return f"{where}.Type should be at most 256 characters"
        if "Partition" in resource and resource["Partition"] not in PARTITIONS:
            return f"{where}.Partition should be equal to one of the allowed values {list(PARTITIONS)}"
        if "Region" in resource and not (isinstance(resource["Region"], str) and 1 <= len(resource["Region"]) <= 16):
            return f"{where}.Region should be a string of 1..16 characters"
        other = (resource.get("Details") or {}).get("Other")
        problem = _field_map(other, f"{where}.Details.Other", 1024)
        if problem:
            return problem
    return None


def _field_map(values: Any, where: str, max_value: int) -> str | None:
    if values is None:
        return None
    if not isinstance(values, dict) or len(values) > 50:
        return f"{where} should be a map of at most 50 entries"
    for key, value in values.items():
        if not (isinstance(key, str) and 1 <= len(key) <= 128 and isinstance(value, str) and len(value) <= max_value):
            shown = str(key)[:40]
            return f"{where} entry {shown!r} needs a key of 1..128 and a value of at most {max_value} characters"
    return None


def _remediation(remediation: Any) -> str | None:
    text = ((remediation or {}).get("Recommendation") or {}).get("Text")
    return _check(
        text is None or (isinstance(text, str) and 1 <= len(text) <= 512),
        "data.Remediation.Recommendation.Text should be 1..512 characters",
    )


def _patch_summary(summary: Any) -> str | None:
    if summary is None:
        return None
    if not isinstance(summary.get("Id"), str) or not 1 <= len(summary["Id"]) <= 256:
        return "data.PatchSummary should have required property 'Id' (1..256 characters)"
    for name in (
        "InstalledCount",
        "MissingCount",
        "FailedCount",
        "InstalledOtherCount",
        "InstalledRejectedCount",
        "InstalledPendingReboot",
    ):
        if name in summary and not (isinstance(summary[name], int) and 0 <= summary[name] <= 100_000):
            return f"data.PatchSummary.{name} should be an integer 0..100000"
    for name in ("OperationStartTime", "OperationEndTime"):
        if name in summary and parse_timestamp(summary[name]) is None:
            return f"data.PatchSummary.{name} should be an RFC 3339 timestamp"
    return None


def _vulnerabilities(vulnerabilities: Any) -> str | None:
    if vulnerabilities is None:
        return None
    if not isinstance(vulnerabilities, list):
        return "data.Vulnerabilities should be a list"
    for index, item in enumerate(vulnerabilities):
        if not isinstance(item, dict) or not item.get("Id"):
            return f"data.Vulnerabilities[{index}] should have required property 'Id'"
        if "Vendor" in item and not (item["Vendor"] or {}).get("Name"):
            return f"data.Vulnerabilities[{index}].Vendor should have required property 'Name'"
    return None
