"""The benchmark stays runnable (`make bench`): a tiny fleet through every stage, checking its output shape."""

from __future__ import annotations

from bench.bench_transform import run_one


def test_bench_runs_every_stage_on_a_tiny_fleet():
    result = run_one(2_000)
    assert [s["stage"] for s in result["stages"]] == [
        "generate input",
        "build_tables day 1",
        "previous via parquet",
        "generate input day 2",
        "build_tables day 2",
        "summarize",
        "parquet (6 tables)",
        "nodes.csv",
        "report.html",
    ]
    assert result["nodes"] == 200 and result["rows"]["nodes"] > 0 and result["rows"]["patches"] > 0
    assert result["rows"]["delta"] > 0  # day 2 differs from day 1 for 1 node in 20
    assert all(size > 0 for size in result["bytes"].values())
    assert result["peak_rss_mb"] > 0
