"""Per-principal call recording: who called what, and what AWS would have authorized (sandbox/authz.py).

A principal is the identity behind a request's access key, resolved the way AWS does it: keys issued by
AssumeRole belong to that role (recorded by role ARN, whatever the session name), other keys are the account's
own credentials (the emulator's dummy credentials stand for the management account). Keys used by test setup
(``SETUP_ACCESS_KEY``, what ``RunningSandbox.client()`` signs with, and any role session that setup assumed) are
recorded as kind ``setup``, so checks of the product's permissions can leave them out.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from sandbox.authz import Authorization

SETUP_ACCESS_KEY = "sandbox-setup"
_ACCESS_KEY_IN_XML = re.compile(rb"<AccessKeyId>([^<]+)</AccessKeyId>")


@dataclass(frozen=True)
class Principal:
    arn: str
    kind: str  # "account" | "assumed-role" | "setup" | "anonymous"
    account_id: str
    role_name: str | None = None


class _Record:
    def __init__(self, principal: Principal) -> None:
        self.principal = principal
        self.calls: Counter[str] = Counter()
        self.authorizations: Counter[Authorization] = Counter()


def _role_arn_of_key(access_key: str) -> str | None:
    """The role an access key was issued for by AssumeRole, from moto's IAM key store."""
    from moto.iam.models import iam_backends
    from moto.utilities.utils import PARTITION_NAMES

    for _, account in list(iam_backends.items()):
        for partition in PARTITION_NAMES:
            key = account[partition].access_keys.get(access_key)
            if key is not None:
                return key.role_arn
    return None


class PrincipalRecorder:
    def __init__(self, account_for: Callable[[str | None], str]) -> None:
        self._account_for = account_for
        self._cache: dict[str, Principal] = {}
        self._setup_keys: set[str] = {SETUP_ACCESS_KEY}
        self._records: dict[str, _Record] = {}
        self._lock = threading.Lock()

    def principal_for(self, access_key: str | None) -> Principal:
        if not access_key:
            return Principal("anonymous", "anonymous", "")
        with self._lock:
            if access_key in self._setup_keys:
                return Principal("setup", "setup", self._account_for(access_key))
            cached = self._cache.get(access_key)
        if cached is not None:
            return cached
        account = self._account_for(access_key)
        role_arn = _role_arn_of_key(access_key)
        if role_arn:
            name = role_arn.rsplit("/", 1)[-1]
            partition = role_arn.split(":", 2)[1]
            # The role by its name at path "/": what a policy's Principal and the member template name.
            principal = Principal(f"arn:{partition}:iam::{account}:role/{name}", "assumed-role", account, name)
        else:
            principal = Principal(f"arn:aws:iam::{account}:root", "account", account)
        with self._lock:
            self._cache[access_key] = principal
        return principal

    def note_setup_credentials(self, response_body: bytes) -> None:
        """Role sessions that test setup assumed are setup too (their keys come back in the STS response)."""
        keys = {k.decode() for k in _ACCESS_KEY_IN_XML.findall(response_body)}
        with self._lock:
            self._setup_keys |= keys

    def record(self, principal: Principal, operation: str, authorizations: list[Authorization]) -> None:
        with self._lock:
            record = self._records.get(principal.arn)
            if record is None:
                record = self._records[principal.arn] = _Record(principal)
            record.calls[operation] += 1
            record.authorizations.update(authorizations)

    def report(self) -> dict:
        with self._lock:
            records = sorted(self._records.values(), key=lambda r: (r.principal.kind, r.principal.arn))
            return {
                "principals": [
                    {
                        "principal": r.principal.arn,
                        "kind": r.principal.kind,
                        "account_id": r.principal.account_id,
                        "role_name": r.principal.role_name,
                        "calls": dict(sorted(r.calls.items())),
                        "authorizations": [
                            {**a.as_dict(), "count": n}
                            for a, n in sorted(r.authorizations.items(), key=lambda kv: (kv[0].action, kv[0].resource))
                        ],
                    }
                    for r in records
                ]
            }

    def reset(self) -> None:
        with self._lock:
            self._records.clear()
