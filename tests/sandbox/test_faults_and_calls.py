"""Fault injection (deterministic), the call counter, Security Hub routing and the status rules of
docs/aws-behaviours.md §3."""

from __future__ import annotations

import json

import botocore.exceptions
import pytest

from sandbox.faults import FaultConfigError, Faults, RateCounter, load_faults
from sandbox.ssm_commands import DOCUMENTS, Command, Invocation, command_status, schedule
from tests.sandbox.conftest import active_members, client


def _code(call, **kwargs) -> tuple[str, int]:
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        call(**kwargs)
    return exc.value.response["Error"]["Code"], exc.value.response["ResponseMetadata"]["HTTPStatusCode"]


def test_rate_counter_is_deterministic_and_spread():
    counter = RateCounter()
    fired = [counter.fires("k", 0.25) for _ in range(8)]
    assert fired == [False, False, False, True, False, False, False, True]
    assert [RateCounter().fires("k", 1.0) for _ in range(3)] == [True, True, True]
    assert not any(RateCounter().fires("k", 0.0) for _ in range(10))


def test_fault_config_errors_name_the_field(tmp_path):
    with pytest.raises(FaultConfigError, match="throttle.ssm.SendCommand"):
        Faults.from_dict({"throttle": {"ssm.SendCommand": 2}})
    with pytest.raises(FaultConfigError, match="unknown faults key"):
        Faults.from_dict({"throtle": {}})
    with pytest.raises(FaultConfigError, match="accounts_without_role"):
        Faults.from_dict({"accounts_without_role": ["123"]})
    with pytest.raises(FaultConfigError, match="slow_commands"):
        Faults.from_dict({"slow_commands": 0.5})
    path = tmp_path / "faults.yaml"
    path.write_text("throttle:\n  ssm.*: 0.5\nrefuse_regions: [ap-south-1]\n")
    loaded = load_faults(str(path))
    assert loaded.throttle_rate("ssm", "SendCommand") == 0.5 and "ap-south-1" in loaded.refuse_regions
    assert load_faults(json.dumps({"invocation_failure_rate": 0.1})).invocation_failure_rate == 0.1
    with pytest.raises(FaultConfigError, match="does not exist"):
        load_faults(str(tmp_path / "missing.yaml"))


def test_ssm_throttling_every_other_call(sandbox):
    sandbox.set_faults({"throttle": {"ssm.DescribeInstanceInformation": 0.5}})
    try:
        ssm = client(sandbox, "ssm")
        results = []
        for _ in range(4):
            try:
                ssm.describe_instance_information()
                results.append("ok")
            except botocore.exceptions.ClientError as exc:
                results.append(exc.response["Error"]["Code"])
        assert results == ["ok", "ThrottlingException", "ok", "ThrottlingException"]
        # Standard retry mode rides through it (docs/aws-behaviours.md §18).
        retrying = client(sandbox, "ssm", config=botocore.config.Config(retries={"mode": "standard"}))
        assert retrying.describe_instance_information()["InstanceInformationList"]
    finally:
        sandbox.set_faults({})


def test_organizations_and_securityhub_throttle_codes(sandbox):
    sandbox.set_faults({"throttle": {"organizations.*": 1.0, "securityhub.*": 1.0}})
    try:
        assert _code(client(sandbox, "organizations").list_roots) == ("TooManyRequestsException", 400)
        assert _code(client(sandbox, "securityhub").get_findings) == ("LimitExceededException", 429)
    finally:
        sandbox.set_faults({})


def test_refused_region_answers_like_an_opted_out_region(sandbox):
    sandbox.set_faults({"refuse_regions": ["eu-west-1"]})
    try:
        assert _code(client(sandbox, "ssm", "eu-west-1").describe_instance_information)[0] == (
            "UnrecognizedClientException"
        )
        assert _code(client(sandbox, "ec2", "eu-west-1").describe_instances) == ("AuthFailure", 401)
        assert client(sandbox, "ssm", "us-east-1").describe_instance_information()["InstanceInformationList"]
    finally:
        sandbox.set_faults({})


def test_accounts_without_role_fault(sandbox):
    member = active_members(sandbox)[0]
    sandbox.set_faults({"accounts_without_role": [member["id"]]})
    try:
        code, status = _code(
            client(sandbox, "sts").assume_role,
            RoleArn=f"arn:aws:iam::{member['id']}:role/{sandbox.fleet['member_role_name']}",
            RoleSessionName="tests",
        )
        assert (code, status) == ("AccessDenied", 403)
    finally:
        sandbox.set_faults({})


def test_faults_endpoint_rejects_bad_config(sandbox):
    with pytest.raises(RuntimeError, match="invocation_failure_rate"):
        sandbox.set_faults({"invocation_failure_rate": 5})


def test_call_counter_counts_our_and_moto_actions(sandbox):
    sandbox.reset_calls()
    client(sandbox, "ssm").describe_instance_information()
    s3 = client(sandbox, "s3")
    s3.create_bucket(Bucket="sandbox-calls")
    s3.list_objects_v2(Bucket="sandbox-calls")
    s3.put_object(Bucket="sandbox-calls", Key="a", Body=b"x")  # same method and path as CopyObject
    s3.copy_object(Bucket="sandbox-calls", Key="b", CopySource="sandbox-calls/a")
    s3.delete_object(Bucket="sandbox-calls", Key="b")  # same method and path as AbortMultipartUpload
    client(sandbox, "organizations").list_roots()
    client(sandbox, "ec2").describe_instances()
    client(sandbox, "iam").list_roles()
    calls = sandbox.calls()
    assert calls == {
        "ec2.DescribeInstances": 1,
        "iam.ListRoles": 1,
        "organizations.ListRoots": 1,
        "s3.CopyObject": 1,
        "s3.CreateBucket": 1,
        "s3.DeleteObject": 1,
        "s3.ListObjectsV2": 1,
        "s3.PutObject": 1,
        "ssm.DescribeInstanceInformation": 1,
    }
    sandbox.reset_calls()
    assert sandbox.calls() == {}


