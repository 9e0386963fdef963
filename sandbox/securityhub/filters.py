"""Security Hub emulator: GetFindings filters (string/number/date/boolean comparisons) and paging."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from sandbox.securityhub.model import MAX_FILTER_ATTRIBUTES, MAX_FILTER_VALUES, MAX_RESULTS, _invalid_input


def _page(items: list, params: dict, key: Callable[[Any], int] | None = None) -> tuple[list, str | None]:
    """One page after NextToken. The token carries the last item's position (its creation sequence for findings),
    so findings updated between pages neither repeat nor go missing."""
    raw = params.get("MaxResults")
    try:
        limit = MAX_RESULTS if raw is None else int(raw)
    except (TypeError, ValueError):
        raise _invalid_input(f"MaxResults must be an integer 1..{MAX_RESULTS}, got {raw!r}") from None
    if not 1 <= limit <= MAX_RESULTS:
        raise _invalid_input(f"MaxResults must be between 1 and {MAX_RESULTS}, got {limit}")
    position = key or (lambda item: items.index(item))
    after = -1
    if params.get("NextToken"):
        try:
            after = int(json.loads(base64.urlsafe_b64decode(params["NextToken"].encode()))["after"])
        except (ValueError, KeyError, TypeError):
            raise _invalid_input("The NextToken is not valid; pass the value from the previous response") from None
    remaining = [item for item in items if position(item) > after]
    page = remaining[:limit]
    if len(remaining) <= limit:
        return page, None
    token = base64.urlsafe_b64encode(json.dumps({"after": position(page[-1])}).encode()).decode()
    return page, token


# ---------------------------------------------------------------------- filters
def _resources(attribute: str) -> Callable[[dict], list[str]]:
    return lambda f: [str(r.get(attribute)) for r in f.get("Resources", []) if r.get(attribute) is not None]


def _scalar(*path: str) -> Callable[[dict], list[str]]:
    def get(finding: dict) -> list[str]:
        value: Any = finding
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        return [] if value is None else [str(value)]

    return get


# The string filters the emulator evaluates; a finding matches a field when any of its values matches.
FILTER_FIELDS: dict[str, Callable[[dict], list[str]]] = {
    "Id": _scalar("Id"),
    "GeneratorId": _scalar("GeneratorId"),
    "AwsAccountId": _scalar("AwsAccountId"),
    "ProductArn": _scalar("ProductArn"),
    "ProductName": _scalar("ProductName"),
    "CompanyName": _scalar("CompanyName"),
    "Region": _scalar("Region"),
    "Title": _scalar("Title"),
    "Type": lambda f: [str(t) for t in f.get("Types", [])],
    "RecordState": _scalar("RecordState"),
    "ComplianceStatus": _scalar("Compliance", "Status"),
    "WorkflowStatus": _scalar("Workflow", "Status"),
    "SeverityLabel": _scalar("Severity", "Label"),
    "ResourceId": _resources("Id"),
    "ResourceType": _resources("Type"),
    "ResourceRegion": _resources("Region"),
}
_POSITIVE = {
    "EQUALS": lambda v, x: v == x,
    "PREFIX": lambda v, x: v.startswith(x),
    "CONTAINS": lambda v, x: x in v,
}
_NEGATIVE = {
    "NOT_EQUALS": lambda v, x: v != x,
    "PREFIX_NOT_EQUALS": lambda v, x: not v.startswith(x),
    "NOT_CONTAINS": lambda v, x: x not in v,
}


def compile_filters(filters: dict) -> Callable[[dict], bool]:
    """GetFindings string filters. Per field: EQUALS/PREFIX/CONTAINS are ORed, NOT_* are ANDed, PREFIX combines
    with NOT_EQUALS/PREFIX_NOT_EQUALS; fields are ANDed. Forbidden mixes are errors (StringFilter.Comparison doc)."""
    if not isinstance(filters, dict):
        raise _invalid_input("Filters must be an object of finding attributes")
    active = {name: values for name, values in filters.items() if values}
    if len(active) > MAX_FILTER_ATTRIBUTES:
        raise _invalid_input(f"Filters may use at most {MAX_FILTER_ATTRIBUTES} finding attributes, got {len(active)}")
    checks: list[Callable[[dict], bool]] = []
    for name, values in active.items():
        if name not in FILTER_FIELDS:
            raise _invalid_input(f"Filter {name} is not emulated by the sandbox; supported: {', '.join(FILTER_FIELDS)}")
        if not isinstance(values, list) or len(values) > MAX_FILTER_VALUES:
            raise _invalid_input(f"Filter {name} takes a list of at most {MAX_FILTER_VALUES} values")
        comparisons = [(v.get("Comparison"), v.get("Value")) for v in values]
        for comparison, value in comparisons:
            if comparison not in _POSITIVE and comparison not in _NEGATIVE:
                raise _invalid_input(f"Filter {name}: Comparison {comparison!r} is not a string comparison")
            if not isinstance(value, str) or not value:
                raise _invalid_input(f"Filter {name}: Value must be a non-empty string")
        kinds = {c for c, _ in comparisons}
        if ("CONTAINS" in kinds and kinds - {"CONTAINS"}) or ("NOT_CONTAINS" in kinds and kinds - {"NOT_CONTAINS"}):
            raise _invalid_input(f"Filter {name}: CONTAINS and NOT_CONTAINS can only be combined with themselves")
        if "EQUALS" in kinds and kinds & {"NOT_EQUALS", "PREFIX_NOT_EQUALS"}:
            raise _invalid_input(f"Filter {name}: EQUALS cannot be combined with NOT_EQUALS or PREFIX_NOT_EQUALS")
        checks.append(_field_check(FILTER_FIELDS[name], comparisons))

    return lambda finding: all(check(finding) for check in checks)


def _field_check(get: Callable[[dict], list[str]], comparisons: list[tuple[str, str]]) -> Callable[[dict], bool]:
    positive = [(_POSITIVE[c], x) for c, x in comparisons if c in _POSITIVE]
    negative = [(_NEGATIVE[c], x) for c, x in comparisons if c in _NEGATIVE]

    def check(finding: dict) -> bool:
        values = get(finding)
        if positive and not any(op(v, x) for v in values for op, x in positive):
            return False
        return all(op(v, x) for v in values for op, x in negative) if values else not positive

    return check


# ---------------------------------------------------------------------- ASFF validation
