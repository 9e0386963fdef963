"""The benchmark stays runnable (`make bench`): a tiny fleet through every mode, checking its output shape."""

from __future__ import annotations

from bench.bench_transform import run_one


def test_bench_runs_every_mode_on_a_tiny_fleet():
    result = run_one(2_000)
    stages = {mode: [s["stage"] for s in r["stages"]] for mode, r in result["results"].items()}
    writers = ["summarize", "parquet (6 tables)", "nodes.csv", "report.html"]
    assert stages == {
        "staged": ["previous snapshot", "assemble_tables", *writers],
        "json": ["previous snapshot", "read json", "build_tables", *writers],
        "roundtrip": ["read + write parquet"],
    }
    assert result["nodes"] == 200 and result["shards"] == 1 and result["input_arrow_mb"] > 0
    staged, json_path = result["results"]["staged"]["rows"], result["results"]["json"]["rows"]
    assert staged == json_path and staged["nodes"] > 0 and staged["patches"] > 0
    assert staged["delta"] > 0  # day 2 differs from day 1 for 1 node in 20
    for mode in ("staged", "json"):
        assert result[mode]["build_over_roundtrip"] > 0 and result[mode]["peak_over_inputs"] > 0
    assert result["roundtrip_peak_over_inputs"] > 0 and result["roundtrip_peak_rss_mb"] > 0
