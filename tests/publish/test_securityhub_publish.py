"""publish_findings against the Security Hub emulator, through boto3 and AwsContext (standard retries)."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import boto3
import pandas as pd
import pyarrow as pa
import pytest

from include.patch_compliance.aws import AwsContext, TargetUnreachable
from include.patch_compliance.config import SecurityHubConfig
from include.patch_compliance.publish import asff
from include.patch_compliance.publish.securityhub import publish_findings
from sandbox.securityhub import SecurityHubEmulator, running

A, B, C = "111111111111", "222222222222", "333333333333"
EU, US = "eu-west-1", "us-east-1"
T0 = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)
CFG = SecurityHubConfig()


def node(account: str, region: str, instance_id: str | None, status: str = "NON_COMPLIANT", **extra: object) -> dict:
    row = {
        "run_id": "run-1",
        "ou_path": "Root/Workloads/Prod",
        "account_id": account,
        "account_name": f"acct-{account[:3]}",
        "region": region,
        "instance_id": instance_id,
        "instance_name": f"web-{instance_id}" if instance_id else None,
        "platform_type": "Linux",
        "platform_name": "Amazon Linux",
        "patch_group": "prod",
        "baseline_id": "pb-0123456789abcdef0",
        "compliance_status": status if instance_id else "UNKNOWN",
        "coverage_status": "SCANNED" if instance_id else "UNREACHABLE",
        "critical_non_compliant_count": 0,
        "security_non_compliant_count": 2 if status == "NON_COMPLIANT" else 0,
        "other_non_compliant_count": 0,
        "missing_count": 2 if status == "NON_COMPLIANT" else 0,
        "failed_count": 0,
        "installed_pending_reboot_count": 0,
        "installed_rejected_count": 0,
        "installed_count": 40,
        "installed_other_count": 3,
        "last_operation": "Scan",
        "last_scan_time": T0 - timedelta(hours=1),
        "ping_status": "Online",
        "highest_missing_severity": "HIGH" if status == "NON_COMPLIANT" else None,
        "sla_breaches": 0,
    }
    row.update(extra)
    return row


def patch(account: str, region: str, instance_id: str, kb: str, severity: str = "HIGH", **extra: object) -> dict:
    row = {
        "account_id": account,
        "region": region,
        "instance_id": instance_id,
        "kb_id": kb,
        "title": f"{kb} security update",
        "classification": "Security",
        "severity": severity,
        "state": "MISSING",
        "cve_ids": [f"CVE-2026-{kb[-4:]}"],
        "first_seen": T0 - timedelta(days=10),
        "age_days": 10,
        "sla_breached": False,
    }
    row.update(extra)
    return row


def frame(rows: list[dict]) -> pd.DataFrame:
    """pyarrow-backed columns, as transform.build_tables hands them over."""
    return pa.Table.from_pylist(rows).to_pandas(types_mapper=pd.ArrowDtype)


NO_PATCHES = frame([patch(A, EU, "i-none", "KB0000")]).iloc[0:0]


@pytest.fixture(autouse=True)
def _instant_backoff(monkeypatch):
    # Keep retry sleeps out of the tests; the retry decision itself stays botocore's.
    monkeypatch.setattr("botocore.retries.standard.ExponentialBackoff.delay_amount", lambda self, context: 0)


@pytest.fixture
def sh():
    emulator = SecurityHubEmulator(native_export_on_enable=False)
    for account in (A, B):
        for region in (EU, US):
            emulator.enable(account, region)
    with running(emulator) as url:
        calls: list[str] = []
        unreachable: set[str] = set()

        def context_for(account_id: str) -> AwsContext:
            calls.append(account_id)
            if account_id in unreachable:
                raise TargetUnreachable("assume_role", "AccessDenied", f"cannot assume role in {account_id}")
            session = boto3.Session(
                aws_access_key_id=f"AKIA{account_id}",
                aws_secret_access_key="x",
                aws_session_token="t",
                region_name=US,
            )
            return AwsContext(
                session=session, endpoint_url=url, max_attempts=emulator.max_attempts, account_id=account_id
            )

        emulator.max_attempts = 4  # type: ignore[attr-defined]
        emulator.context_for = context_for  # type: ignore[attr-defined]
        emulator.context_calls = calls  # type: ignore[attr-defined]
        emulator.unreachable = unreachable  # type: ignore[attr-defined]
        yield emulator


def publish(sh, nodes: list[dict], patches: list[dict] | None = None, *, now: datetime = T0, cfg=CFG, **kw):
    result = publish_findings(
        sh.context_for,
        frame(nodes),
        frame(patches) if patches else NO_PATCHES,
        cfg=cfg,
        run_id=f"run-{now:%d%H%M}",
        now=now,
        **kw,
    )
    json.dumps(result.as_dict())  # the run report must be JSON-serialisable
    return result


def by_instance(sh, account: str = A, region: str = EU) -> dict[str, dict]:
    return {f["Resources"][0]["Id"].rsplit("/", 1)[1]: f for f in sh.findings(account, region)}


def test_three_runs_create_update_resolve_and_archive(sh) -> None:
    fleet = [
        node(A, EU, "i-1"),
        node(A, EU, "i-2"),
        node(A, EU, "i-3", "COMPLIANT"),
        node(A, EU, "mi-4"),
        node(A, EU, "i-5", "UNKNOWN", coverage_status="NOT_SCANNED"),
    ]
    first = publish(sh, fleet, [patch(A, EU, "i-1", "KB1001")])
    assert (first.created, first.updated, first.resolved, first.failed, first.errors) == (3, 0, 0, 0, [])
    found = by_instance(sh)
    assert sorted(found) == ["i-1", "i-2", "mi-4"]  # non-compliant nodes only
    assert all(f["RecordState"] == "ACTIVE" and f["Compliance"]["Status"] == "FAILED" for f in found.values())
    assert found["i-1"]["Resources"][0]["Type"] == "AwsEc2Instance"
    assert found["mi-4"]["Resources"][0]["Type"] == "Other"
    assert found["i-1"]["Id"] == f"{A}/{EU}/i-1/patch-compliance"
    first_updated = {k: f["UpdatedAt"] for k, f in found.items()}

    second = publish(sh, fleet, [patch(A, EU, "i-1", "KB1001")], now=T0 + timedelta(days=1))
    assert (second.created, second.updated, second.resolved) == (0, 3, 0)
    found = by_instance(sh)
    assert len(sh.findings(A, EU)) == 3  # no duplicates
    assert all(asff.parse_iso(found[k]["UpdatedAt"]) > asff.parse_iso(first_updated[k]) for k in found)
    assert found["i-1"]["CreatedAt"] == first_updated["i-1"]  # CreatedAt kept across updates

    fleet3 = [node(A, EU, "i-1", "COMPLIANT"), node(A, EU, "i-3", "COMPLIANT"), node(A, EU, "mi-4")]  # i-2 gone
    third = publish(sh, fleet3, now=T0 + timedelta(days=2))
    assert (third.created, third.updated, third.resolved, third.failed) == (0, 1, 2, 0)
    found = by_instance(sh)
    fixed, gone = found["i-1"], found["i-2"]
    assert (fixed["RecordState"], fixed["Compliance"]["Status"], fixed["Severity"]["Label"]) == (
        "ARCHIVED",
        "PASSED",
        "INFORMATIONAL",
    )
    assert fixed["Workflow"]["Status"] == "RESOLVED"
    assert gone["RecordState"] == "ARCHIVED" and gone["ProductFields"]["patch-compliance/ResolvedReason"] == (
        "NODE_NOT_FOUND"
    )
    assert found["mi-4"]["RecordState"] == "ACTIVE"

    # Non-compliant again: re-activated, and Security Hub puts the workflow back to NEW by itself.
    fourth = publish(sh, [node(A, EU, "i-1"), node(A, EU, "mi-4")], now=T0 + timedelta(days=3))
    assert (fourth.created, fourth.updated, fourth.resolved) == (0, 2, 0)
    again = by_instance(sh)["i-1"]
    assert (again["RecordState"], again["Compliance"]["Status"], again["Workflow"]["Status"]) == (
        "ACTIVE",
        "FAILED",
        "NEW",
    )
    # A fifth identical run resolves nothing twice: already archived findings are left alone.
    fifth = publish(sh, [node(A, EU, "i-1"), node(A, EU, "mi-4")], now=T0 + timedelta(days=4))
    assert (fifth.created, fifth.updated, fifth.resolved) == (0, 2, 0)


def test_rerun_with_the_same_clock_still_advances_updated_at(sh) -> None:
    publish(sh, [node(A, EU, "i-1", Title="x")])
    before = sh.findings(A, EU)[0]["UpdatedAt"]
    again = publish(sh, [node(A, EU, "i-1", missing_count=5)])
    after = sh.findings(A, EU)[0]
    assert again.updated == 1
    assert asff.parse_iso(after["UpdatedAt"]) > asff.parse_iso(before)
    assert after["PatchSummary"]["MissingCount"] == 5  # the update was applied, not silently ignored


def test_250_findings_in_one_account_go_out_in_3_calls(sh) -> None:
    result = publish(sh, [node(A, EU, f"i-{n:04d}") for n in range(250)])
    assert result.created == 250
    assert sh.calls()["BatchImportFindings"] == 3
    assert len(sh.findings(A, EU)) == 250


def test_each_finding_is_sent_from_its_own_account_and_region(sh) -> None:
    fleet = [node(A, EU, "i-a1"), node(A, US, "i-a2"), node(B, EU, "i-b1"), node(B, US, "i-b2")]
    result = publish(sh, fleet)
    assert result.errors == [] and result.created == 4
    for account in (A, B):
        for region in (EU, US):
            stored = sh.findings(account, region)
            assert len(stored) == 1
            assert stored[0]["AwsAccountId"] == account and stored[0]["Region"] == region
            assert stored[0]["ProductArn"] == f"arn:aws:securityhub:{region}:{account}:product/{account}/default"
    assert sorted(sh.context_calls) == [A, B]  # one member context per account, shared by its regions


def test_injected_failed_findings_are_retried_once_then_reported(sh) -> None:
    bad = f"{A}/{EU}/i-2/patch-compliance"
    sh.set_faults(fail_ids={bad})
    result = publish(sh, [node(A, EU, "i-1"), node(A, EU, "i-2")])
    assert (result.created, result.failed) == (1, 1)
    assert result.failed_findings == [
        {
            "account_id": A,
            "region": EU,
            "id": bad,
            "error_code": "InternalFailure",
            "error_message": "Injected failure (sandbox fault)",
        }
    ]
    assert sh.calls()["BatchImportFindings"] == 2  # the batch, then one retry of the refused finding


def test_a_finding_refused_once_succeeds_on_the_retry(sh) -> None:
    sh.set_faults(fail_ids={f"{A}/{EU}/i-2/patch-compliance"}, fail_times=1)
    result = publish(sh, [node(A, EU, "i-1"), node(A, EU, "i-2")])
    assert (result.created, result.failed, result.failed_findings) == (2, 0, [])


def test_throttling_is_retried_by_the_standard_retry_mode(sh) -> None:
    sh.set_faults(throttle_every_n=2)
    result = publish(sh, [node(A, EU, f"i-{n:03d}") for n in range(150)])
    assert (result.created, result.failed, result.errors) == (150, 0, [])
    # Requests: ListEnabledProducts ok, GetFindings 429 + retry, import 429 + retry, import 429 + retry.
    assert sh.calls() == {"ListEnabledProductsForImport": 1, "GetFindings": 2, "BatchImportFindings": 4}


def test_throttling_beyond_the_retries_is_recorded_not_raised(sh) -> None:
    sh.set_faults(throttle_every_n=1)
    result = publish(sh, [node(A, EU, "i-1"), node(B, EU, "i-2")])
    assert result.created == 0
    assert [(e["account_id"], e["code"]) for e in result.errors] == [
        (A, "LimitExceededException"),
        (B, "LimitExceededException"),
    ]


def test_import_throttled_beyond_retries_counts_the_batch_as_failed_and_goes_on(sh) -> None:
    sh.max_attempts = 1  # no client retries: every throttled call surfaces at once
    sh.set_faults(throttle_every_n=2)
    # GetFindings ok, batch 1 (100) throttled, batch 2 (50) ok, retry of batch 1 throttled again.
    result = publish(
        sh, [node(A, EU, f"i-{n:03d}") for n in range(150)], cfg=SecurityHubConfig(skip_if_native_export=False)
    )
    assert (result.created, result.failed, result.errors) == (50, 100, [])
    assert {f["error_code"] for f in result.failed_findings} == {"LimitExceededException"}
    assert len(sh.findings(A, EU)) == 50


def test_disabled_hub_and_unreachable_account_are_recorded_not_fatal(sh) -> None:
    sh.unreachable.add(C)
    fleet = [node(A, EU, "i-1"), node(C, EU, "i-3"), node(A, "ap-southeast-2", "i-4")]  # hub off in ap-southeast-2
    result = publish(sh, fleet)
    assert result.created == 1
    errors = {(e["account_id"], e["region"]): (e["stage"], e["code"]) for e in result.errors}
    assert errors == {
        (C, EU): ("assume_role", "AccessDenied"),
        (A, "ap-southeast-2"): ("not_enabled", "InvalidAccessException"),
    }


def test_disabled_hub_detected_at_import_when_native_export_check_is_off(sh) -> None:
    cfg = SecurityHubConfig(skip_if_native_export=False)
    result = publish(sh, [node(A, "ap-southeast-2", "i-4")], cfg=cfg)
    assert [(e["stage"], e["code"]) for e in result.errors] == [("not_enabled", "InvalidAccessException")]


def test_native_export_on_skips_the_account_region(sh) -> None:
    sh.set_native_export(A, EU, True)
    result = publish(sh, [node(A, EU, "i-1"), node(A, US, "i-2")])
    assert result.skipped_targets == [{"account_id": A, "region": EU, "reason": "NATIVE_EXPORT_ENABLED"}]
    assert (result.skipped, result.created) == (1, 1)
    assert sh.findings(A, EU) == []
    forced = publish(sh, [node(A, EU, "i-1")], cfg=SecurityHubConfig(skip_if_native_export=False))
    assert forced.created == 1 and "ListEnabledProductsForImport" in sh.calls()


def test_uncollected_target_is_skipped_and_its_findings_untouched(sh) -> None:
    publish(sh, [node(A, EU, "i-1")])
    result = publish(sh, [node(A, EU, None), node(B, EU, "i-2")], now=T0 + timedelta(days=1))
    assert result.skipped_targets == [{"account_id": A, "region": EU, "reason": "TARGET_NOT_COLLECTED"}]
    assert sh.findings(A, EU)[0]["RecordState"] == "ACTIVE"
    assert A not in sh.context_calls[1:]  # no call made into the uncollected target's account


def test_scanned_target_without_nodes_archives_its_findings(sh) -> None:
    publish(sh, [node(A, EU, "i-1")])
    result = publish(sh, [node(B, EU, "i-2")], now=T0 + timedelta(days=1), scanned_targets=[(A, EU)])
    assert result.resolved == 1
    assert sh.findings(A, EU)[0]["RecordState"] == "ARCHIVED"


def test_disabled_config_makes_no_calls(sh) -> None:
    result = publish(sh, [node(A, EU, "i-1")], cfg=SecurityHubConfig(enabled=False))
    assert result.as_dict()["enabled"] is False and sh.calls() == {} and sh.context_calls == []


def test_first_observed_comes_from_patch_history_and_never_moves_later(sh) -> None:
    old = T0 - timedelta(days=40)
    patches = [patch(A, EU, "i-1", "KB1", first_seen=old), patch(A, EU, "i-1", "KB2", first_seen=T0)]
    publish(sh, [node(A, EU, "i-1")], patches)
    assert sh.findings(A, EU)[0]["FirstObservedAt"] == asff.iso(old)
    # Next run the old patch is installed; the finding's own earlier FirstObservedAt is kept.
    publish(sh, [node(A, EU, "i-1")], [patches[1]], now=T0 + timedelta(days=1))
    stored = sh.findings(A, EU)[0]
    assert stored["FirstObservedAt"] == asff.iso(old)
    assert stored["LastObservedAt"] == asff.iso(T0 - timedelta(hours=1))


def test_finding_content_patch_summary_severity_and_patches(sh) -> None:
    patches = [
        patch(A, EU, "i-1", "KB3001", "MEDIUM", cve_ids=["CVE-2026-1", "CVE-2026-2"]),
        patch(A, EU, "i-1", "KB3002", "CRITICAL", cve_ids=[]),
        patch(A, EU, "i-1", "KB3003", "LOW", cve_ids=None),
    ]
    cfg = SecurityHubConfig(max_patches_per_finding=2)
    row = node(A, EU, "i-1", highest_missing_severity="CRITICAL", missing_count=2, failed_count=1)
    publish(sh, [row], patches, cfg=cfg)
    stored = sh.findings(A, EU)[0]
    assert stored["Severity"]["Label"] == "CRITICAL" and stored["Types"] == [asff.FINDING_TYPE]
    assert stored["GeneratorId"] == "patch-compliance/node-patch-state"
    summary = stored["PatchSummary"]
    assert (summary["Id"], summary["MissingCount"], summary["FailedCount"], summary["Operation"]) == (
        "pb-0123456789abcdef0",
        3,
        1,
        "SCAN",
    )
    assert [v["Id"] for v in stored["Vulnerabilities"]] == ["KB3002", "KB3001"]  # most severe first, capped at 2
    assert stored["Vulnerabilities"][1]["RelatedVulnerabilities"] == ["CVE-2026-1", "CVE-2026-2"]
    assert stored["ProductFields"]["patch-compliance/PatchesListed"] == "2 of 3"
    assert (
        stored["SourceUrl"]
        == f"https://{EU}.console.aws.amazon.com/systems-manager/managed-instances/i-1/patch?region={EU}"
    )
    assert stored["Remediation"]["Recommendation"]["Url"].startswith("https://docs.aws.amazon.com/")
    assert stored["Resources"][0]["Partition"] == "aws" and stored["Resources"][0]["Region"] == EU


def test_bad_inputs_name_the_problem(sh) -> None:
    nodes = frame([node(A, EU, "i-1")]).drop(columns=["compliance_status"])
    with pytest.raises(ValueError, match=r"nodes table lacks columns \['compliance_status'\]"):
        publish_findings(sh.context_for, nodes, NO_PATCHES, cfg=CFG, run_id="r", now=T0)
    with pytest.raises(ValueError, match="timezone-aware"):
        publish_findings(
            sh.context_for, frame([node(A, EU, "i-1")]), NO_PATCHES, cfg=CFG, run_id="r", now=datetime(2026, 11, 1)
        )
    with pytest.raises(ValueError, match="partition"):
        publish_findings(
            sh.context_for, frame([node(A, EU, "i-1")]), NO_PATCHES, cfg=CFG, run_id="r", now=T0, partition="aws-moon"
        )


def test_through_the_sandbox_server_with_member_roles() -> None:
    """The real emulator server routes Security Hub to the backend; AssumeRole gives each account's context."""
    from include.patch_compliance.aws.members import MemberContexts
    from include.patch_compliance.config import AccessConfig
    from sandbox.testing import running_sandbox

    with running_sandbox(profile="small", seed=7, time_scale=0) as sb:
        mgmt = sb.fleet["management_account_id"]
        members = [
            a["id"] for a in sb.fleet["accounts"] if a["state"] == "ACTIVE" and a["has_role"] and a["id"] != mgmt
        ]
        session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=US)
        contexts = MemberContexts(
            AwsContext(session=session, endpoint_url=sb.url),
            AccessConfig(member_role_name=sb.fleet["member_role_name"]),
            "t",
        )
        # The emulated org enables every hub with Patch Manager's export off, except one account-region never
        # enabled and one where the native export was left on (sandbox/securityhub_seed.py).
        layout = sb.fleet["security_hub"]
        off, native = layout["disabled"][0], layout["native_export"][0]
        special = {(off["account_id"], off["region"]), (native["account_id"], native["region"])}
        enabled = next(m for m in members if (m, US) not in special)
        client = contexts.get(enabled).client("securityhub", US)
        fleet = [
            node(enabled, US, "i-1"),
            node(enabled, US, "i-2", "COMPLIANT"),
            node(off["account_id"], off["region"], "i-3"),
            node(native["account_id"], native["region"], "i-4"),
        ]
        sb.reset_calls()
        result = publish_findings(
            contexts.get, frame(fleet), NO_PATCHES, cfg=CFG, run_id="r", now=T0, release=contexts.release
        )
        assert result.created == 1
        assert contexts.live == 0  # every account's context was released when its Regions were done
        assert sb.calls()["sts.AssumeRole"] == len({n["account_id"] for n in fleet}) - 1  # `enabled` was assumed
        assert [(e["account_id"], e["stage"]) for e in result.errors] == [(off["account_id"], "not_enabled")]
        assert [(t["account_id"], t["region"]) for t in result.skipped_targets] == [
            (native["account_id"], native["region"])
        ]
        [stored] = client.get_findings()["Findings"]
        assert stored["Id"] == f"{enabled}/{US}/i-1/patch-compliance" and stored["AwsAccountId"] == enabled
        assert sb.calls()["securityhub.BatchImportFindings"] == 1


