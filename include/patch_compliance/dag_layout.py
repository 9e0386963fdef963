"""What the DAG files need from the config while they are parsed: the waves, the three schedules and where the
reports go. Light on purpose (standard library only on the usual path).

The DAG processor parses every DAG file again and again (``[dag_processor] min_file_process_interval``), each
file in a fresh process. Validating the whole config each time means building every pydantic model of
``config.py`` on every parse. Instead the layout of a config file that validated once is kept in a small cache
file, keyed by the SHA-256 of the config's bytes and of the validating code (``config.py``, ``naming.py``,
``vocab.py``): the same bytes under the same code validate the same way. A config that is new, changed or
invalid is validated in full, so a broken config is still the DAG files' import error naming the field
(``config.ConfigError``). Invalid configs are never cached.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from include.patch_compliance.vocab import CONFIG_ENV

if TYPE_CHECKING:
    from include.patch_compliance.config import FleetConfig

CACHE_ENV = "PATCH_COMPLIANCE_LAYOUT_CACHE"  # a folder; default: <tmp>/patch-compliance-layout-<uid>
_VALIDATING_CODE = ("config.py", "naming.py", "vocab.py")
_HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class DagLayout:
    """The parse-time view of a config. Without a config the DAGs parse with one wave over every OU, no
    schedule and placeholder report locations; their first task then fails with ``config.ConfigMissing``."""

    waves: list[dict[str, Any]] = field(default_factory=lambda: [{"name": "all", "ous": ["*"], "parallel": False}])
    schedule: str | None = None  # patch_compliance_scan
    collect_schedule: str | None = None  # patch_compliance_collect
    remediation_schedule: str | None = None  # patch_compliance_remediate
    bucket: str = "patch-compliance-reports"
    prefix: str = "patch-compliance"

    @classmethod
    def from_config(cls, cfg: FleetConfig) -> DagLayout:
        return cls(
            waves=[{"name": w.name, "ous": list(w.ous), "parallel": w.parallel_with_previous} for w in cfg.waves],
            schedule=cfg.orchestration.schedule,
            collect_schedule=cfg.orchestration.collect_schedule,
            remediation_schedule=cfg.remediation.schedule,
            bucket=cfg.reports.bucket,
            prefix=cfg.reports.prefix,
        )


def dag_layout(path: Path | None = None) -> DagLayout:
    """The layout of the config at ``path`` (default: the file ``PATCH_COMPLIANCE_CONFIG`` names; none named:
    the default layout). Raises ``config.ConfigError`` naming the field when the file is missing or invalid."""
    if path is None:
        named = os.environ.get(CONFIG_ENV, "").strip()
        if not named:
            return DagLayout()
        path = Path(named)
    try:
        data = path.read_bytes()
    except OSError:
        data = None  # the full load below raises the error that names the file
    cached = _cache_file(data) if data is not None else None
    if cached is not None:
        try:
            return DagLayout(**json.loads(cached.read_text()))
        except (OSError, ValueError, TypeError):
            pass  # no cache entry yet, or an unreadable one: validate
    from include.patch_compliance.config import load_config  # the full validation, only on a cache miss

    layout = DagLayout.from_config(load_config(path))
    if cached is not None and path.read_bytes() == data:  # cache only what was validated
        _write(cached, json.dumps(asdict(layout), sort_keys=True))
    return layout


def _cache_file(data: bytes) -> Path | None:
    digest = hashlib.sha256(data)
    for name in _VALIDATING_CODE:
        digest.update((_HERE / name).read_bytes())
    folder = os.environ.get(CACHE_ENV) or os.path.join(tempfile.gettempdir(), f"patch-compliance-layout-{os.getuid()}")
    return Path(folder) / f"{digest.hexdigest()}.json"


def _write(target: Path, text: str) -> None:
    """Atomically (parsers run in parallel); a folder that cannot be written only costs the cache."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=target.parent, delete=False, suffix=".tmp") as handle:
            handle.write(text)
        os.replace(handle.name, target)
    except OSError:
        pass
