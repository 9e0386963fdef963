"""STS AssumeRole gate: moto lets anyone assume any role ARN, AWS does not (docs/aws-behaviours.md §12, §19)."""

from __future__ import annotations

import re

from sandbox.awsproto import AwsError
from sandbox.faults import Faults
from sandbox.fleet import Fleet

ROLE_ARN_RE = re.compile(r"^arn:aws[\w-]*:iam::(\d{12}):role/(?:[\w+=,.@/-]*/)?([\w+=,.@-]+)$")


def _role_exists_in_moto(account_id: str, role_name: str) -> bool:
    from moto.iam.models import iam_backends

    try:
        iam = iam_backends[account_id]["global"]
        return any(r.name == role_name for r in iam.roles.values())
    except Exception:  # no IAM backend for that account yet
        return False


def check_assume_role(fleet: Fleet, faults: Faults, role_arn: str | None, caller_account: str) -> None:
    """Raise AccessDenied (HTTP 403) when AWS would refuse the AssumeRole; return to let moto issue credentials."""
    match = ROLE_ARN_RE.match(role_arn or "")
    if not match:
        return  # malformed ARNs: moto answers with its own validation error
    account_id, role_name = match.groups()
    account = fleet.account(account_id)
    # The member role trusts the management account (the orchestrator), not other members.
    trusted_caller = caller_account in (fleet.management_account_id, account_id)
    allowed = (
        account is not None
        and account.state == "ACTIVE"
        and account.has_role
        and trusted_caller
        and account_id not in faults.accounts_without_role
        and role_name == fleet.member_role_name
    )
    if not allowed and not _role_exists_in_moto(account_id, role_name):
        raise AwsError(
            "AccessDenied",
            f"User: arn:aws:iam::{caller_account}:user/sandbox is not authorized to "
            f"perform: sts:AssumeRole on resource: {role_arn}",
            status=403,
        )
