"""Typed configuration: one YAML file, validated in full when the DAG files are parsed and when a task starts.

The file is named by the env var ``PATCH_COMPLIANCE_CONFIG``; there is no default, so a deployment can never run
on somebody else's settings (the emulator's own file is ``sandbox/fleet-config.yaml``, passed explicitly by
``make demo``/``make airflow`` and the tests). ``config.example.yaml`` documents every key for real AWS.

Strict on purpose: booleans are YAML ``true``/``false`` only, names follow the rules AWS applies (S3 buckets, IAM
roles, the regions of one partition, docs/aws-behaviours.md §31), and an invalid file is a DAG import error that
names the field, never a DAG with a silently different shape.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

from include.patch_compliance.config_alerts import AlertsConfig
from include.patch_compliance.naming import BucketName, KeyPrefix, Regions, RoleName, tag_column
from include.patch_compliance.vocab import (
    ACCOUNT_ID_PATTERN,
    CONFIG_ENV,
    OU_REF_PATTERN,
    PATCH_DOCUMENT,
    REMEDIATION_WAVES,
    SEVERITIES,
    WAVE_NAME_PATTERN,
)

# A wave takes OUs by id or path, or "*" for every OU no other wave names.
WAVE_OU_REF = r"^(\*|" + OU_REF_PATTERN[2:-2] + r")$"
# SendCommand patterns (botocore ssm model, docs/aws-behaviours.md §1).
MAX_CONCURRENCY = r"^([1-9][0-9]*|[1-9][0-9]%|[1-9]%|100%)$"
MAX_ERRORS = r"^([1-9][0-9]*|[0]|[1-9][0-9]%|[0-9]%|100%)$"


class ConfigError(ValueError):
    """A bad configuration value; the message names the field, the value and what is allowed."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_cron(value: str | None) -> str | None:
    from croniter import croniter

    if value is None or croniter.is_valid(value):
        return value
    raise ValueError("must be a 5-field cron expression such as '0 3 * * *', an @daily-style preset, or null")


class OrganizationConfig(_Model):
    """Which part of the organization to scan."""

    include_ous: list[Annotated[str, Field(pattern=OU_REF_PATTERN)]] = Field(
        default_factory=list, description="OUs (id or path) to scan with their descendants; empty = the whole org."
    )
    exclude_ous: list[Annotated[str, Field(pattern=OU_REF_PATTERN)]] = Field(default_factory=list)
    include_accounts: list[Annotated[str, Field(pattern=ACCOUNT_ID_PATTERN)]] = Field(default_factory=list)
    exclude_accounts: list[Annotated[str, Field(pattern=ACCOUNT_ID_PATTERN)]] = Field(default_factory=list)


class AccessConfig(_Model):
    """How the orchestrator reaches member accounts."""

    aws_conn_id: str = "aws_default"
    member_role_name: RoleName = "PatchComplianceScanRole"
    external_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_+=,.@:/-]+$", min_length=2, max_length=1224)] | None = None
    session_duration_seconds: Annotated[int, Field(ge=900, le=43200)] = 3600
    max_attempts: Annotated[int, Field(ge=1, le=20)] = 6


class WaveConfig(_Model):
    """A wave scans a set of OUs; waves run in order. ``ous: ["*"]`` takes every OU not named by another wave."""

    name: Annotated[str, Field(pattern=WAVE_NAME_PATTERN)]
    ous: list[Annotated[str, Field(pattern=WAVE_OU_REF)]] = Field(min_length=1)
    parallel_with_previous: StrictBool = False


class TargetsConfig(_Model):
    """Which nodes SendCommand targets: every managed node (ids in batches of 50) or nodes with tags."""

    mode: Literal["all_managed", "tags"] = "all_managed"
    tags: dict[str, list[str]] = Field(default_factory=dict, description="tag key -> values (empty = tag-key)")

    @model_validator(mode="after")
    def _tags_need_keys(self) -> TargetsConfig:
        if self.mode == "tags" and not self.tags:
            raise ValueError("targets.mode 'tags' needs at least one entry in targets.tags, e.g. {Patch: ['true']}")
        if len(self.tags) > 5:
            raise ValueError("SendCommand takes at most 5 Targets (docs/aws-behaviours.md §1)")
        return self


