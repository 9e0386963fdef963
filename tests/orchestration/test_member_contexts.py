"""Member-account contexts at constant cost (issue 11), against the emulated organization: AssumeRole in parallel
across accounts and once per account, contexts released and bounded, one model loader for every account."""

from __future__ import annotations

import gc
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor

import pytest

from include.patch_compliance.aws import TargetUnreachable
from include.patch_compliance.aws.clients import member_session
from include.patch_compliance.aws.members import MemberContexts
from include.patch_compliance.config import AccessConfig


@pytest.fixture
def accounts(sandbox):
    fleet = sandbox.fleet
    mgmt = fleet["management_account_id"]
    members = [a["id"] for a in fleet["accounts"] if a["state"] == "ACTIVE" and a["has_role"] and a["id"] != mgmt]
    roleless = [a["id"] for a in fleet["accounts"] if a["state"] == "ACTIVE" and not a["has_role"]]
    return members, roleless


def _contexts(sandbox, **kwargs) -> MemberContexts:
    from tests.orchestration.conftest import make_run

    hub = make_run("members").hub
    return MemberContexts(hub, AccessConfig(member_role_name=sandbox.fleet["member_role_name"]), "t", **kwargs)


def test_assume_role_runs_in_parallel_across_accounts(sandbox, accounts):
    """No lock is held across AssumeRole: three accounts' calls are in flight at once, or the barrier breaks."""
    members, _ = accounts
    contexts = _contexts(sandbox)
    barrier = threading.Barrier(3, timeout=20)
    in_flight = contexts._hub.client("sts")  # noqa: SLF001 - the hub's STS client, shared by every AssumeRole

    def hold(**_: object) -> None:  # returns None: botocore then sends the request
        barrier.wait()

    in_flight.meta.events.register("before-call.sts.AssumeRole", hold)
    try:
        with ThreadPoolExecutor(max_workers=3) as pool:
            found = list(pool.map(contexts.get, members[:3]))
    finally:
        in_flight.meta.events.unregister("before-call.sts.AssumeRole")
    assert [c.account_id for c in found] == members[:3]


def test_one_assume_role_per_account_shared_by_threads_and_kept_after_release(sandbox, accounts):
    members, _ = accounts
    contexts = _contexts(sandbox)
    sandbox.reset_calls()
    with ThreadPoolExecutor(max_workers=8) as pool:  # 8 threads want the same two accounts at once
        found = list(pool.map(contexts.get, [members[0], members[1]] * 4))
    assert sandbox.calls().get("sts.AssumeRole") == 2
    assert len({id(c) for c in found}) == 2  # one context per account, shared by its threads
    contexts.release(members[0])
    again = contexts.get(members[0])
    assert again is not found[0] and again.account_id == members[0]
    assert sandbox.calls().get("sts.AssumeRole") == 2  # the credentials were kept: no second AssumeRole


def test_released_contexts_and_their_clients_are_gone(sandbox, accounts):
    members, _ = accounts
    contexts = _contexts(sandbox)
    refs = []
    for account_id in members:
        context = contexts.get(account_id)
        refs.append((weakref.ref(context), weakref.ref(context.client("ssm", "eu-west-1"))))
        contexts.release(account_id)
        del context
    gc.collect()
    assert contexts.live == 0
    assert [r for pair in refs for r in pair if r() is not None] == []


def test_live_contexts_are_bounded_when_callers_never_release(sandbox, accounts):
    members, _ = accounts
    assert len(members) >= 3
    contexts = _contexts(sandbox, max_live=1)
    refs = [weakref.ref(contexts.get(a)) for a in members[:3]]
    gc.collect()
    assert contexts.live == 1
    assert [r() is None for r in refs] == [True, True, False]  # least recently used dropped first
    with pytest.raises(ValueError, match="max_live"):
        _contexts(sandbox, max_live=0)


def test_an_unassumable_account_is_remembered(sandbox, accounts):
    _, roleless = accounts
    contexts = _contexts(sandbox)
    sandbox.reset_calls()
    for _ in range(3):
        with pytest.raises(TargetUnreachable) as raised:
            contexts.get(roleless[0])
        assert raised.value.stage == "assume_role" and raised.value.code == "AccessDenied"
    assert sandbox.calls().get("sts.AssumeRole") == 1
    assert contexts.live == 0


def test_member_clients_come_from_one_session_each_signed_as_its_account(sandbox, accounts):
    """One botocore session (one model loader) for every member account (docs/aws-behaviours.md §26); each
    client signs with its own account's assumed-role credentials, which refresh themselves."""
    members, _ = accounts
    contexts = _contexts(sandbox)
    found = [contexts.get(a) for a in members]
    assert len({id(c.session) for c in found}) == 1 and found[0].session is member_session()
    signed = []
    for context in found:
        ssm = context.client("ssm", "us-east-1")
        credentials = ssm._request_signer._credentials  # noqa: SLF001 - what the client signs with
        assert credentials is context.credentials and credentials.method == "sts-assume-role"
        signed.append(credentials.get_frozen_credentials().access_key)
    assert len(set(signed)) == len(members)
    # and the calls really run as each account (the emulator maps assumed keys to their account)
    for account_id, context in zip(members, found, strict=True):
        assert context.client("sts").get_caller_identity()["Account"] == account_id
