"""The wait logic on exact API responses (botocore Stubber): all pages, every terminal status, eventual
consistency right after SendCommand."""

from __future__ import annotations

from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber

from include.patch_compliance.wait.status import (
    LISTING_MARGIN,
    command_state,
    invocation_records,
    outcome_records,
    shard_progress,
)

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


CMD2 = "22222222-3333-4444-5555-666666666666"
OTHER = "99999999-8888-7777-6666-555555555555"  # someone else's command in the same account-region
SENT = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)


def _listing_params(**extra):
    window = (SENT - LISTING_MARGIN).strftime("%Y-%m-%dT%H:%M:%SZ")
    params = {
        "Filters": [{"key": "InvokedAfter", "value": window}, {"key": "DocumentName", "value": "AWS-RunPatchBaseline"}],
        "MaxResults": 50,
    }
    return {**params, **extra}


def _listed(command_id, status="InProgress", details="In Progress"):
    return {**_command(status, details), "CommandId": command_id}


def _scan(*command_ids):
    return [{"target": TARGET, "sent_at": SENT.isoformat(), "commands": [{"command_id": c} for c in command_ids]}]


def test_one_listing_gives_every_command_of_an_account_region_aws_behaviours_4():
    """Two commands of the run in one account-region: one ListCommands on the run's window and document."""
    ssm = boto3.client("ssm", region_name="eu-west-1")
    with Stubber(ssm) as stub:
        page = [_listed(OTHER, "Success", "Success"), _listed(CMD2), _listed(CMD, "Success", "Success")]
        stub.add_response("list_commands", {"Commands": page}, _listing_params())
        progress = shard_progress(lambda _a: FakeContext(ssm), _scan(CMD, CMD2), document_name="AWS-RunPatchBaseline")
        stub.assert_no_pending_responses()
    assert (progress.commands, progress.finished, progress.polled) == (2, 1, 1)
    assert set(progress.states) == {CMD, CMD2}  # the other command is not ours
    assert progress.states[CMD]["RequestedDateTime"] == NOW.isoformat()  # JSON-ready for the trigger event


def test_commands_known_terminal_are_never_asked_for_again():
    ssm = boto3.client("ssm", region_name="eu-west-1")
    known = {CMD: {"Status": "Success", "StatusDetails": "Success", "RequestedDateTime": NOW.isoformat()}}
    with Stubber(ssm) as stub:  # no response queued: any call fails the test
        done = shard_progress(lambda _a: FakeContext(ssm), _scan(CMD), known=known)
    assert done.done and done.polled == 0
    with Stubber(ssm) as stub:
        stub.add_response("list_commands", {"Commands": [_listed(CMD2, "Failed", "Failed")]}, _listing_params())
        progress = shard_progress(
            lambda _a: FakeContext(ssm), _scan(CMD, CMD2), document_name="AWS-RunPatchBaseline", known=known
        )
        stub.assert_no_pending_responses()
    assert progress.done and progress.polled == 1


def test_paging_stops_once_every_command_was_seen():
    ssm = boto3.client("ssm", region_name="eu-west-1")
    with Stubber(ssm) as stub:
        stub.add_response("list_commands", {"Commands": [_listed(OTHER)], "NextToken": "t1"}, _listing_params())
        stub.add_response(
            "list_commands", {"Commands": [_listed(CMD)], "NextToken": "t2"}, _listing_params(NextToken="t1")
        )
        progress = shard_progress(lambda _a: FakeContext(ssm), _scan(CMD), document_name="AWS-RunPatchBaseline")
        stub.assert_no_pending_responses()  # the page after t2 was never asked for
    assert progress.states[CMD]["Status"] == "InProgress" and not progress.done


def test_a_command_missing_from_the_listing_is_asked_for_by_id_aws_behaviours_5():
    """Not listed yet right after SendCommand (or sent before the window): asked by id, kept waiting."""
    ssm = boto3.client("ssm", region_name="eu-west-1")
    with Stubber(ssm) as stub:
        stub.add_response("list_commands", {"Commands": []}, _listing_params())
        stub.add_client_error("list_commands", "InvalidCommandId", expected_params={"CommandId": CMD})
        progress = shard_progress(lambda _a: FakeContext(ssm), _scan(CMD), document_name="AWS-RunPatchBaseline")
        stub.assert_no_pending_responses()
    assert not progress.done and progress.states == {}


def test_outcomes_use_the_states_of_the_wait_and_read_only_invocations():
    ssm = boto3.client("ssm", region_name="eu-west-1")
    states = {CMD: {"Status": "Success", "StatusDetails": "Incomplete", "RequestedDateTime": NOW.isoformat()}}
    with Stubber(ssm) as stub:
        stub.add_response(
            "list_command_invocations",
            {"CommandInvocations": [_invocation(1, "Success", "Success")]},
            {"CommandId": CMD, "Details": True},
        )
        records = outcome_records(lambda _a: FakeContext(ssm), _scan(CMD), states=states)
        stub.assert_no_pending_responses()  # no ListCommands
    assert [(r["command_status_details"], r["status"]) for r in records] == [("Incomplete", "Success")]


def test_response_code_and_times_come_from_the_step_that_ran_aws_behaviours_27():
    """On Linux AWS-RunPatchBaseline reports the skipped PatchWindows step first (code 0, start = end)."""
    ssm = boto3.client("ssm", region_name="eu-west-1")
    skipped_at = datetime(2026, 11, 29, 3, 0, 5, tzinfo=UTC)
    started, finished = datetime(2026, 11, 29, 3, 0, 6, tzinfo=UTC), datetime(2026, 11, 29, 3, 4, 0, tzinfo=UTC)
    invocation = _invocation(1, "Failed", "Failed")
    invocation["CommandPlugins"] = [
        {
            "Name": "PatchWindows",
            "Status": "Success",
            "StatusDetails": "Success",
            "ResponseCode": 0,
            "ResponseStartDateTime": skipped_at,
            "ResponseFinishDateTime": skipped_at,
            "Output": 'Step execution skipped due to unsatisfied preconditions: \'"StringEquals": [platformType, '
            "Windows]'. Step name: PatchWindows",
        },
        {
            "Name": "PatchLinux",
            "Status": "Failed",
            "StatusDetails": "Failed",
            "ResponseCode": 1,
            "ResponseStartDateTime": started,
            "ResponseFinishDateTime": finished,
            "Output": "failed to run commands: exit status 1",
        },
    ]
    with Stubber(ssm) as stub:
        stub.add_response(
            "list_command_invocations", {"CommandInvocations": [invocation]}, {"CommandId": CMD, "Details": True}
        )
        [record] = invocation_records(ssm, TARGET, CMD, None, state=_command("Failed", "Failed"))
    assert (record["plugin"], record["response_code"]) == ("PatchLinux", 1)
    assert (record["started_at"], record["finished_at"]) == (started.isoformat(), finished.isoformat())
