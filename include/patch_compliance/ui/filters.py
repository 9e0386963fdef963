"""The page's query parameters: which run, which nodes (filters) and which page of them, validated.

A bad value is answered with a 400 naming the parameter and what it accepts, never a stack trace.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from urllib.parse import urlencode

import pyarrow.dataset as ds

from include.patch_compliance.transform.schema import COVERAGE_STATUSES
from include.patch_compliance.ui.source import SAFE_RUN_ID
from include.patch_compliance.vocab import COMPLIANCE_STATUSES, SEVERITIES

# query parameter -> nodes table column (exact match)
COLUMN_FILTERS = {
    "ou": "ou_path",
    "account": "account_id",
    "region": "region",
    "compliance": "compliance_status",
    "coverage": "coverage_status",
}
CHOICES = {"compliance": COMPLIANCE_STATUSES, "coverage": COVERAGE_STATUSES, "severity": SEVERITIES}
TAG_PREFIX = "tag_"  # the nodes table's per-tag columns (reports.group_by_tags): tag_<key>
PER_PAGE = 50
MAX_PER_PAGE = 200
MAX_VALUE = 256
CVE_ID = re.compile(r"^CVE-\d{4}-\d{4,}$")


class BadQuery(ValueError):
    """A query parameter the page cannot use; the message names it and what it accepts."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"query parameter {param!r}: {message}")
        self.param = param


@dataclass(frozen=True)
class NodeQuery:
    run: str | None = None  # safe run id; None = the latest run
    values: dict[str, str] = field(default_factory=dict)  # COLUMN_FILTERS param -> value
    tags: dict[str, str] = field(default_factory=dict)  # tag column (tag_<key>) -> value
    severity: str | None = None  # nodes missing at least one patch of this severity
    page: int = 1
    per_page: int = PER_PAGE

    @property
    def active(self) -> bool:
        return bool(self.values or self.tags or self.severity)

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page

    def where(self) -> ds.Expression:
        """Node rows (not the unreachable account-region rows) matching every filter but severity."""
        expr = ds.field("instance_id").is_valid()
        for param, value in self.values.items():
            expr = expr & (ds.field(COLUMN_FILTERS[param]) == value)
        for column, value in self.tags.items():
            expr = expr & (ds.field(column) == value)
        return expr

    def params(self, **changes: object) -> dict[str, str]:
        """The query parameters of this view (``page=1`` etc. to change one), for links."""
        query = replace(self, **changes)  # type: ignore[arg-type]
        out: dict[str, str] = {}
        if query.run:
            out["run"] = query.run
        out.update(query.values)
        out.update(query.tags)
        if query.severity:
            out["severity"] = query.severity
        if query.page != 1:
            out["page"] = str(query.page)
        if query.per_page != PER_PAGE:
            out["per_page"] = str(query.per_page)
        return out

    def link(self, **changes: object) -> str:
        return "?" + urlencode(self.params(**changes))


def _int(params: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw in (None, ""):
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise BadQuery(name, f"{raw!r} is not a whole number from {low} to {high}")
    return int(raw)


def parse_run(params: Mapping[str, str]) -> str | None:
    run = params.get("run") or None
    if run is not None and not SAFE_RUN_ID.match(run):
        raise BadQuery("run", f"{run!r} is not a published run id (letters, digits, '.', '_', '-')")
    return run


def parse(params: Mapping[str, str]) -> NodeQuery:
    """The filters of a request; tag columns are checked against the table later (``check_tags``)."""
    values: dict[str, str] = {}
    for name in COLUMN_FILTERS:
        value = (params.get(name) or "").strip()
        if not value:
            continue
        if len(value) > MAX_VALUE:
            raise BadQuery(name, f"longer than {MAX_VALUE} characters")
        if name in CHOICES and value not in CHOICES[name]:
            raise BadQuery(name, f"{value!r} is not one of {', '.join(CHOICES[name])}")
        values[name] = value
    severity = (params.get("severity") or "").strip() or None
    if severity is not None and severity not in SEVERITIES:
        raise BadQuery("severity", f"{severity!r} is not one of {', '.join(SEVERITIES)}")
    tags = {}
    for name, value in params.items():
        if name.startswith(TAG_PREFIX) and value.strip():
            if len(value) > MAX_VALUE:
                raise BadQuery(name, f"longer than {MAX_VALUE} characters")
            tags[name] = value.strip()
    return NodeQuery(
        run=parse_run(params),
        values=values,
        tags=tags,
        severity=severity,
        page=_int(params, "page", 1, 1, 1_000_000),
        per_page=_int(params, "per_page", PER_PAGE, 10, MAX_PER_PAGE),
    )


def check_tags(query: NodeQuery, columns: list[str]) -> None:
    """Every tag filter must name a tag column of this run's nodes table."""
    known = [c for c in columns if c.startswith(TAG_PREFIX)]
    for column in query.tags:
        if column not in known:
            accepted = ", ".join(known) or "none: this run collected no tags (reports.group_by_tags)"
            raise BadQuery(column, f"this run's nodes table has no such tag column; tag columns: {accepted}")


def parse_cve(params: Mapping[str, str]) -> str | None:
    raw = (params.get("q") or "").strip().upper()
    if not raw:
        return None
    if not CVE_ID.match(raw):
        raise BadQuery("q", f"{raw[:40]!r} is not a CVE id (CVE-YYYY-NNNN)")
    return raw
