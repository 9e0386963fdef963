"""Value vocabularies of the report tables (AWS enums as the botocore models list them, the project's own
statuses, the vendor severity mapping); ``transform/schema.py`` re-exports them with the tables."""

from __future__ import annotations

from include.patch_compliance.vocab import SEVERITIES

__all__ = [
    "SEVERITIES",
    "COVERAGE_STATUSES",
    "EC2_STATES",
    "PATCH_STATES",
    "NON_COMPLIANT_STATES",
    "UNKNOWN_VALUE",
    "UNRECOGNISED",
    "COMPLIANCE_ITEM_STATUSES",
    "COMPLIANCE_SEVERITIES",
    "PATCH_COMPLIANCE_STATUSES",
    "PING_STATUSES",
    "PLATFORM_TYPES",
    "RESOURCE_TYPES",
    "PATCH_OPERATIONS",
    "COMMAND_STATUSES",
    "INVOCATION_STATUSES",
    "DELTA_CHANGES",
    "REMEDIATION_RESULTS",
    "VENDOR_SEVERITY",
]

# Vocabularies ---------------------------------------------------------------------------------------------------
# In precedence order: the first that applies wins (docs/data-contract.md, "Coverage status").
COVERAGE_STATUSES = ("UNREACHABLE", "UNMANAGED", "OFFLINE", "SCAN_FAILED", "NOT_SCANNED", "STALE", "SCANNED")
PATCH_STATES = (
    "INSTALLED",
    "INSTALLED_OTHER",
    "INSTALLED_PENDING_REBOOT",
    "INSTALLED_REJECTED",
    "MISSING",
    "NOT_APPLICABLE",
    "FAILED",
    "AVAILABLE_SECURITY_UPDATE",
)
# States that make a node Non-Compliant (docs/aws-behaviours.md §8); these are the rows of the patches table.
NON_COMPLIANT_STATES = ("FAILED", "MISSING", "INSTALLED_REJECTED", "INSTALLED_PENDING_REBOOT")

# AWS enums as the botocore models list them (docs/aws-behaviours.md §32; tests compare them with the models).
# A value outside them is kept: the table shows UNKNOWN_VALUE and the row's `unrecognised` list holds
# "<column>=<value as AWS sent it>", and summary.json counts it.
UNKNOWN_VALUE = "UNKNOWN"
UNRECOGNISED = "unrecognised"
COMPLIANCE_ITEM_STATUSES = ("COMPLIANT", "NON_COMPLIANT")  # ssm ComplianceStatus ('' = not applicable)
COMPLIANCE_SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", "UNSPECIFIED")  # ComplianceSeverity
PATCH_COMPLIANCE_STATUSES = ("COMPLIANT", "NON_COMPLIANT")  # ssm PatchComplianceStatus (baseline settings)
PING_STATUSES = ("Online", "ConnectionLost", "Inactive")  # ssm PingStatus
PLATFORM_TYPES = ("Windows", "Linux", "MacOS")  # ssm PlatformType
RESOURCE_TYPES = ("ManagedInstance", "EC2Instance")  # ssm ResourceType
PATCH_OPERATIONS = ("Scan", "Install")  # ssm PatchOperationType
EC2_STATES = ("pending", "running", "shutting-down", "terminated", "stopping", "stopped")  # ec2 InstanceStateName
COMMAND_STATUSES = ("Pending", "InProgress", "Success", "Cancelled", "Failed", "TimedOut", "Cancelling")
INVOCATION_STATUSES = (*COMMAND_STATUSES, "Delayed")  # ssm CommandInvocationStatus
DELTA_CHANGES = ("NEWLY_NON_COMPLIANT", "REMEDIATED", "NEW_MISSING_PATCH", "CLOSED_PATCH")
# What a remediation run left each selected node as (docs/data-contract.md, "remediation").
REMEDIATION_RESULTS = (
    "REMEDIATED",
    "PENDING_REBOOT",
    "REJECTED_REMAINS",
    "NOT_REMEDIATED",
    "HELD",
    "NOT_SENT",
    "UNKNOWN",
)

# Vendor severity (DescribeInstancePatches.Severity, lower-cased) -> normalised label. Anything else, including
# empty strings (InstalledOther/NotApplicable rows, docs/aws-behaviours.md §7), is UNSPECIFIED.
VENDOR_SEVERITY = {
    "critical": "CRITICAL",
    "urgent": "CRITICAL",
    "important": "HIGH",
    "high": "HIGH",
    "moderate": "MEDIUM",
    "medium": "MEDIUM",
    "low": "LOW",
    "negligible": "INFORMATIONAL",
    "informational": "INFORMATIONAL",
    "none": "INFORMATIONAL",
    "unspecified": "UNSPECIFIED",
    # Known values that rank nothing: SUSE's "n/a" and the Debian/Ubuntu package priorities (docs/aws-behaviours.md
    # §32). Any other vendor text is UNSPECIFIED too, but counted as unrecognised.
    "n/a": "UNSPECIFIED",
    "required": "UNSPECIFIED",
    "standard": "UNSPECIFIED",
    "optional": "UNSPECIFIED",
    "extra": "UNSPECIFIED",
}
