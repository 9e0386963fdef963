"""Security Hub (CSPM) emulator backend, called by the sandbox server for requests whose SigV4 service is
``securityhub``. moto's Security Hub merges findings regardless of UpdatedAt, ignores filters and has no account
rule or BatchUpdateFindings (docs/aws-behaviours.md §19), so this is our own, following §14-§17 there and the botocore
``securityhub`` model (REST paths, shapes, limits).

State is per (account, region); one lock guards it all (calls are short, contention is not a concern).
``running(emulator)`` serves it over HTTP for tests until the sandbox server routes here.
"""

from __future__ import annotations

import copy
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import unquote

from sandbox.securityhub.filters import _page, compile_filters
from sandbox.securityhub.model import (
    AWS_PRODUCTS,
    MAX_BATCH_BYTES,
    MAX_FINDING_BYTES,
    MAX_IMPORT_FINDINGS,
    MAX_UPDATE_IDENTIFIERS,
    PATCH_MANAGER_PRODUCT,
    PROVIDER_FIELDS,
    Response,
    ServiceError,
    _invalid_input,
    _iso,
    _not_subscribed,
    _size,
    aws_product_arn,
    default_product_arn,
    partition_of,
    subscription_arn,
)
from sandbox.securityhub.state import _customer_changes, _failure, _first, _Hub, _unprocessed, store_finding
from sandbox.securityhub.validation import validate_finding


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
            store_finding(hub, finding, region, _iso(self._clock()))
            success += 1
        return 200, {"FailedCount": len(failed), "SuccessCount": success, "FailedFindings": failed}

    def _inject_failure(self, finding_id: str) -> bool:
        seen = self._fail_seen.get(finding_id, 0)
        self._fail_seen[finding_id] = seen + 1
        return self._fail_times is None or seen < self._fail_times

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
