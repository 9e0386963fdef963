"""Value normalisation quirks (docs/aws-behaviours.md §7, §8, §10) on Arrow arrays."""

from __future__ import annotations

import pyarrow as pa
import pytest

from include.patch_compliance.transform import normalise


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Installed", "INSTALLED"),
        ("InstalledOther", "INSTALLED_OTHER"),
        ("InstalledPendingReboot", "INSTALLED_PENDING_REBOOT"),
        ("InstalledRejected", "INSTALLED_REJECTED"),
        ("Missing", "MISSING"),
        ("NotApplicable", "NOT_APPLICABLE"),
        ("Not Applicable", "NOT_APPLICABLE"),
        ("AvailableSecurityUpdate", "AVAILABLE_SECURITY_UPDATE"),
        ("INSTALLED_PENDING_REBOOT", "INSTALLED_PENDING_REBOOT"),
        ("FAILED", "FAILED"),
        ("", None),
    ],
)
def test_patch_state_camel_and_upper_snake_spellings_agree_aws_behaviours_7(raw, expected):
    assert normalise.patch_state(raw) == expected
    assert normalise.normalise_states(pa.array([raw, None])).to_pylist() == [expected, None]


@pytest.mark.parametrize(
    ("vendor", "label"),
    [
        ("Critical", "CRITICAL"),
        ("Important", "HIGH"),
        ("High", "HIGH"),
        ("Moderate", "MEDIUM"),
        ("Medium", "MEDIUM"),
        ("low", "LOW"),
        ("Informational", "INFORMATIONAL"),
        ("Unspecified", "UNSPECIFIED"),
        ("", "UNSPECIFIED"),
        (None, "UNSPECIFIED"),
        ("Optional", "UNSPECIFIED"),
    ],
)
def test_vendor_severity_mapping(vendor, label):
    assert normalise.normalise_severity(pa.array([vendor], type=pa.string())).to_pylist() == [label]


def test_blank_strings_become_null():
    assert normalise.blank_to_null(pa.array(["", "  ", "x ", None])).to_pylist() == [None, None, "x", None]


def test_cve_string_becomes_list():
    got = normalise.split_cves(pa.array(["CVE-1,CVE-2", " CVE-3 , CVE-4,", "", None, "CVE-5"])).to_pylist()
    assert got == [["CVE-1", "CVE-2"], ["CVE-3", "CVE-4"], [], [], ["CVE-5"]]


def test_epoch_zero_and_empty_times_become_null_aws_behaviours_7():
    got = normalise.parse_time_strings(
        pa.array(["1970-01-01T00:00:00+00:00", "1970-01-01T00:00:00Z", "", None, "2026-11-29T01:02:03+00:00"])
    ).to_pylist()
    assert got[:4] == [None, None, None, None]
    assert got[4].isoformat() == "2026-11-29T01:02:03+00:00"


def test_epoch_seconds_are_accepted_and_zero_is_null():
    got = normalise.parse_times(pa.array([0.0, 1764378123.0], type=pa.float64())).to_pylist()
    assert got[0] is None
    assert got[1].year == 2025


def test_unparseable_time_names_the_field():
    with pytest.raises(ValueError, match=r"patches\[\]\.InstalledTime: 'yesterday' is not an ISO-8601 time"):
        normalise.parse_time_strings(pa.array(["2026-11-29T01:02:03Z", "yesterday"]), "patches[].InstalledTime")


@pytest.mark.parametrize(
    ("ours", "service", "shape"),
    [
        ("PATCH_STATES", "ssm", "PatchComplianceDataState"),
        ("COMPLIANCE_ITEM_STATUSES", "ssm", "ComplianceStatus"),
        ("COMPLIANCE_SEVERITIES", "ssm", "ComplianceSeverity"),
        ("PING_STATUSES", "ssm", "PingStatus"),
        ("PLATFORM_TYPES", "ssm", "PlatformType"),
        ("RESOURCE_TYPES", "ssm", "ResourceType"),
        ("PATCH_OPERATIONS", "ssm", "PatchOperationType"),
        ("COMMAND_STATUSES", "ssm", "CommandStatus"),
        ("INVOCATION_STATUSES", "ssm", "CommandInvocationStatus"),
        ("EC2_STATES", "ec2", "InstanceStateName"),
        ("PATCH_COMPLIANCE_STATUSES", "ssm", "PatchComplianceStatus"),
    ],
)
def test_vocabularies_are_the_botocore_model_enums_aws_behaviours_27(ours, service, shape):
    """When botocore learns a new value, this fails: add it (and decide what it means) instead of reading it as
    UNKNOWN forever."""
    import botocore.session

    from include.patch_compliance.transform import schema

    model = botocore.session.get_session().get_service_model(service)
    assert sorted(getattr(schema, ours)) == sorted(model.shape_for(shape).enum)


def test_unknown_enum_values_become_unknown_and_are_kept_raw_aws_behaviours_27():
    values, raw = normalise.normalise_enum(
        pa.array(["Missing", " Hibernated ", "", None]), ("MISSING",), normalise.patch_state
    )
    assert values.to_pylist() == ["MISSING", "UNKNOWN", None, None]
    assert raw.to_pylist() == [None, "Hibernated", None, None]
    lists = normalise.unrecognised_list(4, {"state": raw, "other": pa.array([None, "x", None, "y"])})
    assert lists.to_pylist() == [[], ["state=Hibernated", "other=x"], [], ["other=y"]]
    assert normalise.unrecognised_list(2, {"state": pa.nulls(2, pa.string())}).to_pylist() == [[], []]


def test_vendor_severities_the_mapping_does_not_know_are_unspecified_and_flagged():
    raw = pa.array(["Critical", "Standard", "n/a", "Bogus", "", None])
    assert normalise.normalise_severity(raw).to_pylist() == ["CRITICAL", *["UNSPECIFIED"] * 5]
    assert normalise.unrecognised_severity(raw).to_pylist() == [None, None, None, "Bogus", None, None]
