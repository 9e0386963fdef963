"""Security Hub (CSPM) emulator backend, called by the sandbox server for requests whose SigV4 service is
``securityhub``. moto's Security Hub merges findings regardless of UpdatedAt, ignores filters and has no account
rule or BatchUpdateFindings (docs/aws-behaviours.md §19), so this is our own, following §14-§17 there and the botocore
``securityhub`` model (REST paths, shapes, limits).

State is per (account, region); one lock guards it all (calls are short, contention is not a concern).
``running(emulator)`` serves it over HTTP for tests until the sandbox server routes here.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, unquote

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


@dataclass
class _Stored:
    seq: int  # creation order: the stable order GetFindings pages through
    finding: dict
    customer_set: set[str] = field(default_factory=set)  # top-level provider fields changed by a customer


@dataclass
class _Hub:
    subscribed_at: str
    enabled: bool = True
    subscriptions: dict[str, str] = field(default_factory=dict)  # subscription ARN -> product ARN
    findings: dict[tuple[str, str], _Stored] = field(default_factory=dict)  # (ProductArn, Id)
    seq: int = 0


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) else value


class SecurityHubEmulator:
    """Security Hub per (account, region). ``handle`` answers one REST call as (status, JSON body, headers)."""

    def __init__(
        self,
        *,
        clock: Callable[[], datetime] | None = None,
        native_export_on_enable: bool = True,
    ) -> None:
        self._clock = clock or (lambda: datetime.now(UTC))
        self._native_export_on_enable = native_export_on_enable
        self._hubs: dict[tuple[str, str], _Hub] = {}
        self._lock = threading.RLock()
        self._throttle_every_n: int | None = None
        self._fail_ids: frozenset[str] = frozenset()
        self._fail_times: int | None = None
        self._fail_seen: dict[str, int] = {}
        self._request_count = 0
        self._calls: dict[str, int] = {}

    # ------------------------------------------------------------------ test and sandbox hooks
    def set_faults(
        self,
        throttle_every_n: int | None = None,
        fail_ids: set[str] | frozenset[str] = frozenset(),
        *,
        fail_times: int | None = None,
    ) -> None:
        """Deterministic faults: every ``throttle_every_n``-th request (counted from now) answers
        LimitExceededException 429; a finding whose Id is in ``fail_ids`` goes to FailedFindings
        (``fail_times`` times per Id, None = always)."""
        if throttle_every_n is not None and throttle_every_n < 1:
            raise ValueError(f"throttle_every_n must be None or >= 1, got {throttle_every_n}")
        if fail_times is not None and fail_times < 0:
            raise ValueError(f"fail_times must be None or >= 0, got {fail_times}")
        with self._lock:
            self._throttle_every_n = throttle_every_n
            self._fail_ids = frozenset(fail_ids)
            self._fail_times = fail_times
            self._fail_seen = {}
            self._request_count = 0

    def enable(self, account_id: str, region: str) -> None:
        """Enable the hub (as EnableSecurityHub); a no-op if it is already on."""
        with self._lock:
            hub = self._hubs.get((account_id, region))
            if hub is None or not hub.enabled:
                self._enable(account_id, region)

    def native_export_enabled(self, account_id: str, region: str) -> bool:
        """True when Patch Manager's own export is on: the hub is enabled and subscribed to the
        ``aws/ssm-patch-manager`` integration (what ListEnabledProductsForImport shows)."""
        with self._lock:
            hub = self._hubs.get((account_id, region))
            return bool(
                hub and hub.enabled and aws_product_arn(region, PATCH_MANAGER_PRODUCT) in hub.subscriptions.values()
            )

    def set_native_export(self, account_id: str, region: str, enabled: bool) -> None:
        """Turn Patch Manager's export on/off (as Enable/DisableImportFindingsForProduct would)."""
        with self._lock:
            hub = self._hubs.get((account_id, region))
            if hub is None or not hub.enabled:
                raise ValueError(f"Security Hub is not enabled in {account_id}/{region}; enable() it first")
            arn = subscription_arn(account_id, region, "aws", PATCH_MANAGER_PRODUCT)
            if enabled:
                hub.subscriptions[arn] = aws_product_arn(region, PATCH_MANAGER_PRODUCT)
            else:
                hub.subscriptions.pop(arn, None)

    def findings(self, account_id: str, region: str) -> list[dict]:
        """A copy of the stored findings of one account-region, in creation order (for tests)."""
        with self._lock:
            hub = self._hubs.get((account_id, region))
            if hub is None:
                return []
            return [copy.deepcopy(s.finding) for s in sorted(hub.findings.values(), key=lambda s: s.seq)]

    def calls(self) -> dict[str, int]:
        """Requests answered per operation, throttled ones included."""
        with self._lock:
            return dict(self._calls)

    # ------------------------------------------------------------------ request entry point
    def handle(self, method: str, path: str, query: dict, body: dict | None, account_id: str, region: str) -> Response:
        operation, path_arn = self._route(method.upper(), unquote(path))
        headers = {"x-amzn-RequestId": str(uuid.uuid4()), "Content-Type": "application/json"}
        with self._lock:
            self._calls[operation or "Unknown"] = self._calls.get(operation or "Unknown", 0) + 1
            try:
                if operation is None:
                    raise ServiceError(
                        404, "ResourceNotFoundException", f"No Security Hub operation for {method} {path}"
                    )
                self._maybe_throttle()
                handler = getattr(self, f"_op_{operation}", None)
                if handler is None:
                    raise ServiceError(501, "NotImplemented", f"{operation} is not emulated by the sandbox")
                params = dict(body or {})
                for key, value in (query or {}).items():
                    params.setdefault(key, _first(value))
                if path_arn is not None:
                    params["ProductSubscriptionArn"] = path_arn
                status, payload = handler(params, account_id, region)
            except ServiceError as exc:
                headers["x-amzn-ErrorType"] = exc.code
                return exc.status, {"Code": exc.code, "Message": exc.message}, headers
        return status, payload, headers

    @staticmethod
    def _route(method: str, path: str) -> tuple[str | None, str | None]:
        path = "/" + path.strip("/")
        routes = {
            ("POST", "/accounts"): "EnableSecurityHub",
            ("GET", "/accounts"): "DescribeHub",
            ("DELETE", "/accounts"): "DisableSecurityHub",
            ("POST", "/findings/import"): "BatchImportFindings",
            ("POST", "/findings"): "GetFindings",
            ("PATCH", "/findings/batchupdate"): "BatchUpdateFindings",
            ("GET", "/productSubscriptions"): "ListEnabledProductsForImport",
            ("POST", "/productSubscriptions"): "EnableImportFindingsForProduct",
            ("GET", "/products"): "DescribeProducts",
        }
        if (method, path) in routes:
            return routes[(method, path)], None
        if method == "DELETE" and path.startswith("/productSubscriptions/"):
            return "DisableImportFindingsForProduct", path[len("/productSubscriptions/") :]
        return None, None

    def _maybe_throttle(self) -> None:
        self._request_count += 1
        n = self._throttle_every_n
        if n is not None and self._request_count % n == 0:
            # Throttling raises LimitExceededException, HTTP 429 (docs/aws-behaviours.md §15).
            raise ServiceError(429, "LimitExceededException", "Rate exceeded")

    def _hub(self, account_id: str, region: str) -> _Hub:
        hub = self._hubs.get((account_id, region))
        if hub is None or not hub.enabled:
            raise _not_subscribed(account_id)
        return hub

    def _enable(self, account_id: str, region: str) -> _Hub:
        previous = self._hubs.get((account_id, region))
        hub = _Hub(subscribed_at=_iso(self._clock()))
        if previous is not None:
            # Findings of a disabled hub are deleted only after 90 days, so a quick re-enable finds them again.
            hub.findings, hub.seq = previous.findings, previous.seq
        for name in AWS_PRODUCTS:
            if name == PATCH_MANAGER_PRODUCT and not self._native_export_on_enable:
                continue
            hub.subscriptions[subscription_arn(account_id, region, "aws", name)] = aws_product_arn(region, name)
        self._hubs[(account_id, region)] = hub
        return hub

    # ------------------------------------------------------------------ hub
    def _op_EnableSecurityHub(self, params: dict, account_id: str, region: str) -> tuple[int, dict]:  # noqa: N802
        hub = self._hubs.get((account_id, region))
        if hub is not None and hub.enabled:
            raise ServiceError(
                409, "ResourceConflictException", f"Account {account_id} is already subscribed to Security Hub"
            )
        self._enable(account_id, region)
        return 200, {}

    def _op_DescribeHub(self, params: dict, account_id: str, region: str) -> tuple[int, dict]:  # noqa: N802
        hub = self._hub(account_id, region)
        hub_arn = f"arn:{partition_of(region)}:securityhub:{region}:{account_id}:hub/default"
        if params.get("HubArn") and params["HubArn"] != hub_arn:
            raise _invalid_input(f"Invalid HubArn {params['HubArn']!r}; this account's hub is {hub_arn}")
        return 200, {
            "HubArn": hub_arn,
            "SubscribedAt": hub.subscribed_at,
            "AutoEnableControls": True,
            "ControlFindingGenerator": "SECURITY_CONTROL",
        }

    def _op_DisableSecurityHub(self, params: dict, account_id: str, region: str) -> tuple[int, dict]:  # noqa: N802
        self._hub(account_id, region).enabled = False
        return 200, {}

    # ------------------------------------------------------------------ products (native export signal)
    def _op_ListEnabledProductsForImport(self, params: dict, account_id: str, region: str) -> tuple[int, dict]:  # noqa: N802
        hub = self._hub(account_id, region)
        page, token = _page(sorted(hub.subscriptions), params)
        return 200, {"ProductSubscriptions": page, **({"NextToken": token} if token else {})}

    def _op_DescribeProducts(self, params: dict, account_id: str, region: str) -> tuple[int, dict]:  # noqa: N802
        self._hub(account_id, region)
        products = [
            {
                "ProductArn": aws_product_arn(region, name),
                "ProductName": title,
                "CompanyName": "AWS",
                "Description": f"{title} findings",
                "Categories": ["AWS Service"],
                "IntegrationTypes": ["SEND_FINDINGS_TO_SECURITY_HUB"],
                "ActivationUrl": f"https://console.aws.amazon.com/securityhub/home?region={region}#/integrations",
            }
            for name, title in sorted(AWS_PRODUCTS.items())
        ]
        if params.get("ProductArn"):
            products = [p for p in products if p["ProductArn"] == params["ProductArn"]]
        page, token = _page(products, params)
        return 200, {"Products": page, **({"NextToken": token} if token else {})}

    def _op_EnableImportFindingsForProduct(self, params: dict, account_id: str, region: str) -> tuple[int, dict]:  # noqa: N802
        hub = self._hub(account_id, region)
        product_arn = params.get("ProductArn")
        names = {aws_product_arn(region, name): name for name in AWS_PRODUCTS}
        if product_arn not in names:
            raise _invalid_input(f"Invalid ProductArn {product_arn!r}; DescribeProducts lists the products of {region}")
        arn = subscription_arn(account_id, region, "aws", names[product_arn])
        if arn in hub.subscriptions:
            raise ServiceError(409, "ResourceConflictException", f"Product {product_arn} is already enabled")
        hub.subscriptions[arn] = product_arn
        return 200, {"ProductSubscriptionArn": arn}

    def _op_DisableImportFindingsForProduct(self, params: dict, account_id: str, region: str) -> tuple[int, dict]:  # noqa: N802
        hub = self._hub(account_id, region)
        arn = params.get("ProductSubscriptionArn")
        if arn not in hub.subscriptions:
            raise ServiceError(404, "ResourceNotFoundException", f"Product subscription {arn} not found")
        del hub.subscriptions[arn]
        return 200, {}

    # ------------------------------------------------------------------ findings
    def _op_BatchImportFindings(self, params: dict, account_id: str, region: str) -> tuple[int, dict]:  # noqa: N802
        findings = params.get("Findings")
        if not isinstance(findings, list) or not 1 <= len(findings) <= MAX_IMPORT_FINDINGS:
            count = len(findings) if isinstance(findings, list) else 0
            raise _invalid_input(
                f"Findings must hold 1 to {MAX_IMPORT_FINDINGS} findings, got {count}; split the import into batches"
            )
        if _size(findings) > MAX_BATCH_BYTES:
            # The 6 MB batch limit is documented, its error is not: reported as invalid input.
            raise _invalid_input(f"The request exceeds the {MAX_BATCH_BYTES} byte batch limit; send fewer findings")
        own_product = default_product_arn(account_id, region)
        for finding in findings:
            if not isinstance(finding, dict):
                continue
            product = finding.get("ProductArn")
            owner = finding.get("AwsAccountId")
            # With the default product ARN a finding can only be imported from its own account; a mismatch (or
            # another account's/product's ARN) fails the whole call with a misleading AccessDeniedException
            # (docs/aws-behaviours.md §15; prowler-cloud/prowler#867, cloud-custodian#6091).
            if (isinstance(product, str) and product != own_product) or (
                isinstance(owner, str) and owner != account_id
            ):
                resource = product if isinstance(product, str) else own_product
                raise ServiceError(
                    403,
                    "AccessDeniedException",
                    f"User: arn:{partition_of(region)}:iam::{account_id}:root is not authorized to perform: "
                    f"securityhub:BatchImportFindings on resource: {resource}",
                )
        hub = self._hubs.get((account_id, region))
        failed: list[dict] = []
        success = 0
        for finding in findings:
            finding_id = finding.get("Id") if isinstance(finding, dict) else None
            shown_id = finding_id if isinstance(finding_id, str) and finding_id else "unknown"
            if hub is None or not hub.enabled:
                # A disabled hub is not an exception for BatchImportFindings: each finding is returned in
                # FailedFindings with InvalidAccess (docs/aws-behaviours.md §15).
                failed.append(
                    _failure(shown_id, "InvalidAccess", f"Account {account_id} is not subscribed to AWS Security Hub")
                )
                continue
            if shown_id in self._fail_ids and self._inject_failure(shown_id):
                failed.append(_failure(shown_id, "InternalFailure", "Injected failure (sandbox fault)"))
                continue
            if _size(finding) > MAX_FINDING_BYTES:
                # "An error is returned for any finding larger than 240 Kb"; the code is the one BatchUpdateFindings
                # documents for the same limit.
                failed.append(
                    _failure(shown_id, "FindingSizeExceeded", f"The finding exceeds {MAX_FINDING_BYTES} bytes")
                )
                continue
            problem = validate_finding(finding)
            if problem:
                failed.append(
                    _failure(shown_id, "InvalidInput", f"Finding does not adhere to Amazon Finding Format. {problem}")
                )
                continue
            self._store(hub, finding, region)
            success += 1
        return 200, {"FailedCount": len(failed), "SuccessCount": success, "FailedFindings": failed}

    def _inject_failure(self, finding_id: str) -> bool:
        seen = self._fail_seen.get(finding_id, 0)
        self._fail_seen[finding_id] = seen + 1
        return self._fail_times is None or seen < self._fail_times

    def _store(self, hub: _Hub, finding: dict, region: str) -> None:
        key = (finding["ProductArn"], finding["Id"])
        existing = hub.findings.get(key)
        if existing is not None:
            # Same Id + ProductArn: an update only when UpdatedAt is later; otherwise silently ignored and still
            # counted as a success (docs/aws-behaviours.md §16).
            if parse_timestamp(finding["UpdatedAt"]) <= parse_timestamp(existing.finding["UpdatedAt"]):
                return
        new = copy.deepcopy(finding)
        provider = new.setdefault("FindingProviderFields", {})
        for name in PROVIDER_FIELDS:
            if name in provider:
                new[name] = copy.deepcopy(provider[name])
            elif name in new:
                provider[name] = copy.deepcopy(new[name])
        if "Severity" in new and "Label" in new["Severity"]:
            new["Severity"].setdefault("Normalized", LABEL_NORMALIZED[new["Severity"]["Label"]])
        new.setdefault("RecordState", "ACTIVE")
        new.setdefault("Workflow", {"Status": "NEW"})
        new.setdefault("CompanyName", "Personal")
        new.setdefault("ProductName", "Default")
        new["Region"] = region
        new["ProcessedAt"] = _iso(self._clock())
        product_fields = new.setdefault("ProductFields", {})
        product_fields["aws/securityhub/FindingId"] = f"{new['ProductArn']}/{new['Id']}"
        product_fields["aws/securityhub/ProductName"] = new["ProductName"]
        product_fields["aws/securityhub/CompanyName"] = new["CompanyName"]
        if existing is None:
            hub.seq += 1
            new["WorkflowState"] = new["Workflow"]["Status"]
            hub.findings[key] = _Stored(seq=hub.seq, finding=new)
            return
        old = existing.finding
        for name in CUSTOMER_ONLY_FIELDS:
            new.pop(name, None)
            if name in old:
                new[name] = copy.deepcopy(old[name])
        for name in existing.customer_set:
            new[name] = copy.deepcopy(old[name])
        # Workflow goes back to NEW from NOTIFIED/RESOLVED when the record is re-activated or compliance fails
        # again after PASSED (model WorkflowUpdate doc; finding-workflow-status.md).
        reactivated = old.get("RecordState") == "ARCHIVED" and new["RecordState"] == "ACTIVE"
        failed_again = old.get("Compliance", {}).get("Status") == "PASSED" and new.get("Compliance", {}).get(
            "Status"
        ) in ("FAILED", "WARNING", "NOT_AVAILABLE")
        if new["Workflow"].get("Status") in ("NOTIFIED", "RESOLVED") and (reactivated or failed_again):
            new["Workflow"] = {"Status": "NEW"}
        new["WorkflowState"] = new["Workflow"]["Status"]
        existing.finding = new

    def _op_GetFindings(self, params: dict, account_id: str, region: str) -> tuple[int, dict]:  # noqa: N802
        hub = self._hub(account_id, region)
        if params.get("SortCriteria"):
            raise _invalid_input("SortCriteria is not emulated by the sandbox; results come in creation order")
        predicate = compile_filters(params.get("Filters") or {})
        stored = sorted(hub.findings.values(), key=lambda s: s.seq)
        matches = [s for s in stored if predicate(s.finding)]
        page, token = _page(matches, params, key=lambda s: s.seq)
        return 200, {"Findings": [copy.deepcopy(s.finding) for s in page], **({"NextToken": token} if token else {})}

    def _op_BatchUpdateFindings(self, params: dict, account_id: str, region: str) -> tuple[int, dict]:  # noqa: N802
        hub = self._hub(account_id, region)
        identifiers = params.get("FindingIdentifiers")
        if not isinstance(identifiers, list) or not 1 <= len(identifiers) <= MAX_UPDATE_IDENTIFIERS:
            raise _invalid_input(f"FindingIdentifiers must hold 1 to {MAX_UPDATE_IDENTIFIERS} identifiers")
        changes = _customer_changes(params, _iso(self._clock()))
        keys = [(i.get("ProductArn"), i.get("Id")) for i in identifiers]
        processed: list[dict] = []
        unprocessed: list[dict] = []
        for ident, key in zip(identifiers, keys, strict=True):
            if keys.count(key) > 1:
                unprocessed.append(
                    _unprocessed(ident, "DuplicatedFindingIdentifier", "The request names this finding more than once")
                )
                continue
            stored = hub.findings.get(key)
            if stored is None:
                unprocessed.append(_unprocessed(ident, "FindingNotFound", "The finding identifier matches no finding"))
                continue
            for name, value in changes.items():
                stored.finding[name] = copy.deepcopy(value)
                if name in PROVIDER_FIELDS:
                    stored.customer_set.add(name)
            if "Workflow" in changes:
                stored.finding["WorkflowState"] = changes["Workflow"]["Status"]
            # BatchUpdateFindings does not change UpdatedAt (model doc).
            processed.append({"Id": key[1], "ProductArn": key[0]})
        return 200, {"ProcessedFindings": processed, "UnprocessedFindings": unprocessed}


