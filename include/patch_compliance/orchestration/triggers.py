"""Deferrable wait: the triggerer polls command status without holding a worker slot.

Lives in ``include/`` (not the DAG bundle) so the triggerer can import it (docs/aws-behaviours.md §22). boto3 calls
run in a thread (``asyncio.to_thread``) so the same AWS module serves the worker and the triggerer; no aiobotocore
needed. The AWS modules are imported in ``run``: the DAG processor never needs them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from include.patch_compliance.config import AccessConfig


class ShardCommandsTrigger(BaseTrigger):
    """Fires ``{"status": "done"}`` when every command of the shard is terminal, ``{"status": "timeout"}`` at the
    deadline; both carry ``states`` (each command's last seen state) so the sensor records the outcomes without
    asking for them again. A trigger may run more than once (docs/aws-behaviours.md §22): it only reads, so that
    is harmless. Each poll is one paged ListCommands per account-region that still has a running command.

    :param scan_records: ``[{"target": {...}, "commands": [{"command_id": ...}], "sent_at": ...}]`` of the shard.
    :param access: the config's ``access`` section as a dict (connection id, member role, ExternalId).
    :param session_name: RoleSessionName carrying the run id.
    :param poke_interval: seconds between checks.
    :param deadline: ISO-8601 UTC time after which the wait gives up (recorded, not failed).
    :param document_name: the scan's SSM document (narrows the listing); ``None`` lists every document.
    :param states: command states already known (None: the trigger checks at once); with states, the trigger
        waits one interval before its first check and never asks again for the terminal ones.
    """

    def __init__(
        self,
        *,
        scan_records: list[dict[str, Any]],
        access: dict[str, Any],
        session_name: str,
        poke_interval: float,
        deadline: str,
        document_name: str | None = None,
        states: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        super().__init__()
        self.scan_records = scan_records
        self.access = access
        self.session_name = session_name
        self.poke_interval = poke_interval
        self.deadline = deadline
        self.document_name = document_name
        self.states = states

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "scan_records": self.scan_records,
                "access": self.access,
                "session_name": self.session_name,
                "poke_interval": self.poke_interval,
                "deadline": self.deadline,
                "document_name": self.document_name,
                "states": self.states,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from include.patch_compliance.aws import context_from_connection
        from include.patch_compliance.aws.members import MemberContexts
        from include.patch_compliance.wait.status import shard_progress

        access = AccessConfig.model_validate(self.access)
        hub = await asyncio.to_thread(context_from_connection, access.aws_conn_id, max_attempts=access.max_attempts)
        members = MemberContexts(hub, access, self.session_name)
        deadline = datetime.fromisoformat(self.deadline)
        states = dict(self.states or {})
        progress = None
        while True:
            if progress is not None or self.states is not None:  # checked a moment ago: wait first
                if datetime.now(UTC) >= deadline:
                    commands = sum(len(r.get("commands", [])) for r in self.scan_records)
                    finished = progress.finished if progress else None
                    yield TriggerEvent(
                        {"status": "timeout", "finished": finished, "commands": commands, "states": states}
                    )
                    return
                await asyncio.sleep(self.poke_interval)
            progress = await asyncio.to_thread(
                shard_progress, members.get, self.scan_records, document_name=self.document_name, known=states
            )
            states = progress.states
            self.log.info(
                "%d of %d commands terminal (%d account-regions polled)",
                progress.finished,
                progress.commands,
                progress.polled,
            )
            if progress.done:
                yield TriggerEvent(
                    {"status": "done", "finished": progress.finished, "errors": progress.errors, "states": states}
                )
                return