def test_a_customer_suppressed_finding_keeps_its_workflow_when_resolved(sh) -> None:
    publish(sh, [node(A, EU, "i-1"), node(A, EU, "i-2")])
    product = f"arn:aws:securityhub:{EU}:{A}:product/{A}/default"
    sh.handle(
        "PATCH",
        "/findings/batchupdate",
        {},
        {
            "FindingIdentifiers": [{"Id": f"{A}/{EU}/i-1/patch-compliance", "ProductArn": product}],
            "Workflow": {"Status": "SUPPRESSED"},
        },
        A,
        EU,
    )
    result = publish(sh, [node(A, EU, "i-1", "COMPLIANT"), node(A, EU, "i-2", "COMPLIANT")], now=T0 + timedelta(1))
    assert result.resolved == 2
    found = by_instance(sh)
    assert (found["i-1"]["Workflow"]["Status"], found["i-2"]["Workflow"]["Status"]) == ("SUPPRESSED", "RESOLVED")
    assert sh.calls()["BatchUpdateFindings"] == 2  # the customer's call and ours (for i-2 only)


def test_parallel_and_serial_runs_report_the_same(sh) -> None:
    sh.unreachable.add(C)
    fleet = [
        node(acct, region, f"i-{acct[:1]}{region[:2]}{n}")
        for acct in (A, B, C)
        for region in (EU, US)
        for n in range(3)
    ]
    fleet.append(node(A, "ap-southeast-2", "i-x"))
    serial = publish(sh, fleet, max_workers=1).as_dict()
    parallel = publish(sh, fleet, now=T0 + timedelta(days=1), max_workers=8).as_dict()
    assert serial["created"] == parallel["updated"] == 12
    assert serial["errors"] == parallel["errors"]
    assert [e["account_id"] for e in serial["errors"]] == [A, C, C]  # in (account, region) order


