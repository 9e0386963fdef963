"""Geometry for the page's inline SVG charts; the templates only draw what these functions computed.

Hand-made rather than matplotlib: the page needs a few bars and a line that follow the page's CSS (colours, fonts,
dark/light), stay a few KB, and can be checked in tests by their numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from include.patch_compliance.ui.summary_model import OuRow, TrendRow

COVERAGE_ORDER = ("SCANNED", "STALE", "NOT_SCANNED", "OFFLINE", "SCAN_FAILED", "UNMANAGED", "UNREACHABLE")
MAX_OU_BARS = 12


@dataclass(frozen=True)
class Segment:
    x: float
    width: float
    css: str
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


def _spaced_labels(points: list[TrendPoint], *, min_gap: float) -> list[tuple[float, str]]:
    """Date labels at least ``min_gap`` px apart, always the last (latest) one, then the first and every other
    point that fits, so dates never overlap however many runs there are."""
    if not points:
        return []
    last = points[-1]
    chosen: list[TrendPoint] = []
    for p in points[:-1]:
        if (not chosen or p.x - chosen[-1].x >= min_gap) and last.x - p.x >= min_gap:
            chosen.append(p)
    return [(p.x, p.label) for p in [*chosen, last]]


def _fmt_pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}%"


def ou_chart(rows: list[OuRow], *, width: int = 780, label_width: int = 200, bar_height: int = 22) -> BarChart:
    """One 100% bar per OU split into compliant / non-compliant / unknown, worst OU first."""
    ordered = sorted(rows, key=lambda r: (r.compliant_pct if r.compliant_pct is not None else -1, r.ou_path))
    shown = ordered[:MAX_OU_BARS]
    plot = width - label_width - 64
    bars = []
    for i, row in enumerate(shown):
        unknown = max(row.nodes - row.compliant - row.non_compliant, 0)
        x = float(label_width)
        segments = []
        for count, css, what in (
            (row.compliant, "ok", "compliant"),
            (row.non_compliant, "bad", "non-compliant"),
            (unknown, "unknown", "unknown"),
        ):
            w = plot * count / row.nodes if row.nodes else 0.0
            if w > 0:
                segments.append(Segment(x=round(x, 2), width=round(w, 2), css=css, title=f"{count} {what}"))
            x += w
        bars.append(
            Bar(
                label=row.ou_path,
                y=i * (bar_height + 10),
                segments=segments,
                value_text=_fmt_pct(row.compliant_pct),
                title=f"{row.ou_path}: {row.compliant} of {row.nodes} nodes compliant",
            )
        )
    more = len(ordered) - len(shown)
    note = f"and {more} more OU{'s' if more > 1 else ''}, in the full report" if more > 0 else ""
    height = max(len(bars), 1) * (bar_height + 10)
    return BarChart(width, height, label_width, plot, bar_height, bars, note)


def count_chart(
    counts: dict[str, int], order: tuple[str, ...], *, css_prefix: str, width: int = 365, label_width: int = 104
) -> BarChart:
    """Bars proportional to the largest count, in a fixed order (known keys first, then any others sorted)."""
    keys = [k for k in order if k in counts] + sorted(k for k in counts if k not in order)
    top = max((counts[k] for k in keys), default=0)
    bar_height = 20
    plot = width - label_width - 56
    bars = []
    for i, key in enumerate(keys):
        value = counts[key]
        w = plot * value / top if top else 0.0
        css = f"{css_prefix}-{key.lower()}" if key in order else f"{css_prefix}-other"
        segments = [Segment(x=float(label_width), width=round(w, 2), css=css, title=f"{key}: {value}")] if w else []
        label = key.replace("_", " ").title()
        bars.append(Bar(label, i * (bar_height + 8), segments, f"{value:,}", f"{label}: {value:,}"))
    height = max(len(bars), 1) * (bar_height + 8)
    return BarChart(width, height, label_width, plot, bar_height, bars)


def trend_chart(rows: list[TrendRow], *, width: int = 780, height: int = 240) -> TrendChart:
    """Compliant % per run on a fixed 0..100 axis (a zoomed axis would exaggerate small moves), oldest first."""
    ordered = sorted(rows, key=lambda r: (r.snapshot_date, r.run_id))
    left, top, right, bottom = 44, 12, 16, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    step = plot_w / (len(ordered) - 1) if len(ordered) > 1 else 0.0
    points = []
    for i, row in enumerate(ordered):
        if row.compliant_pct is None:
            continue
        x = left + (i * step if len(ordered) > 1 else plot_w / 2)
        y = top + plot_h * (1 - row.compliant_pct / 100)
        points.append(
            TrendPoint(
                x=round(x, 2),
                y=round(y, 2),
                label=row.snapshot_date,
                value_text=_fmt_pct(row.compliant_pct),
                title=f"{row.snapshot_date} ({row.run_id}): {_fmt_pct(row.compliant_pct)} of {row.nodes} nodes",
            )
        )
    path = " ".join(f"{'M' if i == 0 else 'L'}{p.x},{p.y}" for i, p in enumerate(points))
    area = f"{path} L{points[-1].x},{top + plot_h} L{points[0].x},{top + plot_h} Z" if len(points) > 1 else ""
    grid = [(round(top + plot_h * (1 - v / 100), 2), f"{v}%") for v in (0, 25, 50, 75, 100)]
    x_labels = _spaced_labels(points, min_gap=110)
    return TrendChart(width, height, left, top, plot_w, plot_h, points, path, area, grid, x_labels)
