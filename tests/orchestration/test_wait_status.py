"""The wait logic on exact API responses (botocore Stubber): all pages, every terminal status, eventual
consistency right after SendCommand."""

from __future__ import annotations

from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber

from include.patch_compliance.wait.status import command_state, invocation_records, shard_progress

TARGET = {
    "ou_id": "ou-ab12-11111111",
    "ou_path": "Root/Prod",
    "account_id": "111111111111",
    "account_name": "prod",
    "region": "eu-west-1",
    "wave": "all",
}
CMD = "11111111-2222-3333-4444-555555555555"
NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
# Every terminal (Status, StatusDetails) pair an invocation can end in (docs/aws-behaviours.md §3).
TERMINAL = [
    ("Success", "Success"),
    ("Failed", "Failed"),
    ("Failed", "Undeliverable"),
    ("TimedOut", "Delivery Timed Out"),
    ("TimedOut", "Execution Timed Out"),
    ("Failed", "Invalid Platform"),
    ("Cancelled", "Terminated"),
    ("Cancelled", "Cancelled"),
    ("Failed", "Access Denied"),
]


def _command(status="Success", details="Incomplete"):
    return {
        "CommandId": CMD,
        "Status": status,
        "StatusDetails": details,
        "RequestedDateTime": NOW,
        "TargetCount": 60,
        "CompletedCount": 60,
    }


def _invocation(i, status, details):
    return {
        "CommandId": CMD,
        "InstanceId": f"i-{i:017x}",
        "Status": status,
        "StatusDetails": details,
        "RequestedDateTime": NOW,
        "CommandPlugins": [
            {
                "Name": "PatchLinux",
                "Status": status,
                "StatusDetails": details,
                "ResponseCode": 0 if status == "Success" else 1,
                "ResponseStartDateTime": NOW,
                "ResponseFinishDateTime": NOW,
            }
        ],
    }


class FakeContext:
    def __init__(self, client):
        self._client = client

    def client(self, service, region=None):
        return self._client


def test_all_pages_beyond_50_and_every_terminal_status_are_recorded():
    ssm = boto3.client("ssm", region_name="eu-west-1")
    invocations = [_invocation(i, *TERMINAL[i % len(TERMINAL)]) for i in range(60)]
    with Stubber(ssm) as stub:
        stub.add_response("list_commands", {"Commands": [_command()]}, {"CommandId": CMD})
        stub.add_response(
            "list_command_invocations",
            {"CommandInvocations": invocations[:50], "NextToken": "n1"},
            {"CommandId": CMD, "Details": True},
        )
        stub.add_response(
            "list_command_invocations",
            {"CommandInvocations": invocations[50:]},
            {"CommandId": CMD, "Details": True, "NextToken": "n1"},
        )
        records = invocation_records(ssm, TARGET, CMD, wait_error=None)
    assert len(records) == 60
    assert {(r["status"], r["status_details"]) for r in records} == set(TERMINAL)
    assert all(r["error"] is None and r["plugin"] == "PatchLinux" for r in records)
    assert records[1]["response_code"] == 1 and records[0]["response_code"] == 0
    assert records[0]["command_status_details"] == "Incomplete"


def test_no_invocations_yet_and_unknown_command_keep_waiting():
    """Right after SendCommand the command or its invocations may not be listed yet (docs/aws-behaviours.md §5)."""
    ssm = boto3.client("ssm", region_name="eu-west-1")
    scan = [{"target": TARGET, "commands": [{"command_id": CMD}]}]
    with Stubber(ssm) as stub:
        stub.add_client_error("list_commands", "InvalidCommandId", expected_params={"CommandId": CMD})
        stub.add_response("list_commands", {"Commands": []}, {"CommandId": CMD})
        stub.add_response("list_commands", {"Commands": [_command("InProgress", "In Progress")]}, {"CommandId": CMD})
        stub.add_response("list_commands", {"Commands": [_command("Cancelling", "Cancelling")]}, {"CommandId": CMD})
        stub.add_response("list_commands", {"Commands": [_command("Failed", "Failed")]}, {"CommandId": CMD})
        ctx = FakeContext(ssm)
        results = [shard_progress(lambda _acct: ctx, scan).done for _ in range(5)]
    assert results == [False, False, False, False, True]


def test_unfinished_invocations_at_the_deadline_carry_the_wait_error():
    ssm = boto3.client("ssm", region_name="eu-west-1")
    with Stubber(ssm) as stub:
        stub.add_response("list_commands", {"Commands": [_command("InProgress", "In Progress")]}, {"CommandId": CMD})
        stub.add_response(
            "list_command_invocations",
            {"CommandInvocations": [_invocation(1, "InProgress", "In Progress"), _invocation(2, "Success", "Success")]},
            {"CommandId": CMD, "Details": True},
        )
        records = invocation_records(ssm, TARGET, CMD, wait_error="timed out")
    assert [r["error"] for r in records] == ["timed out", None]


def test_a_targets_command_that_matched_nothing_gives_one_record():
    ssm = boto3.client("ssm", region_name="eu-west-1")
    with Stubber(ssm) as stub:
        stub.add_response(
            "list_commands", {"Commands": [_command("Success", "No Instances In Tag")]}, {"CommandId": CMD}
        )
        stub.add_response("list_command_invocations", {"CommandInvocations": []}, {"CommandId": CMD, "Details": True})
        records = invocation_records(ssm, TARGET, CMD, wait_error=None)
    assert len(records) == 1 and records[0]["instance_id"] is None
    assert records[0]["command_status_details"] == "No Instances In Tag"


def test_command_state_raises_other_errors():
    ssm = boto3.client("ssm", region_name="eu-west-1")
    with Stubber(ssm) as stub:
        stub.add_client_error("list_commands", "AccessDeniedException")
        with pytest.raises(Exception, match="AccessDenied"):
            command_state(ssm, CMD)