def test_unknown_compliance_status_and_duplicate_rows(sh, caplog) -> None:
    with pytest.raises(ValueError, match=r"compliance_status has values \['BROKEN'\]"):
        publish(sh, [node(A, EU, "i-1", "BROKEN")])
    with pytest.raises(ValueError, match="max_workers"):
        publish(sh, [node(A, EU, "i-1")], max_workers=0)
    result = publish(sh, [node(A, EU, "i-1"), node(A, EU, "i-1", missing_count=9)])
    assert result.created == 1 and sh.findings(A, EU)[0]["PatchSummary"]["MissingCount"] == 2
    assert "twice" in caplog.text


def test_hub_disabled_between_read_and_import_is_recorded_from_failed_findings(sh) -> None:
    # Security Hub answers InvalidAccess per finding rather than an exception (finding-update-batchimportfindings.md).
    def disable_hub(**_: object) -> None:
        sh.handle("DELETE", "/accounts", {}, None, A, EU)  # returning None lets the call go ahead

    def context_for(account_id: str) -> AwsContext:
        context = sh.context_for(account_id)
        context.client("securityhub", EU).meta.events.register(
            "before-call.securityhub.BatchImportFindings", disable_hub
        )
        return context

    result = publish_findings(
        context_for, frame([node(A, EU, "i-1")]), NO_PATCHES, cfg=CFG, run_id="r", now=T0, max_workers=1
    )
    assert (result.created, result.failed) == (0, 1)
    assert result.failed_findings[0]["error_code"] == "InvalidAccess"
    assert [(e["stage"], e["code"]) for e in result.errors] == [("not_enabled", "InvalidAccess")]


