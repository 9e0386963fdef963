"""Chart geometry: bars proportional to the figures, worst OU first, trend on a fixed 0..100 axis."""

from __future__ import annotations

import pytest

from include.patch_compliance.ui import charts
from include.patch_compliance.ui.summary_model import OuRow, TrendRow
from include.patch_compliance.vocab import SEVERITIES


def ou(path: str, nodes: int, compliant: int, non_compliant: int) -> OuRow:
    pct = round(100 * compliant / nodes, 2) if nodes else None
    return OuRow(ou_path=path, nodes=nodes, compliant=compliant, non_compliant=non_compliant, compliant_pct=pct)


def test_ou_bars_split_by_share_and_worst_first() -> None:
    chart = charts.ou_chart([ou("Root/Prod", 100, 90, 10), ou("Root/Dev", 40, 10, 20), ou("Root/Empty", 0, 0, 0)])
    assert [b.label for b in chart.bars] == ["Root/Empty", "Root/Dev", "Root/Prod"]
    dev = chart.bars[1]
    assert [(s.css, s.title) for s in dev.segments] == [
        ("ok", "10 compliant"),
        ("bad", "20 non-compliant"),
        ("unknown", "10 unknown"),
    ]
    assert [s.width for s in dev.segments] == pytest.approx([chart.plot_width * f for f in (0.25, 0.5, 0.25)], abs=0.01)
    assert dev.segments[1].x == pytest.approx(chart.label_width + chart.plot_width * 0.25, abs=0.01)
    assert dev.value_text == "25.0%"
    assert chart.bars[0].segments == [] and chart.bars[0].value_text == "n/a"


def test_ou_chart_caps_the_bars_and_says_how_many_are_left_out() -> None:
    rows = [ou(f"Root/OU{i:02d}", 10, i % 10, 10 - i % 10) for i in range(15)]
    chart = charts.ou_chart(rows)
    assert len(chart.bars) == charts.MAX_OU_BARS
    assert chart.note == "and 3 more OUs, in the full report"


def test_count_chart_keeps_severity_order_and_scales_to_the_largest() -> None:
    chart = charts.count_chart({"LOW": 5, "CRITICAL": 20, "WEIRD": 1, "HIGH": 0}, SEVERITIES, css_prefix="sev")
    assert [b.label for b in chart.bars] == ["Critical", "High", "Low", "Weird"]
    assert chart.bars[0].segments[0].width == pytest.approx(chart.plot_width)
    assert chart.bars[2].segments[0].width == pytest.approx(chart.plot_width / 4)
    assert chart.bars[1].segments == []
    assert chart.bars[3].segments[0].css == "sev-other"


def test_trend_maps_percent_to_a_fixed_axis_oldest_first() -> None:
    rows = [
        TrendRow(run_id="b", snapshot_date="2026-11-02", nodes=10, compliant_pct=0.0),
        TrendRow(run_id="a", snapshot_date="2026-11-01", nodes=10, compliant_pct=100.0),
        TrendRow(run_id="c", snapshot_date="2026-11-03", nodes=10, compliant_pct=50.0),
    ]
    chart = charts.trend_chart(rows)
    top, bottom = chart.top, chart.top + chart.plot_height
    assert [p.label for p in chart.points] == ["2026-11-01", "2026-11-02", "2026-11-03"]
    assert [p.y for p in chart.points] == pytest.approx([top, bottom, (top + bottom) / 2])
    assert [p.x for p in chart.points] == pytest.approx(
        [chart.left, chart.left + chart.plot_width / 2, chart.left + chart.plot_width]
    )
    assert chart.path.startswith(f"M{chart.points[0].x},{chart.points[0].y} L")
    assert chart.gridlines[0] == (pytest.approx(bottom), "0%")


def test_trend_with_a_single_run_has_a_point_but_no_line_area() -> None:
    chart = charts.trend_chart([TrendRow(run_id="a", snapshot_date="2026-11-01", nodes=3, compliant_pct=66.7)])
    assert len(chart.points) == 1 and chart.area_path == ""
    assert chart.points[0].x == pytest.approx(chart.left + chart.plot_width / 2)