def _failure(finding_id: str, code: str, message: str) -> dict:
    return {"Id": finding_id, "ErrorCode": code, "ErrorMessage": message}


def _unprocessed(identifier: dict, code: str, message: str) -> dict:
    return {"FindingIdentifier": identifier, "ErrorCode": code, "ErrorMessage": message}


def _customer_changes(params: dict, now: str) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if "Workflow" in params:
        status = (params["Workflow"] or {}).get("Status")
        if status not in WORKFLOW_STATUSES:
            raise _invalid_input(f"Workflow.Status {status!r} is not one of {', '.join(WORKFLOW_STATUSES)}")
        changes["Workflow"] = {"Status": status}
    if "Note" in params:
        note = params["Note"] or {}
        text, by = note.get("Text"), note.get("UpdatedBy")
        if not isinstance(text, str) or not 1 <= len(text) <= 512 or not by:
            raise _invalid_input("Note needs Text (1..512 characters) and UpdatedBy")
        changes["Note"] = {"Text": text, "UpdatedBy": by, "UpdatedAt": now}
    if "VerificationState" in params:
        if params["VerificationState"] not in VERIFICATION_STATES:
            raise _invalid_input(f"VerificationState must be one of {', '.join(VERIFICATION_STATES)}")
        changes["VerificationState"] = params["VerificationState"]
    if "Severity" in params:
        label = (params["Severity"] or {}).get("Label")
        if label is not None and label not in SEVERITY_LABELS:
            raise _invalid_input(f"Severity.Label must be one of {', '.join(SEVERITY_LABELS)}")
        severity = dict(params["Severity"])
        if label:
            severity.setdefault("Normalized", LABEL_NORMALIZED[label])
        changes["Severity"] = severity
    for name in ("Confidence", "Criticality"):
        if name in params:
            if not isinstance(params[name], int) or not 0 <= params[name] <= 100:
                raise _invalid_input(f"{name} must be an integer 0..100")
            changes[name] = params[name]
    for name in ("Types", "UserDefinedFields", "RelatedFindings"):
        if name in params:
            changes[name] = params[name]
    if not changes:
        raise _invalid_input("BatchUpdateFindings needs at least one field to update (Workflow, Note, Severity, ...)")
    return changes


