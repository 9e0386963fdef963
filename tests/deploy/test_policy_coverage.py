"""Check (b), run last (tests/deploy/recording.py moves it there): every action deploy/iam grants was needed by a
call of the end-to-end suite, so no permission is there "just in case". Needs the whole suite in one process
(`make test`); a partial run skips it and says why."""

from __future__ import annotations

from collections import defaultdict

import pytest

from tests.deploy.iam_check import Templates, calls_from_report, unused_grants
from tests.deploy.recording import recorded, session_is_complete


def test_every_granted_action_is_called_by_the_end_to_end_suite() -> None:
    complete, why = session_is_complete()
    if not complete:
        pytest.skip(f"check (b) needs the whole suite in one run (make test): {why}")
    modules = recorded()
    calls = [c for module, principals in modules.items() for c in calls_from_report(principals, module)]
    assert calls, "no emulator recorded a call: is tests/deploy/recording.py registered in tests/conftest.py?"
    member_role = Templates().member_role_name
    by_principal: dict[str, set[str]] = defaultdict(set)
    for c in calls:
        if c.kind in ("account", "assumed-role"):
            by_principal["member" if c.role_name == member_role else "hub"].add(c.action)
    for who, actions in sorted(by_principal.items()):
        print(f"{who}: {len(actions)} actions from {len(modules)} modules: {', '.join(sorted(actions))}")
    unused = unused_grants(calls)
    assert not unused, "\n".join(unused)