class WaitConfig(_Model):
    poke_interval_seconds: Annotated[int, Field(ge=5, le=3600)] = 60
    timeout_seconds: Annotated[int, Field(ge=60, le=7 * 24 * 3600)] = 3 * 3600
    deferrable: StrictBool = True


class ScanConfig(_Model):
    document_name: Literal["AWS-RunPatchBaseline"] = PATCH_DOCUMENT
    # The operation is a run param (default Scan); Install needs this opt-in as well (see scan/command.py).
    allow_install: StrictBool = False
    reboot_option: Literal["RebootIfNeeded", "NoReboot"] = "NoReboot"
    targets: TargetsConfig = TargetsConfig()
    max_concurrency: Annotated[str, Field(pattern=MAX_CONCURRENCY)] = "10%"
    max_errors: Annotated[str, Field(pattern=MAX_ERRORS)] = "10%"
    timeout_seconds: Annotated[int, Field(ge=30, le=2_592_000)] = 600
    output_s3_bucket: BucketName | None = None
    output_s3_prefix: Annotated[KeyPrefix, Field(max_length=500)] | None = None
    install_max_failure_ratio: Annotated[float, Field(ge=0, le=1)] = 0.1
    wait: WaitConfig = WaitConfig()


class CollectConfig(_Model):
    compliance_items: StrictBool = Field(
        True, description="ListResourceComplianceSummaries per target, ListComplianceItems per NON_COMPLIANT node"
    )
    stale_after_days: Annotated[int, Field(ge=1, le=365)] = 7
    # Collect reuses the scan's DescribeInstanceInformation listing of a target up to this age; 0 = list again.
    node_listing_max_age_seconds: Annotated[int, Field(ge=0, le=86_400)] = 3600