class _Refused:
    """A botocore before-call answer: the HTTP status of an IAM denial (the body becomes the ClientError)."""

    status_code = 403


def test_a_failed_export_check_is_an_error_of_its_account_region_aws_behaviours_17(sh) -> None:
    """The member role lacks securityhub:ListEnabledProductsForImport in A/eu-west-1 (issue 10 item 7): that
    account-region imports nothing and is counted as an error, the others go on."""
    denied = {"Error": {"Code": "AccessDeniedException", "Message": "not authorized: ListEnabledProductsForImport"}}

    def context_for(account_id: str) -> AwsContext:
        context = sh.context_for(account_id)
        if account_id == A:
            context.client("securityhub", EU).meta.events.register(
                "before-call.securityhub.ListEnabledProductsForImport", lambda **_: (_Refused(), denied)
            )
        return context

    result = publish_findings(
        context_for,
        frame([node(A, EU, "i-1"), node(A, US, "i-2"), node(B, EU, "i-3")]),
        NO_PATCHES,
        cfg=CFG,
        run_id="r",
        now=T0,
    )
    assert [(e["account_id"], e["region"], e["stage"], e["code"]) for e in result.errors] == [
        (A, EU, "list_enabled_products", "AccessDeniedException")
    ]
    assert (result.error_targets(), result.targets, result.created) == (1, 3, 2)
    assert sh.findings(A, EU) == []