def _page(items: list, params: dict, key: Callable[[Any], int] | None = None) -> tuple[list, str | None]:
    """One page after NextToken. The token carries the last item's position (its creation sequence for findings),
    so findings updated between pages neither repeat nor go missing."""
    raw = params.get("MaxResults")
    try:
        limit = MAX_RESULTS if raw is None else int(raw)
    except (TypeError, ValueError):
        raise _invalid_input(f"MaxResults must be an integer 1..{MAX_RESULTS}, got {raw!r}") from None
    if not 1 <= limit <= MAX_RESULTS:
        raise _invalid_input(f"MaxResults must be between 1 and {MAX_RESULTS}, got {limit}")
    position = key or (lambda item: items.index(item))
    after = -1
    if params.get("NextToken"):
        try:
            after = int(json.loads(base64.urlsafe_b64decode(params["NextToken"].encode()))["after"])
        except (ValueError, KeyError, TypeError):
            raise _invalid_input("The NextToken is not valid; pass the value from the previous response") from None
    remaining = [item for item in items if position(item) > after]
    page = remaining[:limit]
    if len(remaining) <= limit:
        return page, None
    token = base64.urlsafe_b64encode(json.dumps({"after": position(page[-1])}).encode()).decode()
    return page, token


# ---------------------------------------------------------------------- filters
def _resources(attribute: str) -> Callable[[dict], list[str]]:
    return lambda f: [str(r.get(attribute)) for r in f.get("Resources", []) if r.get(attribute) is not None]


