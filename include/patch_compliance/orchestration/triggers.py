"""Deferrable wait: the triggerer polls command status without holding a worker slot.

Lives in ``include/`` (not the DAG bundle) so the triggerer can import it (docs/aws-behaviours.md §22). boto3 calls
run in a thread (``asyncio.to_thread``) so the same AWS module serves the worker and the triggerer; no aiobotocore
needed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from include.patch_compliance.aws import context_from_connection
from include.patch_compliance.aws.members import MemberContexts
from include.patch_compliance.config import AccessConfig
from include.patch_compliance.wait.status import Progress, shard_progress


class ShardCommandsTrigger(BaseTrigger):
    """Fires ``{"status": "done"}`` when every command of the shard is terminal, ``{"status": "timeout"}`` at the
    deadline. A trigger may run more than once (docs/aws-behaviours.md §22): it only reads, so that is harmless.

    :param scan_records: ``[{"target": {...}, "commands": [{"command_id": ...}]}]`` of the shard.
    :param access: the config's ``access`` section as a dict (connection id, member role, ExternalId).
    :param session_name: RoleSessionName carrying the run id.
    :param poke_interval: seconds between checks.
    :param deadline: ISO-8601 UTC time after which the wait gives up (recorded, not failed).
    """

    def __init__(
        self,
        *,
        scan_records: list[dict[str, Any]],
        access: dict[str, Any],
        session_name: str,
        poke_interval: float,
        deadline: str,
    ) -> None:
        super().__init__()
        self.scan_records = scan_records
        self.access = access
        self.session_name = session_name
        self.poke_interval = poke_interval
        self.deadline = deadline

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "scan_records": self.scan_records,
                "access": self.access,
                "session_name": self.session_name,
                "poke_interval": self.poke_interval,
                "deadline": self.deadline,
            },
        )

    def _check(self, members: MemberContexts) -> Progress:
        return shard_progress(members.get, self.scan_records)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        access = AccessConfig.model_validate(self.access)
        hub = await asyncio.to_thread(context_from_connection, access.aws_conn_id, max_attempts=access.max_attempts)
        members = MemberContexts(hub, access, self.session_name)
        deadline = datetime.fromisoformat(self.deadline)
        while True:
            progress = await asyncio.to_thread(self._check, members)
            self.log.info("%d of %d commands terminal", progress.finished, progress.commands)
            if progress.done:
                yield TriggerEvent({"status": "done", "finished": progress.finished, "errors": progress.errors})
                return
            if datetime.now(UTC) >= deadline:
                yield TriggerEvent({"status": "timeout", "finished": progress.finished, "commands": progress.commands})
                return
            await asyncio.sleep(self.poke_interval)
