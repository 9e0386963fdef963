"""The one chart module of the report (publish/report_html.py) and the page (ui/): geometry, then inline SVG.

Hand-built SVG rather than matplotlib: no plotting library at render time, the same bytes for the same figures,
a few KB per chart, no script or external URL (it works inside the report's CSP sandbox), and tests can check
the numbers. Colours and labels come from ``palette``; text uses ``currentColor`` so the page's theme applies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any

from include.patch_compliance import palette

MAX_BARS = 12
LABEL_CHARS = 28


@dataclass(frozen=True)
class Segment:
    x: float
    width: float
    colour: str
    key: str
    title: str


@dataclass(frozen=True)
class Bar:
    label: str
    y: float
    segments: list[Segment]
    value_text: str
    title: str


@dataclass(frozen=True)
class BarChart:
    title: str
    width: int
    height: int
    label_width: int
    plot_width: int
    bar_height: int
    bars: list[Bar]
    note: str = ""


@dataclass(frozen=True)
class TrendPoint:
    x: float
    y: float
    label: str
    value_text: str
    title: str


@dataclass(frozen=True)
class TrendChart:
    title: str
    width: int
    height: int
    left: int
    top: int
    plot_width: int
    plot_height: int
    points: list[TrendPoint]
    path: str
    area_path: str
    gridlines: list[tuple[float, str]] = field(default_factory=list)
    x_labels: list[tuple[float, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Item:
    """One bar of a ranked chart: its label, value, palette key (its colour) and hover text."""

    label: str
    value: int
    key: str
    title: str = ""


def fmt_pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}%"


def share_bars(
    rows: Sequence[Mapping[str, Any]], *, label_key: str, title: str, width: int = 780, label_width: int = 200
) -> BarChart:
    """One 100% bar per row (OU, tag value) split into compliant / non-compliant / unknown, worst first."""
    ordered = sorted(
        rows, key=lambda r: (r["compliant_pct"] if r.get("compliant_pct") is not None else -1, str(r[label_key]))
    )
    shown = ordered[:MAX_BARS]
    bar_height, plot = 22, width - label_width - 64
    bars = []
    for i, row in enumerate(shown):
        nodes, compliant, non_compliant = int(row["nodes"]), int(row["compliant"]), int(row["non_compliant"])
        unknown = max(nodes - compliant - non_compliant, 0)
        x, segments = float(label_width), []
        for count, key in ((compliant, "COMPLIANT"), (non_compliant, "NON_COMPLIANT"), (unknown, "UNKNOWN")):
            w = plot * count / nodes if nodes else 0.0
            if w > 0:
                text = f"{count:,} {palette.label(key).lower()}"
                segments.append(Segment(round(x, 2), round(w, 2), palette.colour(key), key, text))
            x += w
        name = str(row[label_key]) if row[label_key] not in (None, "") else "(none)"
        bars.append(
            Bar(
                label=name,
                y=i * (bar_height + 10),
                segments=segments,
                value_text=fmt_pct(row.get("compliant_pct")),
                title=f"{name}: {compliant:,} of {nodes:,} nodes compliant",
            )
        )
    more = len(ordered) - len(shown)
    note = f"and {more} more, in the tables below" if more > 0 else ""
    height = max(len(bars), 1) * (bar_height + 10)
    return BarChart(title, width, height, label_width, plot, bar_height, bars, note)


def ranked_bars(items: Sequence[Item], *, title: str, width: int = 365, label_width: int = 104) -> BarChart:
    """Bars proportional to the largest value, in the order given, coloured by each item's palette key."""
    top = max((it.value for it in items), default=0)
    bar_height, plot = 20, width - label_width - 56
    bars = []
    for i, it in enumerate(items):
        w = plot * it.value / top if top else 0.0
        hover = it.title or f"{it.label}: {it.value:,}"
        segments = [Segment(float(label_width), round(w, 2), palette.colour(it.key), it.key, hover)] if w else []
        bars.append(Bar(it.label, i * (bar_height + 8), segments, f"{it.value:,}", hover))
    height = max(len(bars), 1) * (bar_height + 8)
    return BarChart(title, width, height, label_width, plot, bar_height, bars)


def count_bars(counts: Mapping[str, int], order: Sequence[str], *, title: str, **size: int) -> BarChart:
    """Counts by enum value (severity, coverage) in a fixed order, known values first, then any others sorted."""
    keys = [k for k in order if k in counts] + sorted(k for k in counts if k not in order)
    items = [Item(palette.label(k), int(counts[k]), k) for k in keys]
    return ranked_bars(items, title=title, **size)


def _spaced_labels(points: list[TrendPoint], *, min_gap: float) -> list[tuple[float, str]]:
    """Axis labels at least ``min_gap`` px apart: always the latest, then the first and every other that fits."""
    if not points:
        return []
    last, chosen = points[-1], list[TrendPoint]()
    for p in points[:-1]:
        if (not chosen or p.x - chosen[-1].x >= min_gap) and last.x - p.x >= min_gap:
            chosen.append(p)
    return [(p.x, p.label) for p in [*chosen, last]]


