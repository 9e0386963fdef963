"""Member-account contexts of one task: one AssumeRole per account, in parallel across accounts, shared by the
account's regions and threads; failures remembered; a context released when the account's work is done."""

from __future__ import annotations

import threading
from collections import OrderedDict
from concurrent.futures import Future
from typing import cast

from botocore.credentials import RefreshableCredentials

from include.patch_compliance.aws.clients import AwsContext, TargetUnreachable
from include.patch_compliance.config import AccessConfig

# Contexts kept at most (least recently used dropped first): callers that never release still do not grow with
# the accounts they touch. Credentials stay (a few kB each), so a dropped account needs no second AssumeRole.
MAX_LIVE_CONTEXTS = 64


class MemberContexts:
    """``get(account_id)`` returns a context in that account or raises the (remembered) TargetUnreachable;
    ``release(account_id)`` drops its clients once the caller is done with the account.

    The lock guards the dictionaries only and is never held across an AWS call: threads assuming different
    accounts run in parallel, threads wanting the same account wait for its one AssumeRole.
    """

    def __init__(
        self, hub: AwsContext, access: AccessConfig, session_name: str, *, max_live: int = MAX_LIVE_CONTEXTS
    ) -> None:
        if max_live < 1:
            raise ValueError(f"max_live must be >= 1, got {max_live}")
        self._hub = hub
        self._access = access
        self._session_name = session_name
        self._max_live = max_live
        self._lock = threading.Lock()
        self._credentials: dict[str, RefreshableCredentials | TargetUnreachable] = {}
        self._pending: dict[str, Future] = {}
        self._live: OrderedDict[str, AwsContext] = OrderedDict()

    @property
    def live(self) -> int:
        """How many account contexts (sessions and their clients) are held now."""
        with self._lock:
            return len(self._live)

    def get(self, account_id: str) -> AwsContext:
        with self._lock:
            context = self._live.get(account_id)
            if context is not None:
                self._live.move_to_end(account_id)
                return context
            credentials = self._credentials.get(account_id)
            pending = owner = None
            if credentials is None:
                pending = self._pending.get(account_id)
                if pending is None:
                    pending = owner = self._pending[account_id] = Future()
        if credentials is None:
            credentials = self._assume(account_id, owner) if owner else cast(Future, pending).result()
        if isinstance(credentials, TargetUnreachable):
            raise credentials
        context = self._hub.for_account(account_id, credentials)  # no AWS call: a session and settings
        with self._lock:
            context = self._live.setdefault(account_id, context)
            self._live.move_to_end(account_id)
            while len(self._live) > self._max_live:
                self._live.popitem(last=False)
        return context

    def release(self, account_id: str) -> None:
        """Drop the account's context and clients (a later ``get`` builds new ones without a new AssumeRole)."""
        with self._lock:
            self._live.pop(account_id, None)

    def _assume(self, account_id: str, pending: Future) -> RefreshableCredentials | TargetUnreachable:
        """The one AssumeRole of this account, outside the lock; waiting threads get its outcome."""
        try:
            found: RefreshableCredentials | TargetUnreachable = self._hub.assume_credentials(
                account_id,
                self._access.member_role_name,
                session_name=self._session_name,
                external_id=self._access.external_id,
                duration_seconds=self._access.session_duration_seconds,
            )
        except TargetUnreachable as exc:
            found = exc
        except BaseException as exc:  # anything else: not remembered, the next get tries again
            with self._lock:
                del self._pending[account_id]
            pending.set_exception(exc)
            raise
        with self._lock:
            self._credentials[account_id] = found
            del self._pending[account_id]
        pending.set_result(found)
        return found
