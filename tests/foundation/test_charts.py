"""The one chart module (report and page): bars proportional to the figures, worst first, the trend per run on a
fixed 0..100 axis, one palette and human labels, escaped and deterministic SVG."""

from __future__ import annotations

import re

import pytest

from include.patch_compliance import charts, palette
from include.patch_compliance.vocab import SEVERITIES


def ou(path: str, nodes: int, compliant: int, non_compliant: int) -> dict:
    pct = round(100 * compliant / nodes, 2) if nodes else None
    return {
        "ou_path": path,
        "nodes": nodes,
        "compliant": compliant,
        "non_compliant": non_compliant,
        "compliant_pct": pct,
    }


def run(run_id: str, day: str, pct: float | None, nodes: int = 10, **extra) -> dict:
    return {"run_id": run_id, "snapshot_date": day, "nodes": nodes, "compliant_pct": pct, **extra}


def test_share_bars_split_by_share_and_worst_first() -> None:
    rows = [ou("Root/Prod", 100, 90, 10), ou("Root/Dev", 40, 10, 20), ou("Root/Empty", 0, 0, 0)]
    chart = charts.share_bars(rows, label_key="ou_path", title="Compliance by OU")
    assert [b.label for b in chart.bars] == ["Root/Empty", "Root/Dev", "Root/Prod"]
    dev = chart.bars[1]
    assert [(s.key, s.title, s.colour) for s in dev.segments] == [
        ("COMPLIANT", "10 compliant", palette.COMPLIANCE_COLOURS["COMPLIANT"]),
        ("NON_COMPLIANT", "20 non-compliant", palette.COMPLIANCE_COLOURS["NON_COMPLIANT"]),
        ("UNKNOWN", "10 unknown", palette.COMPLIANCE_COLOURS["UNKNOWN"]),
    ]
    assert [s.width for s in dev.segments] == pytest.approx([chart.plot_width * f for f in (0.25, 0.5, 0.25)], abs=0.01)
    assert dev.segments[1].x == pytest.approx(chart.label_width + chart.plot_width * 0.25, abs=0.01)
    assert dev.value_text == "25.0%"
    assert chart.bars[0].segments == [] and chart.bars[0].value_text == "n/a"


def test_share_bars_cap_the_bars_and_say_how_many_are_left_out() -> None:
    rows = [ou(f"Root/OU{i:02d}", 10, i % 10, 10 - i % 10) for i in range(15)]
    chart = charts.share_bars(rows, label_key="ou_path", title="t")
    assert len(chart.bars) == charts.MAX_BARS
    assert chart.note == "and 3 more, in the tables below"
    assert '<p class="chart-note">and 3 more' in charts.svg(chart)


def test_count_bars_keep_severity_order_scale_to_the_largest_and_use_human_labels() -> None:
    chart = charts.count_bars({"LOW": 5, "CRITICAL": 20, "WEIRD_ONE": 1, "HIGH": 0}, SEVERITIES, title="t")
    assert [b.label for b in chart.bars] == ["Critical", "High", "Low", "Weird one"]
    assert chart.bars[0].segments[0].width == pytest.approx(chart.plot_width)
    assert chart.bars[2].segments[0].width == pytest.approx(chart.plot_width / 4)
    assert chart.bars[1].segments == []
    assert chart.bars[3].segments[0].colour == palette.OTHER_COLOUR  # unknown value: kept, drawn, neutral


def test_coverage_labels_are_words_not_enum_names() -> None:
    chart = charts.count_bars({"SCAN_FAILED": 2, "NOT_SCANNED": 1}, palette.COVERAGE_ORDER, title="t")
    assert [b.label for b in chart.bars] == ["Not scanned", "Scan failed"]
    assert "SCAN_FAILED" not in re.sub(r'data-key="[^"]*"', "", charts.svg(chart))


def test_critical_is_one_colour_in_every_chart() -> None:
    severity = charts.count_bars({"CRITICAL": 3}, SEVERITIES, title="t")
    ranked = charts.ranked_bars([charts.Item("CVE-2024-1", 3, "CRITICAL")], title="t")
    assert severity.bars[0].segments[0].colour == ranked.bars[0].segments[0].colour == palette.colour("CRITICAL")
    assert f"--sev-critical:{palette.colour('CRITICAL')}" in palette.css_variables()


def test_trend_is_per_run_on_a_fixed_axis_oldest_first() -> None:
    rows = [run("b", "2026-11-02", 0.0), run("a", "2026-11-01", 100.0), run("c", "2026-11-03", 50.0)]
    chart = charts.trend(rows, title="t")
    top, bottom = chart.top, chart.top + chart.plot_height
    assert [p.label for p in chart.points] == ["2026-11-01", "2026-11-02", "2026-11-03"]
    assert [p.y for p in chart.points] == pytest.approx([top, bottom, (top + bottom) / 2])
    assert [p.x for p in chart.points] == pytest.approx(
        [chart.left, chart.left + chart.plot_width / 2, chart.left + chart.plot_width]
    )
    assert chart.path.startswith(f"M{chart.points[0].x},{chart.points[0].y} L")
    assert chart.gridlines[0] == (pytest.approx(bottom), "0%")


def test_two_runs_of_one_day_are_two_points_told_apart_by_their_time() -> None:
    rows = [
        run("manual__2026-11-29T14:05:00+00:00", "2026-11-29", 90.0),
        run("scheduled__2026-11-29T03:00:00+00:00", "2026-11-29", 80.0),
        run("manual__x", "2026-11-29", 85.0, generated_at="2026-11-29T09:30:12Z"),
    ]
    chart = charts.trend(rows, title="t")
    assert [p.label for p in chart.points] == ["2026-11-29 03:00", "2026-11-29 09:30", "2026-11-29 14:05"]
    assert "manual__x" in chart.points[1].title


def test_trend_with_a_single_run_has_a_point_but_no_line_area() -> None:
    chart = charts.trend([run("a", "2026-11-01", 66.7, nodes=3)], title="t")
    assert len(chart.points) == 1 and chart.area_path == ""
    assert chart.points[0].x == pytest.approx(chart.left + chart.plot_width / 2)


def test_svg_escapes_labels_and_is_deterministic() -> None:
    rows = [ou("<script>x</script>", 4, 1, 2)]
    first = charts.svg(charts.share_bars(rows, label_key="ou_path", title='OU "a"'))
    assert "<script>" not in first and "&lt;script&gt;" in first and 'aria-label="OU &quot;a&quot;"' in first
    assert first == charts.svg(charts.share_bars(rows, label_key="ou_path", title='OU "a"'))
    assert "http" not in first.replace('xmlns="http://www.w3.org/2000/svg"', "")  # no external reference


def test_run_time_reads_generated_at_then_the_run_id_then_the_date() -> None:
    assert palette.run_time("r", "2026-11-29", "2026-11-29T03:41:07Z") == "2026-11-29 03:41"
    assert palette.run_time("scheduled__2026-11-29T03:00:00+00:00", "2026-11-29") == "2026-11-29 03:00"
    assert palette.run_time("manual_weird", "2026-11-29") == "2026-11-29"
