"""Security Hub emulator: each AWS rule it reproduces (docs/aws-behaviours.md §14-§16), directly and through boto3."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from sandbox.securityhub import (
    MAX_FINDING_BYTES,
    SecurityHubEmulator,
    default_product_arn,
    parse_timestamp,
    running,
)

ACCOUNT = "111111111111"
OTHER = "222222222222"
REGION = "eu-west-1"
PRODUCT = default_product_arn(ACCOUNT, REGION)


def finding(fid: str = "f-1", **overrides: object) -> dict:
    base = {
        "SchemaVersion": "2018-10-08",
        "Id": fid,
        "ProductArn": PRODUCT,
        "GeneratorId": "patch-compliance/node-patch-state",
        "AwsAccountId": ACCOUNT,
        "Types": ["Software and Configuration Checks/Patch Management"],
        "CreatedAt": "2026-11-01T00:00:00Z",
        "UpdatedAt": "2026-11-01T00:00:00Z",
        "Title": "title",
        "Description": "description",
        "FindingProviderFields": {"Severity": {"Label": "HIGH", "Original": "HIGH"}},
        "Compliance": {"Status": "FAILED"},
        "Resources": [{"Type": "AwsEc2Instance", "Id": f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/i-{fid}"}],
    }
    base.update(overrides)
    return base


@pytest.fixture
def hub() -> SecurityHubEmulator:
    emulator = SecurityHubEmulator(clock=lambda: datetime(2026, 11, 29, 1, 0, tzinfo=UTC))
    emulator.enable(ACCOUNT, REGION)
    return emulator


def call(
    hub: SecurityHubEmulator,
    method: str,
    path: str,
    body: dict | None = None,
    account: str = ACCOUNT,
    region: str = REGION,
    query: dict | None = None,
) -> tuple[int, dict]:
    status, payload, headers = hub.handle(method, path, query or {}, body, account, region)
    assert headers["Content-Type"] == "application/json"
    if status >= 400:
        assert headers["x-amzn-ErrorType"] == payload["Code"]
    return status, payload


def import_(hub: SecurityHubEmulator, *findings: dict, account: str = ACCOUNT) -> tuple[int, dict]:
    return call(hub, "POST", "/findings/import", {"Findings": list(findings)}, account=account)


def get(hub: SecurityHubEmulator, filters: dict | None = None, **params: object) -> tuple[int, dict]:
    return call(hub, "POST", "/findings", {"Filters": filters or {}, **params})


def eq(value: str, comparison: str = "EQUALS") -> list[dict]:
    return [{"Value": value, "Comparison": comparison}]


@pytest.fixture
def client_for():
    emulator = SecurityHubEmulator()
    with running(emulator) as url:

        def make(account: str = ACCOUNT, region: str = REGION, attempts: int = 3):
            return boto3.client(
                "securityhub",
                region_name=region,
                endpoint_url=url,
                aws_access_key_id=f"AKIA{account}",
                aws_secret_access_key="x",
                aws_session_token="t",
                config=Config(retries={"mode": "standard", "total_max_attempts": attempts}),
            )

        make.emulator = emulator  # type: ignore[attr-defined]
        yield make


# ---------------------------------------------------------------- hub lifecycle
def test_disabled_hub_describe_is_invalid_access_and_enable_twice_conflicts(client_for) -> None:
    client = client_for()
    with pytest.raises(ClientError) as err:
        client.describe_hub()
    assert err.value.response["Error"]["Code"] == "InvalidAccessException"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 401
    assert f"Account {ACCOUNT} is not subscribed to AWS Security Hub" in str(err.value)
    client.enable_security_hub()
    assert client.describe_hub()["HubArn"] == f"arn:aws:securityhub:{REGION}:{ACCOUNT}:hub/default"
    with pytest.raises(ClientError) as err:
        client.enable_security_hub()
    assert err.value.response["Error"]["Code"] == "ResourceConflictException"


def test_import_into_disabled_hub_fails_each_finding_with_invalid_access_not_an_exception() -> None:
    # finding-update-batchimportfindings.md: disabled hub -> FailedFindings with InvalidAccess.
    emulator = SecurityHubEmulator()
    status, body = import_(emulator, finding("a"), finding("b"))
    assert status == 200
    assert body["SuccessCount"] == 0 and body["FailedCount"] == 2
    assert {f["ErrorCode"] for f in body["FailedFindings"]} == {"InvalidAccess"}


def test_disable_then_reenable_keeps_findings_and_get_findings_refuses_meanwhile(hub) -> None:
    import_(hub, finding("a"))
    assert call(hub, "DELETE", "/accounts")[0] == 200
    status, body = get(hub)
    assert (status, body["Code"]) == (401, "InvalidAccessException")
    assert call(hub, "POST", "/accounts", {})[0] == 200
    assert [f["Id"] for f in get(hub)[1]["Findings"]] == ["a"]


def test_state_is_per_account_and_region(hub) -> None:
    import_(hub, finding("a"))
    hub.enable(ACCOUNT, "us-east-1")
    assert call(hub, "POST", "/findings", {}, region="us-east-1")[1]["Findings"] == []
    assert hub.findings(OTHER, REGION) == []
    assert len(hub.findings(ACCOUNT, REGION)) == 1


# ---------------------------------------------------------------- BatchImportFindings limits and rules
def test_import_takes_1_to_100_findings(hub) -> None:
    assert import_(hub, *[finding(f"f{i}") for i in range(100)])[1]["SuccessCount"] == 100
    status, body = import_(hub, *[finding(f"g{i}") for i in range(101)])
    assert (status, body["Code"]) == (400, "InvalidInputException")
    status, body = call(hub, "POST", "/findings/import", {"Findings": []})
    assert (status, body["Code"]) == (400, "InvalidInputException")
    assert len(hub.findings(ACCOUNT, REGION)) == 100


def test_import_of_101_through_boto3_is_refused_by_the_service(client_for) -> None:
    client = client_for()
    client.enable_security_hub()
    with pytest.raises(ClientError) as err:
        client.batch_import_findings(Findings=[finding(f"f{i}") for i in range(101)])
    assert err.value.response["Error"]["Code"] == "InvalidInputException"


@pytest.mark.parametrize(
    "overrides",
    [
        {"AwsAccountId": OTHER},  # finding of another account sent from this one
        {"ProductArn": default_product_arn(OTHER, REGION)},
        {"ProductArn": f"arn:aws:securityhub:{REGION}::product/{ACCOUNT}/default"},  # no account (custodian#6091)
        {"ProductArn": default_product_arn(ACCOUNT, "us-east-1")},  # another region's product
        {"ProductArn": f"arn:aws:securityhub:{REGION}::product/aws/ssm-patch-manager"},
    ],
)
def test_import_for_another_account_or_product_is_access_denied_for_the_whole_call(hub, overrides) -> None:
    # docs/aws-behaviours.md §15 account rule (prowler#867): AccessDeniedException, nothing stored.
    status, body = import_(hub, finding("ok"), finding("bad", **overrides))
    assert (status, body["Code"]) == (403, "AccessDeniedException")
    assert "securityhub:BatchImportFindings" in body["Message"]
    assert hub.findings(ACCOUNT, REGION) == []


def test_account_rule_through_boto3_names_access_denied(client_for) -> None:
    client = client_for(OTHER)
    client.enable_security_hub()
    with pytest.raises(ClientError) as err:
        client.batch_import_findings(Findings=[finding("x")])  # AwsAccountId 1111..., caller 2222...
    assert err.value.response["Error"]["Code"] == "AccessDeniedException"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda f: f.pop("Title"), "required property 'Title'"),
        (lambda f: f.pop("Resources"), "required property 'Resources'"),
        (lambda f: f.pop("FindingProviderFields"), "'Severity'"),
        (lambda f: f.update(SchemaVersion="2020-01-01"), "SchemaVersion"),
        (lambda f: f.update(UpdatedAt="2026-11-01 00:00:00"), "UpdatedAt"),
        (lambda f: f.update(Title="x" * 257), "Title"),
        (lambda f: f.update(Description="x" * 1025), "Description"),
        (lambda f: f.update(Types=["Patch Management"]), "Types"),
        (lambda f: f.update(Compliance={"Status": "BROKEN"}), "Compliance.Status"),
        (lambda f: f.update(RecordState="GONE"), "RecordState"),
        (lambda f: f.update(Resources=[{"Type": "Other"}]), "'Id'"),
        (lambda f: f.update(Resources=[{"Type": "Other", "Id": str(i)} for i in range(33)]), "Resources"),
        (lambda f: f.update(PatchSummary={"Id": "pb-1", "MissingCount": 100_001}), "MissingCount"),
        (lambda f: f.update(FindingProviderFields={"Severity": {"Label": "SEVERE"}}), "Label"),
    ],
)
def test_invalid_finding_goes_to_failed_findings_with_invalid_input(hub, mutate, needle) -> None:
    bad = finding("bad")
    mutate(bad)
    status, body = import_(hub, finding("good"), bad)
    assert status == 200
    assert body["SuccessCount"] == 1 and body["FailedCount"] == 1
    [failure] = body["FailedFindings"]
    assert failure["Id"] == "bad" and failure["ErrorCode"] == "InvalidInput"
    assert needle in failure["ErrorMessage"]
    assert [f["Id"] for f in hub.findings(ACCOUNT, REGION)] == ["good"]


def test_finding_over_240_kb_fails_alone(hub) -> None:
    big = finding("big", ProductFields={f"k{i}": "x" * 2048 for i in range(50)})
    big["Resources"][0]["Details"] = {"Other": {f"o{i}": "y" * 1024 for i in range(50)}}
    big["Vulnerabilities"] = [{"Id": f"CVE-{i}", "ReferenceUrls": ["u" * 1000]} for i in range(200)]
    assert len(json.dumps(big)) > MAX_FINDING_BYTES
    body = import_(hub, big, finding("small"))[1]
    assert body["SuccessCount"] == 1
    assert body["FailedFindings"][0]["ErrorCode"] == "FindingSizeExceeded"


def test_same_id_updates_only_with_a_later_updated_at_and_ignored_ones_still_count_as_success(hub) -> None:
    import_(hub, finding("a", Title="v1", UpdatedAt="2026-11-02T00:00:00Z"))
    for stale in (
        "2026-11-02T00:00:00Z",
        "2026-11-02T00:00:00.000Z",
        "2026-11-01T23:59:59.999999999Z",
        "2026-11-02T01:00:00+02:00",
    ):
        body = import_(hub, finding("a", Title="stale", UpdatedAt=stale))[1]
        assert body["SuccessCount"] == 1 and body["FailedCount"] == 0
        assert hub.findings(ACCOUNT, REGION)[0]["Title"] == "v1"
    import_(hub, finding("a", Title="v2", UpdatedAt="2026-11-02T00:00:00.000000001Z"))
    [stored] = hub.findings(ACCOUNT, REGION)
    assert stored["Title"] == "v2" and stored["UpdatedAt"] == "2026-11-02T00:00:00.000000001Z"


def test_server_fields_and_provider_fields_copied_to_top_level(hub) -> None:
    import_(hub, finding("a"))
    [stored] = hub.findings(ACCOUNT, REGION)
    assert stored["Severity"] == {"Label": "HIGH", "Original": "HIGH", "Normalized": 70}
    assert stored["FindingProviderFields"]["Types"] == stored["Types"]
    assert stored["RecordState"] == "ACTIVE" and stored["Workflow"] == {"Status": "NEW"}
    assert stored["Region"] == REGION and stored["ProcessedAt"].endswith("Z")
    assert stored["ProductFields"]["aws/securityhub/FindingId"] == f"{PRODUCT}/a"


def test_import_cannot_change_customer_fields_and_customer_severity_wins(hub) -> None:
    import_(hub, finding("a"))
    update = {
        "FindingIdentifiers": [{"Id": "a", "ProductArn": PRODUCT}],
        "Workflow": {"Status": "NOTIFIED"},
        "Note": {"Text": "ticket 42", "UpdatedBy": "analyst"},
        "Severity": {"Label": "LOW"},
    }
    assert call(hub, "PATCH", "/findings/batchupdate", update)[1]["ProcessedFindings"] == update["FindingIdentifiers"]
    import_(
        hub,
        finding(
            "a",
            UpdatedAt="2026-11-03T00:00:00Z",
            Workflow={"Status": "SUPPRESSED"},
            FindingProviderFields={"Severity": {"Label": "CRITICAL"}},
        ),
    )
    [stored] = hub.findings(ACCOUNT, REGION)
    assert stored["Workflow"] == {"Status": "NOTIFIED"}
    assert stored["Note"]["Text"] == "ticket 42"
    assert stored["Severity"]["Label"] == "LOW"  # customer's change kept
    assert stored["FindingProviderFields"]["Severity"]["Label"] == "CRITICAL"


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({"Compliance": {"Status": "PASSED"}}, {"Compliance": {"Status": "FAILED"}}),
        ({"RecordState": "ARCHIVED"}, {"RecordState": "ACTIVE"}),
    ],
)
def test_workflow_resets_to_new_when_failing_again_or_reactivated(hub, first, second) -> None:
    import_(hub, finding("a", **first))
    call(
        hub,
        "PATCH",
        "/findings/batchupdate",
        {"FindingIdentifiers": [{"Id": "a", "ProductArn": PRODUCT}], "Workflow": {"Status": "RESOLVED"}},
    )
    import_(hub, finding("a", UpdatedAt="2026-11-05T00:00:00Z", **first))
    assert hub.findings(ACCOUNT, REGION)[0]["Workflow"]["Status"] == "RESOLVED"
    import_(hub, finding("a", UpdatedAt="2026-11-06T00:00:00Z", **second))
    assert hub.findings(ACCOUNT, REGION)[0]["Workflow"]["Status"] == "NEW"


# ---------------------------------------------------------------- GetFindings filters and paging
@pytest.fixture
def seeded(hub) -> SecurityHubEmulator:
    import_(
        hub,
        finding("acct/eu/i-1/pc", Compliance={"Status": "FAILED"}),
        finding("acct/eu/i-2/pc", Compliance={"Status": "PASSED"}, RecordState="ARCHIVED"),
        finding(
            "acct/eu/mi-3/pc",
            GeneratorId="other-generator",
            Resources=[{"Type": "Other", "Id": "arn:aws:ssm:eu-west-1:111111111111:managed-instance/mi-3"}],
        ),
        finding("zzz"),
    )
    call(
        hub,
        "PATCH",
        "/findings/batchupdate",
        {"FindingIdentifiers": [{"Id": "zzz", "ProductArn": PRODUCT}], "Workflow": {"Status": "SUPPRESSED"}},
    )
    return hub


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"Id": eq("zzz")}, ["zzz"]),
        ({"Id": eq("acct/eu/", "PREFIX")}, ["acct/eu/i-1/pc", "acct/eu/i-2/pc", "acct/eu/mi-3/pc"]),
        ({"Id": eq("zzz", "NOT_EQUALS")}, ["acct/eu/i-1/pc", "acct/eu/i-2/pc", "acct/eu/mi-3/pc"]),
        ({"Id": [*eq("acct/", "PREFIX"), *eq("acct/eu/i-2/pc", "NOT_EQUALS")]}, ["acct/eu/i-1/pc", "acct/eu/mi-3/pc"]),
        ({"Id": [*eq("zzz"), *eq("acct/eu/i-1/pc")]}, ["acct/eu/i-1/pc", "zzz"]),  # EQUALS values are ORed
        (
            {"GeneratorId": eq("patch-compliance/node-patch-state"), "RecordState": eq("ACTIVE")},
            ["acct/eu/i-1/pc", "zzz"],
        ),
        ({"ComplianceStatus": eq("PASSED")}, ["acct/eu/i-2/pc"]),
        ({"WorkflowStatus": eq("SUPPRESSED")}, ["zzz"]),
        ({"WorkflowStatus": eq("NEW")}, ["acct/eu/i-1/pc", "acct/eu/i-2/pc", "acct/eu/mi-3/pc"]),
        (
            {"AwsAccountId": eq(ACCOUNT), "ProductArn": eq(PRODUCT)},
            ["acct/eu/i-1/pc", "acct/eu/i-2/pc", "acct/eu/mi-3/pc", "zzz"],
        ),
        ({"AwsAccountId": eq(OTHER)}, []),
        ({"ResourceId": eq("arn:aws:ssm:", "PREFIX")}, ["acct/eu/mi-3/pc"]),
        (
            {"ResourceId": eq("arn:aws:ec2:", "PREFIX"), "RecordState": eq("ARCHIVED", "NOT_EQUALS")},
            ["acct/eu/i-1/pc", "zzz"],
        ),
    ],
)
def test_get_findings_string_filters(seeded, filters, expected) -> None:
    status, body = get(seeded, filters)
    assert status == 200
    assert sorted(f["Id"] for f in body["Findings"]) == expected


@pytest.mark.parametrize(
    "filters",
    [
        {"Id": [*eq("a"), *eq("b", "NOT_EQUALS")]},  # EQUALS with NOT_EQUALS on one field
        {"Title": [*eq("a", "CONTAINS"), *eq("b", "PREFIX")]},
        {"Id": [{"Value": str(i), "Comparison": "EQUALS"} for i in range(21)]},  # > 20 values
        {
            name: eq("x")
            for name in [
                "Id",
                "GeneratorId",
                "AwsAccountId",
                "ProductArn",
                "Region",
                "Title",
                "Type",
                "RecordState",
                "ComplianceStatus",
                "WorkflowStatus",
                "ResourceId",
            ]
        },  # > 10
        {"Id": [{"Value": "", "Comparison": "EQUALS"}]},
    ],
)
def test_get_findings_rejects_bad_filters(seeded, filters) -> None:
    status, body = get(seeded, filters)
    assert (status, body["Code"]) == (400, "InvalidInputException")


def test_get_findings_pages_with_next_token_without_repeats_even_when_findings_update_between_pages(hub) -> None:
    for start in range(0, 250, 100):
        import_(hub, *[finding(f"n{i:03d}") for i in range(start, min(start + 100, 250))])
    status, first = get(hub, MaxResults=100)
    assert status == 200 and len(first["Findings"]) == 100 and first["NextToken"]
    import_(hub, finding("n000", UpdatedAt="2026-11-09T00:00:00Z"))  # an update must not move it to a later page
    seen = [f["Id"] for f in first["Findings"]]
    token = first["NextToken"]
    while token:
        page = get(hub, MaxResults=100, NextToken=token)[1]
        seen += [f["Id"] for f in page["Findings"]]
        token = page.get("NextToken")
    assert seen == [f"n{i:03d}" for i in range(250)]


@pytest.mark.parametrize("params", [{"MaxResults": 0}, {"MaxResults": 101}, {"NextToken": "not-a-token"}])
def test_get_findings_paging_parameters_are_validated(hub, params) -> None:
    status, body = get(hub, **params)
    assert (status, body["Code"]) == (400, "InvalidInputException")


def test_boto3_paginator_walks_all_pages(client_for) -> None:
    client = client_for()
    client.enable_security_hub()
    for start in range(0, 230, 100):
        client.batch_import_findings(Findings=[finding(f"p{i}") for i in range(start, min(start + 100, 230))])
    pages = list(
        client.get_paginator("get_findings").paginate(
            Filters={"GeneratorId": eq("patch-compliance/node-patch-state")}, PaginationConfig={"PageSize": 100}
        )
    )
    assert [len(p["Findings"]) for p in pages] == [100, 100, 30]
    assert client_for.emulator.calls()["GetFindings"] == 3


# ---------------------------------------------------------------- BatchUpdateFindings
def test_batch_update_reports_unknown_and_duplicate_identifiers_and_keeps_updated_at(hub) -> None:
    import_(hub, finding("a"), finding("b"))
    body = call(
        hub,
        "PATCH",
        "/findings/batchupdate",
        {
            "FindingIdentifiers": [
                {"Id": "a", "ProductArn": PRODUCT},
                {"Id": "nope", "ProductArn": PRODUCT},
                {"Id": "b", "ProductArn": PRODUCT},
                {"Id": "b", "ProductArn": PRODUCT},
            ],
            "Workflow": {"Status": "RESOLVED"},
            "Note": {"Text": "patched", "UpdatedBy": "patch-compliance"},
        },
    )[1]
    assert body["ProcessedFindings"] == [{"Id": "a", "ProductArn": PRODUCT}]
    assert [(u["FindingIdentifier"]["Id"], u["ErrorCode"]) for u in body["UnprocessedFindings"]] == [
        ("nope", "FindingNotFound"),
        ("b", "DuplicatedFindingIdentifier"),
        ("b", "DuplicatedFindingIdentifier"),
    ]
    a = hub.findings(ACCOUNT, REGION)[0]
    assert a["Workflow"]["Status"] == "RESOLVED" and a["Note"]["UpdatedAt"] == "2026-11-29T01:00:00.000Z"
    assert a["UpdatedAt"] == "2026-11-01T00:00:00Z"


@pytest.mark.parametrize(
    "body",
    [
        {
            "FindingIdentifiers": [{"Id": str(i), "ProductArn": PRODUCT} for i in range(101)],
            "Workflow": {"Status": "NEW"},
        },
        {"FindingIdentifiers": [], "Workflow": {"Status": "NEW"}},
        {"FindingIdentifiers": [{"Id": "a", "ProductArn": PRODUCT}], "Workflow": {"Status": "DONE"}},
        {"FindingIdentifiers": [{"Id": "a", "ProductArn": PRODUCT}]},  # nothing to update
    ],
)
def test_batch_update_rejects_bad_requests(hub, body) -> None:
    status, payload = call(hub, "PATCH", "/findings/batchupdate", body)
    assert (status, payload["Code"]) == (400, "InvalidInputException")


# ---------------------------------------------------------------- faults
def test_throttle_every_n_is_deterministic_429_limit_exceeded(hub) -> None:
    hub.set_faults(throttle_every_n=3)
    statuses = [get(hub)[0] for _ in range(7)]
    assert statuses == [200, 200, 429, 200, 200, 429, 200]
    status, body = get(hub.__class__(), {})  # a fresh emulator has no faults
    assert body["Code"] == "InvalidAccessException"


def test_standard_retry_mode_retries_limit_exceeded(client_for) -> None:
    # docs/aws-behaviours.md §18: standard mode treats LimitExceededException as throttling and retries it.
    client = client_for(attempts=3)
    client.enable_security_hub()
    client_for.emulator.set_faults(throttle_every_n=2)
    client.get_findings()  # request 1; the import is request 2, throttled once, then retried as request 3
    response = client.batch_import_findings(Findings=[finding("a")])
    assert response["SuccessCount"] == 1
    assert response["ResponseMetadata"]["RetryAttempts"] == 1
    client_for.emulator.set_faults(throttle_every_n=1)
    with pytest.raises(ClientError) as err:
        client.get_findings()
    assert err.value.response["Error"]["Code"] == "LimitExceededException"
    assert err.value.response["ResponseMetadata"]["RetryAttempts"] == 2


def test_fail_ids_fail_always_or_a_set_number_of_times(hub) -> None:
    hub.set_faults(fail_ids={"a"})
    for _ in range(2):
        body = import_(hub, finding("a"), finding("b"))[1]
        assert [(f["Id"], f["ErrorCode"]) for f in body["FailedFindings"]] == [("a", "InternalFailure")]
    hub.set_faults(fail_ids={"c"}, fail_times=1)
    assert import_(hub, finding("c"))[1]["FailedCount"] == 1
    assert import_(hub, finding("c"))[1]["SuccessCount"] == 1
    with pytest.raises(ValueError, match="throttle_every_n"):
        hub.set_faults(throttle_every_n=0)


# ---------------------------------------------------------------- Patch Manager's own export signal
def test_native_export_is_the_ssm_patch_manager_product_subscription(client_for) -> None:
    client = client_for()
    emulator = client_for.emulator
    assert not emulator.native_export_enabled(ACCOUNT, REGION)
    client.enable_security_hub()
    subscription = f"arn:aws:securityhub:{REGION}:{ACCOUNT}:product-subscription/aws/ssm-patch-manager"
    assert subscription in client.list_enabled_products_for_import()["ProductSubscriptions"]
    assert emulator.native_export_enabled(ACCOUNT, REGION)
    product = f"arn:aws:securityhub:{REGION}::product/aws/ssm-patch-manager"
    [described] = client.describe_products(ProductArn=product)["Products"]
    assert described["ProductName"] == "Systems Manager Patch Manager"
    client.disable_import_findings_for_product(ProductSubscriptionArn=subscription)
    assert not emulator.native_export_enabled(ACCOUNT, REGION)
    assert client.enable_import_findings_for_product(ProductArn=product)["ProductSubscriptionArn"] == subscription
    with pytest.raises(ClientError) as err:
        client.enable_import_findings_for_product(ProductArn=product)
    assert err.value.response["Error"]["Code"] == "ResourceConflictException"
    emulator.set_native_export(ACCOUNT, REGION, False)
    assert subscription not in client.list_enabled_products_for_import()["ProductSubscriptions"]


def test_list_enabled_products_pages(hub) -> None:
    status, first = call(hub, "GET", "/productSubscriptions", query={"MaxResults": ["3"]})
    assert status == 200 and len(first["ProductSubscriptions"]) == 3
    rest = call(hub, "GET", "/productSubscriptions", query={"NextToken": [first["NextToken"]]})[1]
    assert len(first["ProductSubscriptions"]) + len(rest["ProductSubscriptions"]) == 8
    assert not set(first["ProductSubscriptions"]) & set(rest["ProductSubscriptions"])


def test_native_export_off_on_enable_option_and_toggle_needs_an_enabled_hub() -> None:
    emulator = SecurityHubEmulator(native_export_on_enable=False)
    emulator.enable(ACCOUNT, REGION)
    assert not emulator.native_export_enabled(ACCOUNT, REGION)
    emulator.set_native_export(ACCOUNT, REGION, True)
    assert emulator.native_export_enabled(ACCOUNT, REGION)
    with pytest.raises(ValueError, match="not enabled"):
        emulator.set_native_export(OTHER, REGION, True)


def test_timestamps_compare_exactly() -> None:
    assert parse_timestamp("2026-11-01T00:00:00.5Z") == parse_timestamp("2026-11-01T01:00:00.500+01:00")
    assert parse_timestamp("2026-11-01T00:00:00Z") < parse_timestamp("2026-11-01T00:00:00.000000001Z")
    assert parse_timestamp("2026-11-01") is None


def test_concurrent_imports_are_thread_safe(hub) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def worker(n: int) -> int:
        batch = [finding(f"t{n}-{i}", UpdatedAt=f"2026-11-0{1 + i % 5}T00:00:00Z") for i in range(50)]
        return import_(hub, *batch, *batch)[1]["SuccessCount"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert sum(pool.map(worker, range(16))) == 16 * 100
    assert len(hub.findings(ACCOUNT, REGION)) == 16 * 50
    assert hub.calls()["BatchImportFindings"] == 16


def test_batch_over_6_mb_is_refused_whole(hub) -> None:
    padded = [finding(f"p{i}", ProductFields={f"k{j}": "x" * 2000 for j in range(35)}) for i in range(100)]
    assert all(len(json.dumps(f)) < MAX_FINDING_BYTES for f in padded)
    status, body = import_(hub, *padded)
    assert (status, body["Code"]) == (400, "InvalidInputException") and "6291456" in body["Message"]
    assert hub.findings(ACCOUNT, REGION) == []


def test_unknown_routes_and_unemulated_parameters_say_so(hub) -> None:
    status, body = call(hub, "GET", "/standards/subscription")
    assert (status, body["Code"]) == (404, "ResourceNotFoundException")
    status, body = get(hub, SortCriteria=[{"Field": "UpdatedAt", "SortOrder": "desc"}])
    assert status == 400 and "not emulated" in body["Message"]
    status, body = get(hub, {"MalwareName": eq("x")})
    assert status == 400 and "MalwareName is not emulated" in body["Message"]