class _FakeHub:
    """Stands in for sandbox.securityhub to check the routing contract (method, path, query, body, account)."""

    def __init__(self) -> None:
        self.seen: list[tuple] = []

    def handle(self, method, path, query, body, account_id, region):
        self.seen.append((method, path, body, account_id, region))
        return (
            200,
            {"FailedCount": 0, "SuccessCount": len((body or {}).get("Findings", [])), "FailedFindings": []},
            {"x-amzn-RequestId": "fake"},
        )


def test_securityhub_requests_route_with_the_callers_account(sandbox):
    app = sandbox.server.app
    real, fake = app.securityhub, _FakeHub()
    app.securityhub = fake
    try:
        member = active_members(sandbox)[0]
        hub = client(sandbox, "securityhub", "eu-west-1", account_id=member["id"])
        resp = hub.batch_import_findings(
            Findings=[
                {
                    "SchemaVersion": "2018-10-08",
                    "Id": "x",
                    "ProductArn": "p" * 12,
                    "GeneratorId": "g",
                    "AwsAccountId": member["id"],
                    "CreatedAt": "2026-01-01T00:00:00Z",
                    "UpdatedAt": "2026-01-01T00:00:00Z",
                    "Title": "t",
                    "Description": "d",
                    "Resources": [{"Type": "Other", "Id": "r"}],
                }
            ]
        )
        assert resp["SuccessCount"] == 1
        method, path, body, account, region = fake.seen[-1]
        assert (method, path, account, region) == ("POST", "/findings/import", member["id"], "eu-west-1")
        assert body["Findings"][0]["Id"] == "x"
        assert sandbox.calls().get("securityhub.BatchImportFindings", 0) >= 1
    finally:
        app.securityhub = real


def test_securityhub_falls_back_to_moto_without_the_module(sandbox):
    app = sandbox.server.app
    real = app.securityhub
    app.securityhub = None
    try:
        hub = client(sandbox, "securityhub")
        hub.enable_security_hub()
        assert hub.get_findings()["Findings"] == []
    finally:
        app.securityhub = real


# -- status rules (docs/aws-behaviours.md §3), on the model directly so every branch is pinned ----------------------


def _cmd(outcomes: list[str], max_errors: str = "0", max_concurrency: str = "50") -> Command:
    cmd = Command(
        "c" * 36,
        "123456789012",
        "us-east-1",
        DOCUMENTS["AWS-RunPatchBaseline"],
        "$DEFAULT",
        {"Operation": ["Scan"]},
        [],
        [],
        "",
        0.0,
        600,
        max_concurrency,
        max_errors,
    )
    for i, outcome in enumerate(outcomes):
        cmd.invocations.append(
            Invocation(
                f"i-{i:017x}",
                "",
                "Linux",
                "PatchLinux",
                outcome,
                0 if outcome == "Success" else 1 if outcome == "Failed" else -1,
            )
        )
    schedule(cmd, seed=7, slow=1.0)
    return cmd


@pytest.mark.parametrize(
    "outcomes,max_errors,expected",
    [
        (["Success", "Success"], "0", ("Success", "Success")),
        (["Undeliverable"] * 3, "0", ("Failed", "Failed")),
        (["Undeliverable"] * 4 + ["Success"], "0", ("Success", "Success")),
        (["Success", "Failed"], "1", ("Success", "Incomplete")),
        (["Success", "Failed"], "0", ("Failed", "Failed")),
        (["Execution Timed Out", "Success"], "0", ("TimedOut", "Execution Timed Out")),
        (["Delivery Timed Out", "Success"], "0", ("TimedOut", "Delivery Timed Out")),
        (["Delivery Timed Out", "Success"], "1", ("Success", "Incomplete")),
        (["Failed", "Failed", "Success"], "50%", ("Failed", "Failed")),
    ],
)
def test_command_status_rules(outcomes, max_errors, expected):
    cmd = _cmd(outcomes, max_errors)
    final = command_status(cmd, 10**9)
    assert (final["Status"], final["StatusDetails"]) == expected
    assert final["CompletedCount"] == final["TargetCount"] == len(outcomes)
    assert final["ErrorCount"] == sum(o in ("Failed", "Execution Timed Out") for o in outcomes)
    assert final["DeliveryTimedOutCount"] == outcomes.count("Delivery Timed Out")


def test_ramp_dispatches_one_then_two_more_then_four_more():
    cmd = _cmd(["Success"] * 20, max_concurrency="100%")
    starts = sorted({inv.dispatch_at for inv in cmd.invocations})
    waves = [sum(1 for inv in cmd.invocations if inv.dispatch_at == t) for t in starts]
    assert waves[:3] == [1, 2, 4]


def test_max_errors_terminates_undispatched_and_not_running_ones():
    cmd = _cmd(["Failed"] + ["Success"] * 9, max_errors="0", max_concurrency="1")
    details = [inv.state(10**9)[0] for inv in cmd.invocations]
    assert details == ["Failed"] + ["Terminated"] * 9
