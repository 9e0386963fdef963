"""What every task of a run shares: the validated config, the hub AWS context, member contexts, staging keys."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from include.patch_compliance.aws import AwsContext, context_from_connection, safe_session_name
from include.patch_compliance.aws.members import MemberContexts
from include.patch_compliance.config import ConfigError, FleetConfig, load_config
from include.patch_compliance.storage import get_json_gz, put_json_gz, staging_key, staging_prefix


@dataclass
class RunContext:
    cfg: FleetConfig
    dag_id: str
    run_id: str
    hub: AwsContext
    # The run's stable clock: the same on every retry of every task, so re-running a run rewrites the same
    # reports byte for byte, and later runs always carry later Security Hub UpdatedAt values.
    run_after: datetime = field(default_factory=lambda: datetime.now(UTC))

    @classmethod
    def from_airflow(cls, context: Any, cfg: FleetConfig | None = None) -> RunContext:
        from airflow.sdk.exceptions import AirflowFailException

        try:
            cfg = cfg or load_config()
        except ConfigError as exc:  # a retry cannot fix a bad file: fail at once, with the message
            raise AirflowFailException(str(exc)) from None
        hub = context_from_connection(cfg.access.aws_conn_id, max_attempts=cfg.access.max_attempts)
        dag_run = context["dag_run"]
        run_after = getattr(dag_run, "run_after", None) or dag_run.start_date or datetime.now(UTC)
        return cls(cfg=cfg, dag_id=context["dag"].dag_id, run_id=context["run_id"], hub=hub, run_after=run_after)

    @property
    def session_name(self) -> str:
        """RoleSessionName (≤ 64 chars) carrying the run id, for CloudTrail (docs/aws-behaviours.md §12)."""
        return safe_session_name(f"pc-{self.run_id}")

    @cached_property
    def members(self) -> MemberContexts:
        return MemberContexts(self.hub, self.cfg.access, self.session_name)

    @property
    def bucket(self) -> str:
        return self.cfg.reports.bucket

    def key(self, kind: str, wave: str | None = None, shard: int | None = None) -> str:
        """This run's staging key of ``kind`` (storage.staging_key)."""
        return staging_key(self.cfg.reports.prefix, self.run_id, kind, wave, shard)

    def prefix(self, kind: str, wave: str | None = None) -> str:
        """This run's staging folder of ``kind``, optionally one wave."""
        return staging_prefix(self.cfg.reports.prefix, self.run_id, kind, wave)

    def put(self, key: str, obj: Any) -> str:
        return put_json_gz(self.hub, self.bucket, key, obj, kms_key_id=self.cfg.reports.kms_key_id)

    def get(self, key: str) -> Any:
        return get_json_gz(self.hub, self.bucket, key)