class OrchestrationConfig(_Model):
    schedule: str | None = Field("0 3 * * *", description="patch_compliance_scan's cron")
    collect_schedule: str | None = Field(None, description="patch_compliance_collect's cron; null = manual only")
    shard_size: Annotated[int, Field(ge=1, le=500)] = 25
    max_workers: Annotated[int, Field(ge=1, le=64)] = 8

    @field_validator("schedule", "collect_schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        return _check_cron(value)

    @model_validator(mode="after")
    def _distinct_fire_times(self) -> OrchestrationConfig:
        # Scheduled run ids are "scheduled__<time>": two DAGs firing together would share run ids, and with them
        # the run's report keys.
        if self.schedule and self.collect_schedule:
            shared = _first_shared_fire_time(self.schedule, self.collect_schedule)
            if shared:
                raise ValueError(
                    f"schedule {self.schedule!r} and collect_schedule {self.collect_schedule!r} both fire at "
                    f"{shared}: the scan and collect DAGs would get the same run ids and overwrite each other's "
                    "reports; offset one of them (e.g. '0 3 * * *' and '30 3 * * *') or set collect_schedule: null"
                )
        return self


def _first_shared_fire_time(a: str, b: str, horizon: int = 2000) -> str | None:
    from datetime import datetime

    from croniter import croniter

    start = datetime(2026, 1, 1)
    times_a = croniter(a, start)
    fire_a = {times_a.get_next(datetime) for _ in range(horizon)}
    times_b = croniter(b, start)
    for _ in range(horizon):
        when = times_b.get_next(datetime)
        if when in fire_a:
            return when.strftime("%Y-%m-%d %H:%M")
    return None


# A tag key as EC2 and SSM accept it: 1-128 characters (EC2 User Guide, "Tag restrictions",
# https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/Using_Tags.html#tag-restrictions).
TagKey = Annotated[str, Field(min_length=1, max_length=128)]


class ReportsConfig(_Model):
    bucket: BucketName
    prefix: Annotated[KeyPrefix, Field(max_length=200)] = "patch-compliance"
    kms_key_id: str | None = None
    history_runs: Annotated[int, Field(ge=1, le=365)] = 30
    group_by_tags: list[TagKey] = Field(
        default_factory=list,
        max_length=20,
        description="Tag keys (EC2 tags, SSM tags of hybrid nodes) to roll up by: a nodes column tag_<key> each",
    )

    @field_validator("group_by_tags")
    @classmethod
    def _distinct_columns(cls, value: list[str]) -> list[str]:
        columns: dict[str, str] = {}
        for key in value:
            other = columns.setdefault(tag_column(key), key)
            if other != key or value.count(key) > 1:
                raise ValueError(
                    f"tag keys {other!r} and {key!r} both become nodes column {tag_column(key)!r} (lower-cased, "
                    "other characters as _); list each key once and drop one of them"
                )
        return value


class ThresholdsConfig(_Model):
    max_unreachable_ratio: Annotated[float, Field(ge=0, le=1)] = 0.2
    # Account-regions whose Security Hub import failed, over those attempted; the final gate fails above it.
    max_securityhub_error_ratio: Annotated[float, Field(ge=0, le=1)] = 0.0
    sla_days: dict[str, Annotated[int, Field(ge=0)]] = Field(
        default_factory=lambda: {
            "CRITICAL": 7,
            "HIGH": 14,
            "MEDIUM": 30,
            "LOW": 90,
            "INFORMATIONAL": 180,
            "UNSPECIFIED": 90,
        }
    )

    @field_validator("sla_days")
    @classmethod
    def _severities(cls, value: dict[str, int]) -> dict[str, int]:
        unknown = sorted(set(value) - set(SEVERITIES))
        if unknown:
            raise ValueError(f"unknown severity {unknown}; allowed: {', '.join(SEVERITIES)}")
        missing = [s for s in SEVERITIES if s not in value]
        if missing:
            raise ValueError(f"missing severity {missing}; give a number of days for each of {', '.join(SEVERITIES)}")
        return value


class SecurityHubConfig(_Model):
    enabled: StrictBool = True
    skip_if_native_export: StrictBool = True
    max_patches_per_finding: Annotated[int, Field(ge=0, le=100)] = 20


class CanaryConfig(_Model):
    """The first remediation wave: a number of nodes, or a share of the selection (rounded up, at least 1 node)."""

    nodes: Annotated[int, Field(ge=1, le=1000)] | None = None
    percent: Annotated[float, Field(gt=0, le=100)] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> CanaryConfig:
        if (self.nodes is None) == (self.percent is None):
            raise ValueError(
                "give exactly one of canary.nodes (e.g. {nodes: 2}) or canary.percent (e.g. {percent: 10})"
            )
        return self


class ChangeWindowConfig(_Model):
    """A recurring window (UTC) in which a remediation run may start: it opens at every ``start`` cron time and
    stays open for ``duration_minutes``."""

    start: str = Field(description="cron (UTC) of the window's opening, e.g. '0 22 * * 6' = Saturdays 22:00")
    duration_minutes: Annotated[int, Field(ge=1, le=7 * 24 * 60)]

    @field_validator("start")
    @classmethod
    def _cron(cls, value: str) -> str:
        if value.startswith("@"):
            raise ValueError("must be a 5-field cron expression such as '0 22 * * 6' (a preset has no fixed time)")
        _check_cron(value)
        return value


class RemediationConfig(_Model):
    """Targeted remediation (patch_compliance_remediate): Install on exactly the nodes the last scan found
    non-compliant. Runs only with this ``enabled`` AND ``scan.allow_install``."""

    enabled: StrictBool = False
    canary: CanaryConfig = CanaryConfig(nodes=1)
    max_nodes: Annotated[int, Field(ge=1, le=10_000)] = 50
    max_failure_ratio: Annotated[float, Field(ge=0, le=1)] = 0.1
    change_window: ChangeWindowConfig | None = None
    schedule: str | None = Field(None, description="patch_compliance_remediate's cron; null = manual only")

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str | None) -> str | None:
        return _check_cron(value)


