"""report.html: one self-contained page (inline SVG charts from the project's one chart module, no external URLs).

Deterministic: the same summary and tables give the same bytes (``charts`` reads no clock and no random ids).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import Environment, FileSystemLoader, Template, select_autoescape
from markupsafe import Markup

from include.patch_compliance import charts, palette
from include.patch_compliance.vocab import SEVERITIES

TOP_CVES = 15
TEMPLATES = Path(__file__).resolve().parent / "templates"


@cache
def _template() -> Template:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True))
    return env.get_template("report.html")


def _chart(chart: charts.BarChart | charts.TrendChart, empty: str) -> Markup:
    if not chart.bars if isinstance(chart, charts.BarChart) else not chart.points:
        return Markup('<p class="empty">{}</p>').format(empty)
    return Markup(charts.svg(chart))  # noqa: S704 - charts.svg escapes every text it draws


def top_missing(patches: pd.DataFrame, limit: int = 10) -> pd.DataFrame:
    if patches.empty:
        return pd.DataFrame({"label": [], "nodes": []})
    counts = (
        patches.groupby(["kb_id", "title", "severity"], dropna=False, observed=True)
        .size()
        .reset_index(name="nodes")
        .sort_values(["nodes", "kb_id", "title"], ascending=[False, True, True])
        .head(limit)
    )
    counts["label"] = [
        f"{t or k} ({s})" for k, t, s in zip(counts["kb_id"], counts["title"], counts["severity"], strict=True)
    ]
    return counts


def sla_breaches(patches: pd.DataFrame, limit: int = 50) -> list[dict[str, Any]]:
    breached = patches[patches["sla_breached"].fillna(False).astype(bool)]
    breached = breached.sort_values(
        ["age_days", "account_id", "instance_id", "kb_id"], ascending=[False, True, True, True]
    )
    cols = ["account_id", "region", "instance_id", "kb_id", "title", "severity", "age_days", "sla_days"]
    return breached.head(limit)[cols].astype(object).where(breached.head(limit)[cols].notna(), None).to_dict("records")


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def node_split(totals: dict[str, Any]) -> tuple[int, int]:
    """(managed, unmanaged) nodes: the summary's own figures, else the UNMANAGED coverage count (older summaries)."""
    unmanaged = totals.get("unmanaged")
    if unmanaged is None:
        unmanaged = int(totals.get("coverage", {}).get("UNMANAGED", 0))
    managed = totals.get("managed")
    return (int(managed) if managed is not None else int(totals["nodes"]) - int(unmanaged)), int(unmanaged)


def _charts(summary: dict[str, Any], patches: pd.DataFrame, top_cves: list[dict[str, Any]]) -> dict[str, Markup]:
    top = top_missing(patches)
    patch_items = [
        charts.Item(str(r["label"]), int(r["nodes"]), str(r["severity"]), f"{r['label']}: {r['nodes']} nodes")
        for _, r in top.iterrows()  # at most 10 rows
    ]
    cve_items = [
        charts.Item(c["cve_id"], int(c["nodes"]), str(c.get("severity")), f"{c['cve_id']}: {c['nodes']} nodes")
        for c in top_cves
    ]
    severity = summary["totals"]["severity"]
    return {
        "ou": _chart(charts.share_bars(summary["by_ou"], label_key="ou_path", title="Compliance by OU"), "No OUs."),
        "severity": _chart(
            charts.count_bars(severity, SEVERITIES, title="Missing patches by severity (patch rows)"), "None."
        ),
        "top": _chart(
            charts.ranked_bars(patch_items, title="Top missing patches (nodes missing it)", width=520, label_width=220),
            "No missing patches.",
        ),
        "trend": _chart(charts.trend(summary["trend"], title="Compliant % per run"), "No trend yet."),
        "cves": _chart(
            charts.ranked_bars(cve_items, title="Top CVEs (exposed nodes)", width=520, label_width=150), "No CVEs."
        ),
    }


def render_html(summary: dict[str, Any], tables: dict[str, pd.DataFrame], sections: Sequence[Markup] = ()) -> bytes:
    """The page; ``sections`` are further rendered blocks appended at the end (e.g. a remediation run's).
    ``top_cves``, ``by_tag`` and the totals' ``managed``/``unmanaged``/``compliant_pct_of`` are optional (older
    summaries lack them)."""
    template = _template()
    patches = tables["patches"]
    totals = summary["totals"]
    top_cves = list(summary.get("top_cves") or [])[:TOP_CVES]
    by_tag = dict(summary.get("by_tag") or {})
    tag_charts = {
        key: _chart(charts.share_bars(rows, label_key="value", title=f"Compliance by tag {key}"), "No nodes.")
        for key, rows in by_tag.items()
    }
    managed, unmanaged = node_split(totals)
    html = template.render(
        s=summary,
        t=totals,
        charts=_charts(summary, patches, top_cves),
        breaches=sla_breaches(patches),
        pct=_pct,
        sections=sections,
        label=palette.label,
        colour=palette.colour,
        css_vars=Markup(palette.css_variables()),  # noqa: S704 - our own constants
        managed=managed,
        unmanaged=unmanaged,
        pct_of=palette.pct_of_label(totals.get("compliant_pct_of")),
        top_cves=top_cves,
        by_tag=by_tag,
        tag_charts=tag_charts,
    )
    return html.encode()
