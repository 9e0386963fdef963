"""The least-privilege check on a short real run through the emulator: the hub plans (Organizations walk, SSE-KMS
plan written and read back), a member scans and collects one account-region. The shipped templates allow every
call; a copy with one action dropped, or one resource narrowed, fails with a message naming the action, the
principal and the template; a grant nothing calls is reported; an operation the emulator cannot map fails closed.

The check over the whole suite runs from tests/deploy/recording.py (after every module) and
tests/deploy/test_policy_coverage.py (last)."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest

from include.patch_compliance import run_staging, steps
from include.patch_compliance.aws import AwsContext
from include.patch_compliance.collect.collector import collect_target
from include.patch_compliance.config import parse_config
from include.patch_compliance.runtime import RunContext
from include.patch_compliance.scan.command import ScanRequest, run_tag, scan_record
from sandbox.testing import running_sandbox
from scripts.cfn_templates import HUB_TEMPLATE, MEMBER_TEMPLATE
from tests.deploy.iam_check import Templates, calls_from_report, condition_holds, unused_grants, violations
from tests.deploy.recording import check_new_records

BUCKET = "pc-least-privilege"


@pytest.fixture(scope="module")
def recording():
    with running_sandbox(profile="small", seed=7, time_scale=0) as sb:
        sb.client("s3").create_bucket(Bucket=BUCKET)
        key_arn = sb.client("kms").create_key()["KeyMetadata"]["Arn"]
        cfg = parse_config(
            {
                "regions": ["us-east-1"],
                "reports": {"bucket": BUCKET, "prefix": "pc", "kms_key_id": key_arn},
                "waves": [{"name": "all", "ous": ["*"]}],
            }
        )
        hub = AwsContext(session=boto3.Session(region_name="us-east-1"), endpoint_url=sb.url)
        run = RunContext(cfg=cfg, dag_id="patch_compliance_scan", run_id="least-privilege", hub=hub)
        steps.plan_fleet(run)
        usable = {a["id"] for a in sb.fleet["accounts"] if a["has_role"] and a["state"] == "ACTIVE"}
        target = next(t for t in run_staging.load_plan(run).targets if t.account_id in usable)
        request = ScanRequest("Scan", run.run_id, run_tag(run.dag_id, run.run_id), cfg.scan)
        scanned = scan_record(run.members.get, target, request, datetime.now(UTC) - timedelta(hours=1))
        assert scanned["status"] == "SENT", scanned
        collected = collect_target(run.members.get, target.as_dict(), cfg.collect)
        assert collected["status"] == "OK", collected
        product = calls_from_report(sb.principals(), "tests/deploy/test_least_privilege.py")
        # A call the emulator has no IAM mapping for, made as the hub; then the record is cleared so that the
        # module-end check (tests/deploy/recording.py) does not see this deliberate one.
        boto3.client("s3", endpoint_url=sb.url, region_name="us-east-1").get_bucket_acl(Bucket=BUCKET)
        report = sb.principals()
        with_unmapped = calls_from_report(report)
        sb.reset_principals()
        yield {"product": product, "with_unmapped": with_unmapped, "report": report, "key_arn": key_arn}


def _copy(tmp_path: Path, source: Path, old: str, new: str) -> Path:
    text = source.read_text()
    assert text.count(old) >= 1, f"{old!r} not in {source}"
    path = tmp_path / source.name
    path.write_text(text.replace(old, new))
    return path


def _drop_action(tmp_path: Path, source: Path, action: str) -> Path:
    """The template with ``action`` removed from its Action list (or its single Action emptied)."""
    text = source.read_text()
    listed = re.compile(rf"^\s*- {re.escape(action)}\n", re.M)
    single = re.compile(rf"(Action:) {re.escape(action)}$", re.M)
    changed = listed.sub("", text) if listed.search(text) else single.sub(r"\1 []", text)
    assert changed != text, f"{action} not granted in {source}"
    path = tmp_path / source.name
    path.write_text(changed)
    return path


def test_the_shipped_templates_allow_every_recorded_call(recording) -> None:
    calls = recording["product"]
    actions = {(c.kind, c.action) for c in calls}
    # Both principals took part, through the scoped resources as well as the "*" ones.
    assert {
        ("account", "organizations:ListRoots"),
        ("account", "sts:AssumeRole"),
        ("account", "s3:PutObject"),
        ("account", "kms:GenerateDataKey"),
        ("account", "kms:Decrypt"),
        ("assumed-role", "ssm:SendCommand"),
        ("assumed-role", "ssm:DescribeInstancePatchStates"),
        ("assumed-role", "ec2:DescribeInstances"),
    } <= actions
    assert violations(calls) == []


@pytest.mark.parametrize(
    ("template", "action", "principal"),
    [
        (MEMBER_TEMPLATE, "ssm:DescribeInstancePatchStates", r"arn:aws:iam::\d{12}:role/PatchComplianceScanRole"),
        (MEMBER_TEMPLATE, "ec2:DescribeInstances", r"arn:aws:iam::\d{12}:role/PatchComplianceScanRole"),
        (HUB_TEMPLATE, "organizations:ListRoots", r"arn:aws:iam::123456789012:root"),
        (HUB_TEMPLATE, "kms:Decrypt", r"arn:aws:iam::123456789012:root"),
    ],
)
def test_dropping_one_action_fails_naming_it(recording, tmp_path, template, action, principal) -> None:
    copy = _drop_action(tmp_path, template, action)
    templates = Templates(**{"hub" if template == HUB_TEMPLATE else "member": copy})
    found = violations(recording["product"], templates)
    assert found and {v.call.action for v in found} == {action}
    message = str(found[0])
    assert action in message and re.search(principal, message) and str(copy) in message


def test_narrowing_a_resource_fails(recording, tmp_path) -> None:
    wrong_document = _copy(tmp_path, MEMBER_TEMPLATE, "document/AWS-RunPatchBaseline", "document/AWS-RunShellScript")
    found = violations(recording["product"], Templates(member=wrong_document))
    assert [v.call.resource for v in found] == ["arn:aws:ssm:us-east-1::document/AWS-RunPatchBaseline"]

    other_role = _copy(tmp_path, HUB_TEMPLATE, "role/${MemberRoleName}", "role/SomeOtherRole")
    found = violations(recording["product"], Templates(hub=other_role))
    assert found and all(v.call.action == "sts:AssumeRole" for v in found)
    assert "PatchComplianceScanRole" in found[0].call.resource


def test_the_bucket_policy_refuses_an_upload_naming_the_key_by_id(recording) -> None:
    put = next(c for c in recording["product"] if c.action == "s3:PutObject")
    key_id = recording["key_arn"].rsplit("/", 1)[1]
    by_id = dataclasses.replace(
        put,
        context=tuple(
            (k, key_id if k == "s3:x-amz-server-side-encryption-aws-kms-key-id" else v) for k, v in put.context
        ),
    )
    assert violations([put]) == []
    [found] = violations([by_id])
    assert "DenyUploadsWithAnotherKmsKey" in str(found)
    unencrypted = dataclasses.replace(put, context=(("aws:SecureTransport", "false"),))
    [found] = violations([unencrypted])
    assert "DenyUploadsWithoutTheEncryptionHeader" in str(found)


def test_a_grant_nothing_calls_is_reported(recording, tmp_path) -> None:
    line = re.search(r"^( *)- ssm:ListComplianceItems\n", MEMBER_TEMPLATE.read_text(), re.M)
    wider = _copy(
        tmp_path, MEMBER_TEMPLATE, line.group(0), f"{line.group(0)}{line.group(1)}- ssm:DescribePatchBaselines\n"
    )
    assert not any("ssm:DescribePatchBaselines" in m for m in unused_grants(recording["product"]))
    messages = unused_grants(recording["product"], Templates(member=wider))
    assert any("grants ssm:DescribePatchBaselines" in m and str(wider) in m for m in messages)


def test_an_operation_the_emulator_cannot_map_fails_closed(recording) -> None:
    found = [v for v in violations(recording["with_unmapped"]) if v.call.operation == "s3.GetBucketAcl"]
    assert found and found[0].template == "sandbox/authz.py" and not found[0].call.mapped


def test_the_check_after_each_module_fails_on_a_record_it_has_not_seen(recording, tmp_path) -> None:
    """What tests/deploy/recording.py runs after every test: new records only, failing with the reasons."""
    (tmp_path / "principals-1.json").write_text(json.dumps({"principals": recording["report"]}))
    seen: set[Path] = set()
    with pytest.raises(AssertionError, match=r"tests/x.py: arn:aws:iam::123456789012:root .*s3.GetBucketAcl"):
        check_new_records(tmp_path, "tests/x.py", seen)
    check_new_records(tmp_path, "tests/x.py", seen)  # already reported: not again


def test_a_role_that_is_neither_hub_nor_member_is_reported(recording) -> None:
    call = next(c for c in recording["product"] if c.kind == "assumed-role")
    [found] = violations([dataclasses.replace(call, role_name="SomeoneElse", principal="arn:aws:iam::1:role/X")])
    assert "neither the member role" in str(found)


@pytest.mark.parametrize(
    ("condition", "context", "holds"),
    [
        ({"Null": {"k": "true"}}, {}, True),
        ({"Null": {"k": "true"}}, {"k": "v"}, False),
        ({"StringEquals": {"k": "v"}}, {}, False),  # a missing key fails a positive operator
        ({"StringNotEquals": {"k": "v"}}, {}, True),  # ... and satisfies a negated one
        ({"StringNotEquals": {"k": "v"}}, {"k": "v"}, False),
        (
            {"StringLike": {"kms:ViaService": "s3.*.amazonaws.com"}},
            {"kms:ViaService": "s3.eu-west-1.amazonaws.com"},
            True,
        ),
        (
            {"StringLike": {"kms:ViaService": "s3.*.amazonaws.com"}},
            {"kms:ViaService": "ec2.us-east-1.amazonaws.com"},
            False,
        ),
        ({"ArnNotEquals": {"k": "arn:aws:kms:r:1:key/a"}}, {"k": "arn:aws:kms:r:1:key/a"}, False),
        ({"Bool": {"aws:SecureTransport": "false"}}, {"aws:SecureTransport": "true"}, False),
        ({"StringEqualsIfExists": {"k": "v"}}, {}, True),
    ],
)
def test_condition_semantics(condition, context, holds) -> None:
    assert condition_holds(condition, context) is holds


def test_an_unknown_condition_operator_is_an_error_not_a_pass() -> None:
    with pytest.raises(ValueError, match="NumericLessThan"):
        condition_holds({"NumericLessThan": {"k": "1"}}, {"k": "0"})