def test_accounts_stream_one_context_each_released_after_all_its_regions(sh) -> None:
    """Each account: one context_for, then one release once every Region of it is published; at most
    max_workers accounts are in work at a time, so memory follows max_workers, not the fleet."""
    fleet = [node(a, r, f"i-{a[:1]}{r[:2]}{n}") for a in (A, B) for r in (EU, US) for n in (1, 2)]
    fleet += [node(C, EU, "i-c1")]
    sh.enable(C, EU)
    lock = threading.Lock()
    active: set[str] = set()
    peak = 0
    released: list[str] = []

    def context_for(account_id: str) -> AwsContext:
        nonlocal peak
        with lock:
            active.add(account_id)
            peak = max(peak, len(active))
        return sh.context_for(account_id)

    def release(account_id: str) -> None:
        regions = (EU, US) if account_id != C else (EU,)
        assert all(sh.findings(account_id, r) for r in regions), f"{account_id} released before all its Regions"
        with lock:
            active.discard(account_id)
            released.append(account_id)

    result = publish_findings(
        context_for, frame(fleet), NO_PATCHES, cfg=CFG, run_id="r", now=T0, max_workers=2, release=release
    )
    assert result.created == 9 and result.errors == []
    assert sorted(sh.context_calls) == sorted(released) == [A, B, C]  # once each
    assert peak <= 2 and active == set()


def test_arrow_tables_in_any_row_order_give_the_same_findings(sh) -> None:
    """The step hands over Arrow tables read from Parquet; rows of an account need not be next to each other."""
    fleet = [node(A, EU, "i-1"), node(B, EU, "i-2"), node(A, US, "i-3"), node(B, US, "i-4", "COMPLIANT")]
    patches = [patch(B, EU, "i-2", "KB2"), patch(A, EU, "i-1", "KB1"), patch(B, EU, "i-2", "KB3")]
    result = publish_findings(
        sh.context_for, pa.Table.from_pylist(fleet), pa.Table.from_pylist(patches), cfg=CFG, run_id="r", now=T0
    )
    assert (result.created, result.errors, result.targets) == (3, [], 4)
    assert sorted(sh.context_calls) == [A, B]
    [b_finding] = sh.findings(B, EU)
    assert sorted(v["Id"] for v in b_finding["Vulnerabilities"]) == ["KB2", "KB3"]
