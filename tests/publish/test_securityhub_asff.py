"""The ASFF builder: ids, severity mapping, resources, bounds, and validity against the emulator's ASFF rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from include.patch_compliance.publish import asff
from include.patch_compliance.publish.securityhub import size_batches
from sandbox.securityhub import validate_finding

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


def node(**extra: object) -> dict:
    row = {
        "account_id": "111111111111",
        "account_name": "prod-a",
        "ou_path": "Root/Prod",
        "region": "eu-west-1",
        "instance_id": "i-0abc",
        "instance_name": "web",
        "platform_type": "Windows",
        "platform_name": "Microsoft Windows Server 2022",
        "patch_group": None,
        "baseline_id": "pb-1",
        "compliance_status": "NON_COMPLIANT",
        "coverage_status": "SCANNED",
        "critical_non_compliant_count": 0,
        "security_non_compliant_count": 0,
        "missing_count": 1,
        "failed_count": 0,
        "installed_count": 10,
        "last_operation": "Install",
        "last_scan_time": NOW - timedelta(hours=2),
        "highest_missing_severity": "MEDIUM",
    }
    row.update(extra)
    return row


def patch(kb: str, severity: str = "HIGH", **extra: object) -> dict:
    row = {
        "kb_id": kb,
        "title": f"{kb} update",
        "severity": severity,
        "cve_ids": ["CVE-2026-0001"],
        "age_days": 3,
        "sla_breached": False,
        "first_seen": NOW - timedelta(days=3),
    }
    row.update(extra)
    return row


@pytest.mark.parametrize(
    ("extra", "label"),
    [
        ({"highest_missing_severity": "CRITICAL"}, "CRITICAL"),
        ({"highest_missing_severity": "HIGH"}, "HIGH"),
        ({"highest_missing_severity": "MEDIUM"}, "MEDIUM"),
        ({"highest_missing_severity": "LOW"}, "LOW"),
        ({"highest_missing_severity": "INFORMATIONAL"}, "LOW"),  # an open finding is never INFORMATIONAL
        ({"highest_missing_severity": "UNSPECIFIED"}, "LOW"),
        ({"highest_missing_severity": None}, "LOW"),
        ({"highest_missing_severity": "LOW", "critical_non_compliant_count": 1}, "CRITICAL"),  # baseline level
        ({"highest_missing_severity": "UNSPECIFIED", "security_non_compliant_count": 3}, "HIGH"),
        ({"highest_missing_severity": "CRITICAL", "security_non_compliant_count": 3}, "CRITICAL"),
    ],
)
def test_severity_mapping(extra, label) -> None:
    assert asff.severity_label(node(**extra)) == label


def test_ids_and_product_arn_are_deterministic() -> None:
    assert asff.finding_id("111111111111", "eu-west-1", "i-1") == "111111111111/eu-west-1/i-1/patch-compliance"
    assert asff.product_arn("aws-cn", "cn-north-1", "1" * 12) == (
        "arn:aws-cn:securityhub:cn-north-1:111111111111:product/111111111111/default"
    )
    one = asff.failed_finding(node(), [patch("KB1")], None, partition="aws", run_id="r", now=NOW, max_patches=5)
    two = asff.failed_finding(node(), [patch("KB1")], None, partition="aws", run_id="r", now=NOW, max_patches=5)
    assert one == two


@pytest.mark.parametrize(
    ("instance_id", "partition", "kind", "arn_prefix"),
    [
        ("i-0abc", "aws", "AwsEc2Instance", "arn:aws:ec2:eu-west-1:111111111111:instance/"),
        ("mi-0abc", "aws", "Other", "arn:aws:ssm:eu-west-1:111111111111:managed-instance/"),
        ("i-0abc", "aws-us-gov", "AwsEc2Instance", "arn:aws-us-gov:ec2:"),
    ],
)
def test_resource_type_and_partition(instance_id, partition, kind, arn_prefix) -> None:
    res = asff.resource(node(instance_id=instance_id), partition)
    assert res["Type"] == kind and res["Id"].startswith(arn_prefix) and res["Id"].endswith(instance_id)
    assert res["Partition"] == partition and res["Region"] == "eu-west-1"
    assert "PatchGroup" not in res["Details"]["Other"]  # missing values are left out, not sent as "None"


def test_console_url_per_partition() -> None:
    assert asff.console_url("aws-cn", "cn-north-1", "i-1").startswith("https://cn-north-1.console.amazonaws.cn/")
    assert asff.console_url("aws-us-gov", "us-gov-west-1", "i-1").endswith("/i-1/patch?region=us-gov-west-1")


def test_every_built_finding_is_valid_asff() -> None:
    failed = asff.failed_finding(
        node(), [patch("KB1"), patch("KB2", cve_ids=None)], None, partition="aws", run_id="r", now=NOW, max_patches=20
    )
    resolved = asff.resolved_finding(node(compliance_status="COMPLIANT"), failed, partition="aws", run_id="r", now=NOW)
    stored = {
        **failed,
        "ProcessedAt": "x",
        "Region": "eu-west-1",
        "Workflow": {"Status": "NEW"},
        "ProductFields": {**failed["ProductFields"], "aws/securityhub/FindingId": "x"},
    }
    archived = asff.archived_finding(stored, run_id="r2", now=NOW)
    for finding in (failed, resolved, archived):
        assert validate_finding(finding) is None, finding
    assert failed["PatchSummary"]["Operation"] == "INSTALL"
    assert archived["RecordState"] == "ARCHIVED" and "Workflow" not in archived and "Region" not in archived
    assert not any(k.startswith("aws/") for k in archived["ProductFields"])
    assert resolved["CreatedAt"] == failed["CreatedAt"]


def test_patch_cap_cve_cap_and_order() -> None:
    patches = [patch(f"KB{n:03d}", "LOW", age_days=n) for n in range(30)]
    patches.append(patch("KB-crit", "CRITICAL", cve_ids=[f"CVE-2026-{n:05d}" for n in range(50)]))
    patches.append(patch("KB-breach", "LOW", sla_breached=True, age_days=0))
    finding = asff.failed_finding(node(), patches, None, partition="aws", run_id="r", now=NOW, max_patches=4)
    ids = [v["Id"] for v in finding["Vulnerabilities"]]
    assert ids == ["KB-crit", "KB-breach", "KB029", "KB028"]  # severity, SLA breach, age
    assert len(finding["Vulnerabilities"][0]["RelatedVulnerabilities"]) == asff.MAX_CVES_PER_PATCH
    assert finding["ProductFields"]["patch-compliance/PatchesListed"] == "4 of 32"
    none = asff.failed_finding(node(), patches, None, partition="aws", run_id="r", now=NOW, max_patches=0)
    assert "Vulnerabilities" not in none


def test_largest_possible_finding_stays_under_240_kb() -> None:
    long = "x" * 5000
    patches = [patch(f"KB{n}{long}", "CRITICAL", title=long, cve_ids=[long] * 100) for n in range(100)]
    big = node(instance_name=long, platform_name=long, account_name=long, ou_path=long, patch_group=long)
    finding = asff.failed_finding(big, patches, None, partition="aws", run_id=long, now=NOW, max_patches=100)
    assert asff.size(finding) < asff.MAX_FINDING_BYTES
    assert validate_finding(finding) is None


def test_fit_size_drops_least_urgent_patches_until_it_fits() -> None:
    finding = asff.failed_finding(node(), [patch("KB1")], None, partition="aws", run_id="r", now=NOW, max_patches=5)
    finding["Vulnerabilities"] = [{"Id": f"KB{n}", "ReferenceUrls": ["u" * 10_000]} for n in range(40)]
    finding["ProductFields"]["patch-compliance/PatchesListed"] = "40 of 57"
    fitted = asff.fit_size(finding)
    kept = len(fitted["Vulnerabilities"])
    assert 0 < kept < 40 and [v["Id"] for v in fitted["Vulnerabilities"]] == [f"KB{n}" for n in range(kept)]
    assert asff.size(fitted) <= asff.MAX_FINDING_BYTES
    assert fitted["ProductFields"]["patch-compliance/PatchesListed"] == f"{kept} of 57"


def test_next_updated_at_is_strictly_later_than_the_stored_value() -> None:
    assert asff.next_updated_at(NOW, None) == "2026-11-29T03:00:00.000Z"
    assert asff.next_updated_at(NOW, "2026-11-28T00:00:00Z") == "2026-11-29T03:00:00.000Z"
    assert asff.next_updated_at(NOW, "2026-11-29T03:00:00.000Z") == "2026-11-29T03:00:00.001Z"
    assert asff.next_updated_at(NOW, "2026-11-29T05:00:00.123456789+02:00") == "2026-11-29T03:00:00.124Z"


def test_first_observed_prefers_the_earliest_known() -> None:
    patches = [patch("KB1", first_seen=NOW - timedelta(days=5)), patch("KB2", first_seen=None)]
    assert asff.first_observed(patches, None) == NOW - timedelta(days=5)
    assert asff.first_observed(patches, {"FirstObservedAt": "2026-01-01T00:00:00Z"}) == datetime(2026, 1, 1, tzinfo=UTC)
    assert asff.first_observed([], None) is None


def test_size_batches_bound_count_and_bytes() -> None:
    findings = [{"Id": str(n), "pad": "x" * 1000} for n in range(250)]
    assert [len(b) for b in size_batches(findings, 100, 10**9)] == [100, 100, 50]
    by_bytes = list(size_batches(findings, 100, 10_500))
    assert all(sum(asff.size(f) + 1 for f in b) <= 10_500 for b in by_bytes)
    assert [f["Id"] for b in by_bytes for f in b] == [str(n) for n in range(250)]
    assert len(by_bytes) == 25


class _Recording(dict):
    """A row that remembers which columns the builder read."""

    def __init__(self, row: dict, seen: set[str]) -> None:
        super().__init__(row)
        self.seen = seen

    def get(self, key, default=None):
        self.seen.add(key)
        return super().get(key, default)

    def __getitem__(self, key):
        self.seen.add(key)
        return super().__getitem__(key)


def test_builder_reads_only_columns_of_the_report_schema() -> None:
    """Contract with transform/schema.py: every column read exists there (operation_* are optional extras)."""
    from include.patch_compliance.transform.schema import NODES, PATCHES

    node_cols: set[str] = set()
    patch_cols: set[str] = set()
    row = _Recording({name: None for name in NODES.names} | node(), node_cols)
    patches = [_Recording({name: None for name in PATCHES.names} | patch("KB1"), patch_cols)]
    failed = asff.failed_finding(row, patches, None, partition="aws", run_id="r", now=NOW, max_patches=5)
    asff.resolved_finding(row, failed, partition="aws", run_id="r", now=NOW)
    assert node_cols - {"operation_start_time", "operation_end_time"} <= set(NODES.names)
    assert patch_cols <= set(PATCHES.names)
    assert {"highest_missing_severity", "baseline_id", "last_scan_time"} <= node_cols
    assert {"kb_id", "cve_ids", "severity", "first_seen"} <= patch_cols


def test_rows_from_plain_and_arrow_frames() -> None:
    """What the Security Hub step reads from any frame: aware UTC times, None for every kind of missing value,
    a column Arrow cannot type kept as text."""
    import pandas as pd
    import pyarrow as pa

    from include.patch_compliance.publish.findings_input import as_arrow, by_account, rows

    naive = datetime(2026, 11, 1, 3, 0)
    plain = pd.DataFrame({"account_id": ["1", "1"], "a": ["x", None], "t": [naive, pd.NaT], "n": [1.0, float("nan")]})
    mixed = plain.assign(m=[1, "two"])  # Arrow cannot type this column
    arrow = pa.Table.from_pandas(plain, preserve_index=False).to_pandas(types_mapper=pd.ArrowDtype)
    for frame in (plain, mixed, arrow):
        table, slices = by_account(as_arrow(frame, ("account_id",), "nodes"))
        first, second = rows(table, slices["1"])
        assert first["t"] == naive.replace(tzinfo=UTC) and first["t"].tzinfo is not None
        assert (second["a"], second["t"], second["n"]) == (None, None, None)
    table, slices = by_account(as_arrow(mixed, ("account_id",), "nodes"))
    assert [r["m"] for r in rows(table, slices["1"])] == ["1", "two"]
