"""One palette and one set of human labels for every chart and table of the report and the page.

Critical is the same dark red everywhere; enum values are shown as words (``Scan failed``, not ``SCAN_FAILED``).
Data colours are mid-tones that read on the page's light and dark backgrounds and on the report's white one.
"""

from __future__ import annotations

import re
from datetime import datetime

from include.patch_compliance.vocab import SEVERITIES

COMPLIANCE_COLOURS = {"COMPLIANT": "#1f9d55", "NON_COMPLIANT": "#d64545", "UNKNOWN": "#a7b1bc"}
SEVERITY_COLOURS = {
    "CRITICAL": "#8b1a1a",
    "HIGH": "#e8590c",
    "MEDIUM": "#f0a202",
    "LOW": "#4c8bf5",
    "INFORMATIONAL": "#8fa3b8",
    "UNSPECIFIED": "#b7c0ca",
}
# Most to least useful; UNREACHABLE counts account-regions, not nodes.
COVERAGE_ORDER = ("SCANNED", "STALE", "NOT_SCANNED", "OFFLINE", "SCAN_FAILED", "UNMANAGED", "UNREACHABLE")
COVERAGE_COLOURS = {
    "SCANNED": "#1f9d55",
    "STALE": "#f0a202",
    "NOT_SCANNED": "#e8590c",
    "OFFLINE": "#8e6bd1",
    "SCAN_FAILED": "#d64545",
    "UNMANAGED": "#6b7a8c",
    "UNREACHABLE": "#3d4654",
}
OTHER_COLOUR = "#b7c0ca"  # a value this version does not know (kept and counted, never dropped)
ACCENT = "#017cee"
WARN = "#d98c00"

LABELS = {
    "COMPLIANT": "Compliant",
    "NON_COMPLIANT": "Non-compliant",
    "UNKNOWN": "Unknown",
    "SCANNED": "Scanned",
    "STALE": "Stale scan",
    "NOT_SCANNED": "Not scanned",
    "OFFLINE": "Offline",
    "SCAN_FAILED": "Scan failed",
    "UNMANAGED": "Unmanaged (no SSM agent)",
    "UNREACHABLE": "Unreachable",
    **{s: s.capitalize() for s in SEVERITIES},
}


def label(value: str | None) -> str:
    """The human label of an enum value; an unknown value is shown as sent, in words."""
    if value is None or value == "":
        return ""
    return LABELS.get(value) or value.replace("_", " ").capitalize()


def colour(value: str | None) -> str:
    """The one colour of a compliance, severity or coverage value."""
    key = value or ""
    return COMPLIANCE_COLOURS.get(key) or SEVERITY_COLOURS.get(key) or COVERAGE_COLOURS.get(key) or OTHER_COLOUR


def css_variables() -> str:
    """``:root{--ok:...}`` for stylesheets that colour by palette (the page's CSS, the report's)."""
    named = {
        "ok": COMPLIANCE_COLOURS["COMPLIANT"],
        "bad": COMPLIANCE_COLOURS["NON_COMPLIANT"],
        "unknown": COMPLIANCE_COLOURS["UNKNOWN"],
        "warn": WARN,
        "accent": ACCENT,
        **{f"sev-{k.lower()}": v for k, v in SEVERITY_COLOURS.items()},
        **{f"cov-{k.lower()}": v for k, v in COVERAGE_COLOURS.items()},
    }
    return ":root{" + ";".join(f"--{k}:{v}" for k, v in named.items()) + "}"


_RUN_ID_TIME = re.compile(r"__(\d{4}-\d{2}-\d{2}T\d{2}:\d{2})")


def run_time(run_id: str, snapshot_date: str, generated_at: str | None = None) -> str:
    """When a run ran, to the minute (UTC): ``generated_at`` when the summary has it, else the time in an Airflow
    run id (``scheduled__2026-11-29T03:00:00+00:00``), else the snapshot date alone."""
    if generated_at:
        try:
            return datetime.fromisoformat(generated_at.replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M")
        except ValueError:
            pass
    match = _RUN_ID_TIME.search(run_id)
    return match.group(1).replace("T", " ") if match else snapshot_date


# What the compliant % is taken over when the summary does not say (older producers): transform.rollups divides
# compliant nodes by all nodes, managed or not; unknown and unmanaged nodes count against it.
DEFAULT_PCT_OF = "all nodes, managed and unmanaged (unknown and unmanaged nodes count as not compliant)"


def pct_of_label(value: str | None) -> str:
    """What the compliant % is taken over, in words: summary.json's ``totals.compliant_pct_of`` names the totals
    field ("nodes"); older summaries lack it."""
    return DEFAULT_PCT_OF if value in (None, "", "nodes") else value