def _scalar(*path: str) -> Callable[[dict], list[str]]:
    def get(finding: dict) -> list[str]:
        value: Any = finding
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        return [] if value is None else [str(value)]

    return get


# The string filters the emulator evaluates; a finding matches a field when any of its values matches.
FILTER_FIELDS: dict[str, Callable[[dict], list[str]]] = {
    "Id": _scalar("Id"),
    "GeneratorId": _scalar("GeneratorId"),
    "AwsAccountId": _scalar("AwsAccountId"),
    "ProductArn": _scalar("ProductArn"),
    "ProductName": _scalar("ProductName"),
    "CompanyName": _scalar("CompanyName"),
    "Region": _scalar("Region"),
    "Title": _scalar("Title"),
    "Type": lambda f: [str(t) for t in f.get("Types", [])],
    "RecordState": _scalar("RecordState"),
    "ComplianceStatus": _scalar("Compliance", "Status"),
    "WorkflowStatus": _scalar("Workflow", "Status"),
    "SeverityLabel": _scalar("Severity", "Label"),
    "ResourceId": _resources("Id"),
    "ResourceType": _resources("Type"),
    "ResourceRegion": _resources("Region"),
}
_POSITIVE = {
    "EQUALS": lambda v, x: v == x,
    "PREFIX": lambda v, x: v.startswith(x),
    "CONTAINS": lambda v, x: x in v,
}
_NEGATIVE = {
    "NOT_EQUALS": lambda v, x: v != x,
    "PREFIX_NOT_EQUALS": lambda v, x: not v.startswith(x),
    "NOT_CONTAINS": lambda v, x: x not in v,
}


