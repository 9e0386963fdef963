"""Fault injection, deterministic: a rate r fires on calls n where floor((n+1)*r) > floor(n*r), counted per key.

Config (YAML/JSON file, PATCH_SANDBOX_FAULTS env (JSON or a path), or POST /_sandbox/faults):
    throttle: {"ssm.DescribeInstanceInformation": 0.5, "organizations.*": 0.25, "*": 0.01}
    accounts_without_role: ["111111111111"]
    refuse_regions: ["ap-south-1"]            # or {"ap-south-1": "UnrecognizedClientException"}
    invocation_failure_rate: 0.2              # extra Failed invocations (ResponseCode 1)
    fail_instances: ["i-0123456789abcdef0"]   # these nodes' patch runs end Failed; {id: Install|Scan} = that only
    slow_commands: 5                          # execution-time multiplier (>= 1)
"""

from __future__ import annotations

import json
import math
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import yaml

KNOWN_KEYS = {
    "throttle",
    "accounts_without_role",
    "refuse_regions",
    "invocation_failure_rate",
    "fail_instances",
    "slow_commands",
}
OPERATIONS = ("Scan", "Install")

# The error each protocol family answers when throttled (docs/aws-behaviours.md §18).
THROTTLE_ERRORS = {
    "organizations": ("TooManyRequestsException", 400),
    "securityhub": ("LimitExceededException", 429),
    "sts": ("Throttling", 400),
    "ec2": ("RequestLimitExceeded", 503),
    "s3": ("SlowDown", 503),
}


class FaultConfigError(ValueError):
    pass


def _rate(field_name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise FaultConfigError(f"faults.{field_name}={value!r}: must be a number between 0 and 1")
    return float(value)


@dataclass
class Faults:
    throttle: dict[str, float] = field(default_factory=dict)
    accounts_without_role: set[str] = field(default_factory=set)
    refuse_regions: dict[str, str] = field(default_factory=dict)
    invocation_failure_rate: float = 0.0
    fail_instances: dict[str, str] = field(default_factory=dict)  # instance id -> Scan | Install | "*"
    slow_commands: float = 1.0

    @classmethod
    def from_dict(cls, data: dict | None) -> Faults:
        data = data or {}
        if not isinstance(data, dict):
            raise FaultConfigError(f"faults must be a mapping, got {type(data).__name__}")
        unknown = set(data) - KNOWN_KEYS
        if unknown:
            raise FaultConfigError(f"unknown faults key(s) {sorted(unknown)}; allowed: {sorted(KNOWN_KEYS)}")
        throttle = data.get("throttle") or {}
        if not isinstance(throttle, dict):
            raise FaultConfigError("faults.throttle must map 'service.Action' (or 'service.*', '*') to a rate")
        accounts = data.get("accounts_without_role") or []
        if not isinstance(accounts, list) or not all(
            isinstance(a, str) and a.isdigit() and len(a) == 12 for a in accounts
        ):
            raise FaultConfigError("faults.accounts_without_role must be a list of 12-digit account id strings")
        regions = data.get("refuse_regions") or {}
        if isinstance(regions, list):
            regions = dict.fromkeys(regions, "")
        if not isinstance(regions, dict):
            raise FaultConfigError("faults.refuse_regions must be a list of regions or a map region -> error code")
        slow = data.get("slow_commands", 1.0)
        if isinstance(slow, bool) or not isinstance(slow, int | float) or slow < 1:
            raise FaultConfigError(f"faults.slow_commands={slow!r}: must be a number >= 1 (execution-time factor)")
        return cls(
            throttle={str(k): _rate(f"throttle.{k}", v) for k, v in throttle.items()},
            fail_instances=_fail_instances(data.get("fail_instances")),
            accounts_without_role=set(accounts),
            refuse_regions={str(k): str(v or "") for k, v in regions.items()},
            invocation_failure_rate=_rate("invocation_failure_rate", data.get("invocation_failure_rate", 0.0)),
            slow_commands=float(slow),
        )

    def to_dict(self) -> dict:
        return {
            "throttle": dict(self.throttle),
            "accounts_without_role": sorted(self.accounts_without_role),
            "refuse_regions": dict(self.refuse_regions),
            "invocation_failure_rate": self.invocation_failure_rate,
            "fail_instances": dict(self.fail_instances),
            "slow_commands": self.slow_commands,
        }

    def fails(self, instance_id: str, operation: str) -> bool:
        """Whether a patch-document run of ``operation`` on this node is injected to end Failed."""
        return operation in OPERATIONS and self.fail_instances.get(instance_id) in ("*", operation)

    def throttle_rate(self, service: str, action: str) -> float:
        for key in (f"{service}.{action}", f"{service}.*", "*"):
            if key in self.throttle:
                return self.throttle[key]
        return 0.0


def _fail_instances(value: object) -> dict[str, str]:
    """A list of node ids (every operation fails) or a map node id -> the operation that fails (Scan | Install)."""
    if value is None:
        return {}
    if isinstance(value, list):
        value = dict.fromkeys(value, "*")
    if not isinstance(value, dict) or not all(isinstance(k, str) and k.startswith(("i-", "mi-")) for k in value):
        raise FaultConfigError(
            "faults.fail_instances must be a list of node ids (i-..., mi-...) or a map node id -> Scan | Install"
        )
    bad = {k: v for k, v in value.items() if v not in ("*", *OPERATIONS)}
    if bad:
        raise FaultConfigError(f"faults.fail_instances {bad}: the operation must be one of {', '.join(OPERATIONS)}")
    return {str(k): str(v) for k, v in value.items()}


def load_faults(source: str | Path | dict | None) -> Faults:
    """From a dict, a YAML/JSON file path, or a JSON string (the PATCH_SANDBOX_FAULTS env form)."""
    if source is None or isinstance(source, dict):
        return Faults.from_dict(source)
    text = str(source).strip()
    if text.startswith("{"):
        return Faults.from_dict(json.loads(text))
    path = Path(text)
    if not path.is_file():
        raise FaultConfigError(f"faults file {path} does not exist (pass a YAML/JSON file or a JSON object)")
    return Faults.from_dict(yaml.safe_load(path.read_text()) or {})


def faults_from_env() -> Faults:
    return load_faults(os.environ.get("PATCH_SANDBOX_FAULTS") or None)


class RateCounter:
    """Seeded counters, not randomness: the same call sequence always gets the same faults."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def fires(self, key: str, rate: float) -> bool:
        if rate <= 0:
            return False
        with self._lock:
            n = self._counts.get(key, 0)
            self._counts[key] = n + 1
        return math.floor((n + 1) * rate + 1e-9) > math.floor(n * rate + 1e-9)

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()
