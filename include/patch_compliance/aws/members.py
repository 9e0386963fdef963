"""Member-account contexts: one AssumeRole per account per task, shared by its regions, failures remembered."""

from __future__ import annotations

import threading

from include.patch_compliance.aws.clients import AwsContext, TargetUnreachable
from include.patch_compliance.config import AccessConfig


class MemberContexts:
    """``get(account_id)`` returns a context in that account or raises the (cached) TargetUnreachable."""

    def __init__(self, hub: AwsContext, access: AccessConfig, session_name: str) -> None:
        self._hub = hub
        self._access = access
        self._session_name = session_name
        self._cache: dict[str, AwsContext | TargetUnreachable] = {}
        self._lock = threading.Lock()

    def get(self, account_id: str) -> AwsContext:
        with self._lock:
            if account_id not in self._cache:
                try:
                    self._cache[account_id] = self._hub.assume(
                        account_id,
                        self._access.member_role_name,
                        session_name=self._session_name,
                        external_id=self._access.external_id,
                        duration_seconds=self._access.session_duration_seconds,
                    )
                except TargetUnreachable as exc:
                    self._cache[account_id] = exc
            found = self._cache[account_id]
        if isinstance(found, TargetUnreachable):
            raise found
        return found