def compile_filters(filters: dict) -> Callable[[dict], bool]:
    """GetFindings string filters. Per field: EQUALS/PREFIX/CONTAINS are ORed, NOT_* are ANDed, PREFIX combines
    with NOT_EQUALS/PREFIX_NOT_EQUALS; fields are ANDed. Forbidden mixes are errors (StringFilter.Comparison doc)."""
    if not isinstance(filters, dict):
        raise _invalid_input("Filters must be an object of finding attributes")
    active = {name: values for name, values in filters.items() if values}
    if len(active) > MAX_FILTER_ATTRIBUTES:
        raise _invalid_input(f"Filters may use at most {MAX_FILTER_ATTRIBUTES} finding attributes, got {len(active)}")
    checks: list[Callable[[dict], bool]] = []
    for name, values in active.items():
        if name not in FILTER_FIELDS:
            raise _invalid_input(f"Filter {name} is not emulated by the sandbox; supported: {', '.join(FILTER_FIELDS)}")
        if not isinstance(values, list) or len(values) > MAX_FILTER_VALUES:
            raise _invalid_input(f"Filter {name} takes a list of at most {MAX_FILTER_VALUES} values")
        comparisons = [(v.get("Comparison"), v.get("Value")) for v in values]
        for comparison, value in comparisons:
            if comparison not in _POSITIVE and comparison not in _NEGATIVE:
                raise _invalid_input(f"Filter {name}: Comparison {comparison!r} is not a string comparison")
            if not isinstance(value, str) or not value:
                raise _invalid_input(f"Filter {name}: Value must be a non-empty string")
        kinds = {c for c, _ in comparisons}
        if ("CONTAINS" in kinds and kinds - {"CONTAINS"}) or ("NOT_CONTAINS" in kinds and kinds - {"NOT_CONTAINS"}):
            raise _invalid_input(f"Filter {name}: CONTAINS and NOT_CONTAINS can only be combined with themselves")
        if "EQUALS" in kinds and kinds & {"NOT_EQUALS", "PREFIX_NOT_EQUALS"}:
            raise _invalid_input(f"Filter {name}: EQUALS cannot be combined with NOT_EQUALS or PREFIX_NOT_EQUALS")
        checks.append(_field_check(FILTER_FIELDS[name], comparisons))

    return lambda finding: all(check(finding) for check in checks)


