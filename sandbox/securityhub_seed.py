"""Security Hub as an organization typically has it: enabled in every reachable account-region, Patch Manager's
own export turned off (the team uses our findings instead), with two deliberate exceptions to rehearse against:
one account-region never enabled, and one where someone left the native export on (docs/aws-behaviours.md §17)."""

from __future__ import annotations

from sandbox.fleet import Fleet


def seed_security_hub(emulator: object, fleet: Fleet) -> dict[str, list[dict[str, str]]]:
    members = sorted((a for a in fleet.accounts if a.state == "ACTIVE" and a.has_role), key=lambda a: a.name)
    pairs = [(a.id, r) for a in members for r in fleet.regions]
    disabled = pairs[-1:] if len(pairs) > 2 else []
    native = pairs[1:2] if len(pairs) > 2 else []
    for account_id, region in pairs:
        if (account_id, region) in disabled:
            continue
        emulator.enable(account_id, region)
        emulator.set_native_export(account_id, region, (account_id, region) in native)
    return {
        "disabled": [{"account_id": a, "region": r} for a, r in disabled],
        "native_export": [{"account_id": a, "region": r} for a, r in native],
    }