class FleetConfig(_Model):
    regions: Regions
    organization: OrganizationConfig = OrganizationConfig()
    access: AccessConfig = AccessConfig()
    waves: list[WaveConfig] = Field(default_factory=lambda: [WaveConfig(name="all", ous=["*"])], min_length=1)
    scan: ScanConfig = ScanConfig()
    collect: CollectConfig = CollectConfig()
    orchestration: OrchestrationConfig = OrchestrationConfig()
    reports: ReportsConfig
    thresholds: ThresholdsConfig = ThresholdsConfig()
    security_hub: SecurityHubConfig = SecurityHubConfig()
    remediation: RemediationConfig = RemediationConfig()
    alerts: AlertsConfig = AlertsConfig()

    @model_validator(mode="after")
    def _remediation(self) -> FleetConfig:
        if not self.remediation.enabled:
            return self
        taken = [w.name for w in self.waves if w.name in REMEDIATION_WAVES]
        if taken:
            raise ValueError(
                f"waves {taken}: these names are the remediation DAG's own waves ({', '.join(REMEDIATION_WAVES)}); "
                "rename the wave or set remediation.enabled: false"
            )
        own = self.remediation.schedule
        for name, other in (
            ("orchestration.schedule", self.orchestration.schedule),
            ("orchestration.collect_schedule", self.orchestration.collect_schedule),
        ):
            shared = _first_shared_fire_time(own, other) if own and other else None
            if shared:
                raise ValueError(
                    f"remediation.schedule {own!r} and {name} {other!r} both fire at {shared}: the DAGs would get "
                    "the same run ids and overwrite each other's staging and reports; offset one of them"
                )
        return self

    @model_validator(mode="after")
    def _waves(self) -> FleetConfig:
        names = [w.name for w in self.waves]
        if len(set(names)) != len(names):
            raise ValueError(f"wave names must be unique, got {names}")
        stars = [w.name for w in self.waves if "*" in w.ous]
        if len(stars) > 1:
            raise ValueError(f"only one wave may take the remaining OUs ('*'), got {stars}")
        return self


def _describe(error: ErrorDetails) -> str:
    field_path = ".".join(str(p) for p in error["loc"]) or "(top level)"
    if error["type"] == "extra_forbidden":
        return f"{field_path}: unknown key; remove it or check the spelling against config.example.yaml"
    value = error.get("input")
    shown = repr(value) if not isinstance(value, dict) else "{...}"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "string_pattern_mismatch":
        message = f"does not match the allowed pattern {error['ctx']['pattern']}"
    elif error["type"] == "bool_type":
        message = "must be the YAML boolean true or false, unquoted (not yes/no/on/off, a number or a string)"
    return f"{field_path}: {shown} is not allowed: {message}"


def parse_config(data: Any, source: str = "config") -> FleetConfig:
    """Validate a mapping; raise ConfigError naming every bad field, its value and what is allowed."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of keys, got {type(data).__name__}")
    try:
        return FleetConfig.model_validate(data)
    except ValidationError as exc:
        lines = "\n".join(f"  - {_describe(e)}" for e in exc.errors())
        raise ConfigError(f"invalid configuration in {source}:\n{lines}") from None


class ConfigMissing(ConfigError):
    """No configuration file was named: nothing to run on."""


def config_path() -> Path:
    value = os.environ.get(CONFIG_ENV, "").strip()
    if not value:
        raise ConfigMissing(
            f"no configuration: {CONFIG_ENV} is not set. Copy config.example.yaml from the project's repository, "
            f"set regions, reports.bucket and the member role for your organization, and point {CONFIG_ENV} at "
            "the copy (the same file for every Airflow component)."
        )
    return Path(value)


class _StrictLoader(yaml.SafeLoader):
    """YAML 1.2 booleans: only true/false (any case) are booleans; yes/no/on/off stay strings, so a quoted or
    YAML-1.1 "yes" can never switch Install on."""


_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def load_raw(path: Path | None = None) -> dict[str, Any]:
    path = path or config_path()
    try:
        data = yaml.load(path.read_text(), Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found; set {CONFIG_ENV} to a YAML file") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    return data if data is not None else {}


def load_config(path: Path | None = None) -> FleetConfig:
    path = path or config_path()
    return parse_config(load_raw(path), str(path))