def _field_check(get: Callable[[dict], list[str]], comparisons: list[tuple[str, str]]) -> Callable[[dict], bool]:
    positive = [(_POSITIVE[c], x) for c, x in comparisons if c in _POSITIVE]
    negative = [(_NEGATIVE[c], x) for c, x in comparisons if c in _NEGATIVE]

    def check(finding: dict) -> bool:
        values = get(finding)
        if positive and not any(op(v, x) for v in values for op, x in positive):
            return False
        return all(op(v, x) for v in values for op, x in negative) if values else not positive

    return check


# ---------------------------------------------------------------------- ASFF validation
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


# ---------------------------------------------------------------------- HTTP serving for tests
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")


def account_from_access_key(access_key: str) -> str:
    """Test convention: an access key ending in 12 digits belongs to that account, any other to 123456789012."""
    digits = access_key[-12:]
    return digits if _ACCOUNT.match(digits) else "123456789012"


def wsgi_app(emulator: SecurityHubEmulator, account_for: Callable[[str], str] = account_from_access_key) -> Callable:
    """A WSGI app that hands every request to ``emulator``; account and region come from the SigV4 scope."""

    def app(environ: dict, start_response: Callable) -> list[bytes]:
        match = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
        access_key, region = (match.group(1), match.group(2)) if match else ("", "us-east-1")
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            status, payload, headers = 400, {"Code": "InvalidInputException", "Message": "Body is not JSON"}, {}
        else:
            status, payload, headers = emulator.handle(
                environ["REQUEST_METHOD"],
                environ.get("PATH_INFO", "/"),
                parse_qs(environ.get("QUERY_STRING", "")),
                body,
                account_for(access_key),
                region,
            )
        data = json.dumps(payload).encode()
        reason = {
            200: "OK",
            400: "Bad Request",
            401: "Unauthorized",
            403: "Forbidden",
            404: "Not Found",
            409: "Conflict",
            429: "Too Many Requests",
            501: "Not Implemented",
        }.get(status, "Error")
        start_response(f"{status} {reason}", [*headers.items(), ("Content-Length", str(len(data)))])
        return [data]

    return app


@contextmanager
def running(
    emulator: SecurityHubEmulator, account_for: Callable[[str], str] = account_from_access_key
) -> Iterator[str]:
    """Serve ``emulator`` on a free local port in a thread; yields the endpoint URL."""
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    class _Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            return

    server = make_server("127.0.0.1", 0, wsgi_app(emulator, account_for), handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
