"""Readers for deploy/docker-compose.yaml and deploy/helm/values.yaml as a deployment would see them: compose
anchors and merge keys applied (PyYAML's loader does both) and ``${VAR:-default}`` interpolated the way
`docker compose` does, with required variables (``${VAR:?message}``) kept recognisable."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy" / "docker-compose.yaml"
HELM_VALUES = ROOT / "deploy" / "helm" / "values.yaml"
_VARIABLE = re.compile(r"\$\{(\w+)(?::?([-?])([^}]*))?\}")


def required(name: str) -> str:
    """How an interpolated ``${NAME:?...}`` (no default: compose refuses to start without it) reads here."""
    return f"<required {name}>"


def interpolate(value: Any) -> Any:
    if not isinstance(value, str):
        return value

    def one(match: re.Match) -> str:
        name, kind, default = match.groups()
        if kind == "-":
            return default
        return required(name) if kind == "?" else f"<{name}>"

    return _VARIABLE.sub(one, value.replace("$$", "\0")).replace("\0", "$")


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: interpolate(str(v)) for k, v in env.items()}


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """{container path: source} of the service's volumes (short syntax)."""
    out = {}
    for item in service.get("volumes") or []:
        source, target, *_ = interpolate(item).split(":")
        out[target] = source
    return out


def env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key] = value
    return values


def helm_values() -> dict[str, Any]:
    return yaml.safe_load(HELM_VALUES.read_text())