def trend(rows: Sequence[Mapping[str, Any]], *, title: str, width: int = 780, height: int = 240) -> TrendChart:
    """Compliant % per run (not per day: two runs of a day are two points, labelled with their time) on a fixed
    0..100 axis (a zoomed axis would exaggerate small moves), oldest first."""

    def when(r: Mapping[str, Any]) -> str:
        return palette.run_time(str(r["run_id"]), str(r["snapshot_date"]), r.get("generated_at"))

    ordered = sorted(rows, key=lambda r: (str(r["snapshot_date"]), when(r), str(r["run_id"])))
    left, top, right, bottom = 44, 12, 16, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    step = plot_w / (len(ordered) - 1) if len(ordered) > 1 else 0.0
    points = []
    for i, row in enumerate(ordered):
        if row.get("compliant_pct") is None:
            continue
        x = left + (i * step if len(ordered) > 1 else plot_w / 2)
        y = top + plot_h * (1 - float(row["compliant_pct"]) / 100)
        at = when(row)
        text = f"{at} ({row['run_id']}): {fmt_pct(row['compliant_pct'])} of {int(row['nodes']):,} nodes"
        points.append(TrendPoint(round(x, 2), round(y, 2), at, fmt_pct(row["compliant_pct"]), text))
    path = " ".join(f"{'M' if i == 0 else 'L'}{p.x},{p.y}" for i, p in enumerate(points))
    area = f"{path} L{points[-1].x},{top + plot_h} L{points[0].x},{top + plot_h} Z" if len(points) > 1 else ""
    grid = [(round(top + plot_h * (1 - v / 100), 2), f"{v}%") for v in (0, 25, 50, 75, 100)]
    return TrendChart(
        title, width, height, left, top, plot_w, plot_h, points, path, area, grid, _spaced_labels(points, min_gap=120)
    )


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _short(text: str) -> str:
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"


def _open(chart: BarChart | TrendChart) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {chart.width} {chart.height}" '
        f'width="100%" style="max-width:{chart.width}px" role="img" aria-label="{_e(chart.title)}" '
        'preserveAspectRatio="xMinYMin meet" font-family="system-ui,-apple-system,Segoe UI,sans-serif" '
        'font-size="12" fill="currentColor">'
    )


def svg(chart: BarChart | TrendChart) -> str:
    """The chart as one inline ``<svg>`` element (plus a note paragraph when bars were left out)."""
    return _trend_svg(chart) if isinstance(chart, TrendChart) else _bar_svg(chart)


def _bar_svg(chart: BarChart) -> str:
    h, out = chart.bar_height, [_open(chart)]
    for bar in chart.bars:
        out.append(f'<g class="bar" transform="translate(0,{bar.y})"><title>{_e(bar.title)}</title>')
        out.append(
            f'<text class="bar-label" x="{chart.label_width - 10}" y="{h / 2}" dy="0.35em" '
            f'text-anchor="end">{_e(_short(bar.label))}</text>'
        )
        out.append(
            f'<rect class="track" x="{chart.label_width}" y="0" width="{chart.plot_width}" height="{h}" rx="3" '
            'fill="#eef1f4"></rect>'
        )
        for seg in bar.segments:
            out.append(
                f'<rect class="seg" data-key="{_e(seg.key)}" x="{seg.x}" y="0" width="{seg.width}" height="{h}" '
                f'fill="{seg.colour}"><title>{_e(seg.title)}</title></rect>'
            )
        out.append(
            f'<text class="bar-value" x="{chart.label_width + chart.plot_width + 8}" y="{h / 2}" dy="0.35em" '
            f'fill-opacity="0.75">{_e(bar.value_text)}</text></g>'
        )
    out.append("</svg>")
    if chart.note:
        out.append(f'<p class="chart-note">{_e(chart.note)}</p>')
    return "".join(out)


def _trend_svg(chart: TrendChart) -> str:
    out = [_open(chart)]
    right = chart.left + chart.plot_width
    for y, text in chart.gridlines:
        out.append(f'<line class="grid" x1="{chart.left}" x2="{right}" y1="{y}" y2="{y}" stroke="#e3e7ec"></line>')
        out.append(
            f'<text class="axis" x="{chart.left - 8}" y="{y}" dy="0.35em" text-anchor="end" '
            f'fill-opacity="0.75">{_e(text)}</text>'
        )
    if chart.area_path:
        out.append(f'<path class="area" d="{chart.area_path}" fill="{palette.ACCENT}" fill-opacity="0.08"></path>')
    if chart.path:
        out.append(
            f'<path class="line" d="{chart.path}" fill="none" stroke="{palette.ACCENT}" stroke-width="2.5" '
            'stroke-linejoin="round"></path>'
        )
    for p in chart.points:
        out.append(
            f'<circle class="point" cx="{p.x}" cy="{p.y}" r="4" fill="#ffffff" stroke="{palette.ACCENT}" '
            f'stroke-width="2"><title>{_e(p.title)}</title></circle>'
        )
    if chart.points:
        last = chart.points[-1]
        out.append(
            f'<text class="point-value" x="{last.x}" y="{last.y - 10}" text-anchor="end" '
            f'font-weight="700">{_e(last.value_text)}</text>'
        )
    n = len(chart.x_labels)
    for i, (x, text) in enumerate(chart.x_labels):
        anchor = "start" if i == 0 and n > 1 else ("end" if i == n - 1 and n > 1 else "middle")
        out.append(
            f'<text class="axis" x="{x}" y="{chart.top + chart.plot_height + 20}" text-anchor="{anchor}" '
            f'fill-opacity="0.75">{_e(text)}</text>'
        )
    out.append("</svg>")
    return "".join(out)
