"""Security Hub emulator: the service's limits, vocabularies, errors, ARNs and timestamps (botocore
``securityhub`` model; docs/aws-behaviours.md §14-§17)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

Response = tuple[int, dict, dict]

MAX_IMPORT_FINDINGS = 100  # model: BatchImportFindingsRequestFindingList min 1, max 100
MAX_FINDING_BYTES = 240 * 1024  # finding-update-batchimportfindings.md: up to 240 KB per finding
MAX_BATCH_BYTES = 6 * 1024 * 1024  # ... and up to 6 MB per batch
MAX_UPDATE_IDENTIFIERS = 100  # BatchUpdateFindings: up to 100 findings at a time
MAX_RESULTS = 100  # model MaxResults 1..100
MAX_FILTER_ATTRIBUTES = 10  # GetFindings: up to 10 finding attributes, 20 values each
MAX_FILTER_VALUES = 20
SCHEMA_VERSION = "2018-10-08"

SEVERITY_LABELS = ("INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL")
# Label -> Normalized as Security Hub fills it (asff severity doc: 0 / 1-39 / 40-69 / 70-89 / 90-100).
LABEL_NORMALIZED = {"INFORMATIONAL": 0, "LOW": 1, "MEDIUM": 40, "HIGH": 70, "CRITICAL": 90}
COMPLIANCE_STATUSES = ("PASSED", "WARNING", "FAILED", "NOT_AVAILABLE")
RECORD_STATES = ("ACTIVE", "ARCHIVED")
WORKFLOW_STATUSES = ("NEW", "NOTIFIED", "RESOLVED", "SUPPRESSED")
VERIFICATION_STATES = ("UNKNOWN", "TRUE_POSITIVE", "FALSE_POSITIVE", "BENIGN_POSITIVE")
PARTITIONS = ("aws", "aws-cn", "aws-us-gov")
TYPE_NAMESPACES = (
    "Software and Configuration Checks",
    "TTPs",
    "Effects",
    "Unusual Behaviors",
    "Sensitive Data Identifications",
)
REQUIRED_FIELDS = (
    "SchemaVersion",
    "Id",
    "ProductArn",
    "GeneratorId",
    "AwsAccountId",
    "CreatedAt",
    "UpdatedAt",
    "Title",
    "Description",
    "Resources",
)
# BatchImportFindings ignores these on an existing finding; only BatchUpdateFindings changes them.
CUSTOMER_ONLY_FIELDS = ("Note", "UserDefinedFields", "VerificationState", "Workflow")
# Provider values arrive in FindingProviderFields and are copied to the top level unless a customer changed them.
PROVIDER_FIELDS = ("Confidence", "Criticality", "RelatedFindings", "Severity", "Types")
# AWS service integrations are activated automatically when Security Hub is enabled
# (securityhub-internal-providers.md); Patch Manager's export is one of them and stays on until someone
# disables the integration (patch-manager-security-hub-integration.md, "How to stop sending findings").
PATCH_MANAGER_PRODUCT = "ssm-patch-manager"
AWS_PRODUCTS = {
    "securityhub": "Security Hub",
    "guardduty": "GuardDuty",
    "inspector": "Inspector",
    "macie": "Macie",
    "access-analyzer": "IAM Access Analyzer",
    "firewall-manager": "Firewall Manager",
    "config": "Config",
    PATCH_MANAGER_PRODUCT: "Systems Manager Patch Manager",
}
_TIMESTAMP = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$")
_ACCOUNT = re.compile(r"^\d{12}$")


class ServiceError(Exception):
    """An AWS error response: HTTP status, error code (x-amzn-ErrorType) and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message


def _invalid_input(message: str) -> ServiceError:
    return ServiceError(400, "InvalidInputException", message)


def _not_subscribed(account_id: str) -> ServiceError:
    # The message every Security Hub API returns for a disabled hub (seen for DescribeHub, GetEnabledStandards,
    # GetFindings in public reports, e.g. prowler-cloud/prowler#1590).
    return ServiceError(401, "InvalidAccessException", f"Account {account_id} is not subscribed to AWS Security Hub")


def partition_of(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def default_product_arn(account_id: str, region: str) -> str:
    """The custom-integration product ARN (securityhub-custom-providers.md)."""
    return f"arn:{partition_of(region)}:securityhub:{region}:{account_id}:product/{account_id}/default"


def aws_product_arn(region: str, name: str) -> str:
    return f"arn:{partition_of(region)}:securityhub:{region}::product/aws/{name}"


def subscription_arn(account_id: str, region: str, company: str, name: str) -> str:
    return f"arn:{partition_of(region)}:securityhub:{region}:{account_id}:product-subscription/{company}/{name}"


def parse_timestamp(value: Any) -> tuple[datetime, int] | None:
    """RFC-3339 with up to 9 fractional digits, ``Z`` or an offset (docs/aws-behaviours.md §14), as (UTC second,
    nanoseconds) so that two timestamps compare exactly. None if not valid."""
    if not isinstance(value, str):
        return None
    match = _TIMESTAMP.match(value)
    if not match:
        return None
    base, fraction, zone = match.groups()
    try:
        moment = datetime.fromisoformat(base + ("+00:00" if zone == "Z" else zone)).astimezone(UTC)
    except ValueError:
        return None
    return moment, int((fraction or "0").ljust(9, "0"))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _size(document: Any) -> int:
    return len(json.dumps(document, separators=(",", ":")).encode())
