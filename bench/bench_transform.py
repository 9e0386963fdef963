"""Benchmark: a synthetic fleet through build_tables and the report writers (to bytes, no S3).

    python bench/bench_transform.py                 # 10k, 100k and 1M patch rows, one subprocess each
    python bench/bench_transform.py --rows 100000   # one size, in this process

Stages: day 1 (first run, no previous), its nodes/patches read back through Parquet as the previous snapshot,
then the measured daily run: day 2 build_tables with that previous snapshot (first_seen carried, delta) plus
summarize and every writer. Prints wall and CPU seconds, patch rows/s and RSS per stage; peak RSS is the process
high-water mark after the stage (ru_maxrss), so it includes the input documents. Target: 1,000,000 patch rows
(100,000 nodes) in <= 20 s and <= 2.5 GB on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIZES = (10_000, 100_000, 1_000_000)
PATCHES_PER_NODE = 10
SLA = {"CRITICAL": 7, "HIGH": 14, "MEDIUM": 30, "LOW": 90, "INFORMATIONAL": 180, "UNSPECIFIED": 90}


def _rss_mb() -> tuple[float, float]:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    current = peak
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                current = int(line.split()[1]) / 1024
    except OSError:
        pass
    return current, peak


def run_one(rows: int) -> dict:
    from bench.synthetic import NOW, fleet
    from include.patch_compliance.publish.report_files import csv_bytes, parquet_bytes, read_parquet_bytes
    from include.patch_compliance.publish.report_html import render_html
    from include.patch_compliance.transform import PreviousSnapshot, build_tables
    from include.patch_compliance.transform.schema import NODES, PATCHES, RUN_TABLES
    from include.patch_compliance.transform.summary import summarize

    stages = []

    def stage(name: str, func):
        start, cpu_start = time.perf_counter(), time.process_time()
        result = func()
        seconds = time.perf_counter() - start
        cpu = time.process_time() - cpu_start
        current, peak = _rss_mb()
        stages.append(
            {
                "stage": name,
                "seconds": round(seconds, 3),
                "cpu_seconds": round(cpu, 3),
                "rows_per_s": round(rows / seconds) if seconds else 0,
                "rss_mb": round(current),
                "peak_rss_mb": round(peak),
            }
        )
        return result

    nodes = rows // PATCHES_PER_NODE
    day0, day1 = NOW - timedelta(days=1), NOW
    docs, commands = stage("generate input", lambda: fleet(nodes, patches_per_node=PATCHES_PER_NODE, now=day0))
    first = stage(
        "build_tables day 1",
        lambda: build_tables(
            docs,
            commands,
            None,
            run_id="day1",
            dag_id="bench",
            snapshot_date=day0.date(),
            now=day0,
            sla_days=SLA,
            stale_after_days=7,
        ),
    )
    previous = stage(
        "previous via parquet",
        lambda: PreviousSnapshot(
            "day1",
            day0.date(),
            read_parquet_bytes(parquet_bytes(first["nodes"], NODES), NODES, day0.date()),
            read_parquet_bytes(parquet_bytes(first["patches"], PATCHES), PATCHES, day0.date()),
        ),
    )
    first = docs = commands = None  # free day 1 before day 2
    docs, commands = stage(
        "generate input day 2", lambda: fleet(nodes, patches_per_node=PATCHES_PER_NODE, seed=8, now=day1)
    )
    tables = stage(
        "build_tables day 2",
        lambda: build_tables(
            docs,
            commands,
            previous,
            run_id="day2",
            dag_id="bench",
            snapshot_date=day1.date(),
            now=day1,
            sla_days=SLA,
            stale_after_days=7,
        ),
    )
    summary = stage(
        "summarize",
        lambda: summarize(tables, run_id="day2", dag_id="bench", snapshot_date=day1.date(), generated_at=day1),
    )
    sizes = stage("parquet (6 tables)", lambda: {n: len(parquet_bytes(tables[n], t)) for n, t in RUN_TABLES.items()})
    csv_size = stage("nodes.csv", lambda: len(csv_bytes(tables["nodes"])))
    html_size = stage("report.html", lambda: len(render_html(summary, tables)))
    # The daily run: day 2 with a previous snapshot (first_seen carried, delta) plus every writer.
    work_stages = [
        s
        for s in stages
        if s["stage"] in ("build_tables day 2", "summarize", "parquet (6 tables)", "nodes.csv", "report.html")
    ]
    work = sum(s["seconds"] for s in work_stages)
    cpu = sum(s["cpu_seconds"] for s in work_stages)
    return {
        "patch_rows": rows,
        "nodes": nodes,
        "rows": {name: len(frame) for name, frame in tables.items()},
        "bytes": {**sizes, "nodes.csv": csv_size, "report.html": html_size},
        "stages": stages,
        "transform_and_write_seconds": round(work, 3),
        "transform_and_write_cpu_seconds": round(cpu, 3),
        "transform_and_write_rows_per_s": round(rows / work),
        "peak_rss_mb": stages[-1]["peak_rss_mb"],
    }


def print_result(result: dict) -> None:
    print(f"\n== {result['patch_rows']:,} patch rows / {result['nodes']:,} nodes ==")
    print(f"{'stage':<26}{'seconds':>9}{'cpu s':>9}{'rows/s':>13}{'rss MB':>9}{'peak MB':>9}")
    for s in result["stages"]:
        print(
            f"{s['stage']:<26}{s['seconds']:>9.2f}{s['cpu_seconds']:>9.2f}{s['rows_per_s']:>13,}"
            f"{s['rss_mb']:>9,}{s['peak_rss_mb']:>9,}"
        )
    print(
        f"{'daily run (day 2+writers)':<26}{result['transform_and_write_seconds']:>9.2f}"
        f"{result['transform_and_write_cpu_seconds']:>9.2f}{result['transform_and_write_rows_per_s']:>13,}"
        f"{'':>9}{result['peak_rss_mb']:>9,}"
    )
    print("output rows:", ", ".join(f"{k}={v:,}" for k, v in result["rows"].items()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, help="one size, in this process")
    parser.add_argument("--json", action="store_true", help="print the result as JSON (with --rows)")
    args = parser.parse_args()
    if args.rows:
        result = run_one(args.rows)
        print(json.dumps(result) if args.json else "", end="\n" if args.json else "")
        if not args.json:
            print_result(result)
        return 0
    results = []
    for rows in SIZES:  # a fresh process per size, so peak RSS is that size's own
        out = subprocess.run(
            [sys.executable, __file__, "--rows", str(rows), "--json"],
            check=True,
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print_result(results[-1])
    base = results[0]
    print("\nscaling (time per patch row relative to the smallest size):")
    for r in results:
        ratio = (r["transform_and_write_seconds"] / r["patch_rows"]) / (
            base["transform_and_write_seconds"] / base["patch_rows"]
        )
        print(
            f"  {r['patch_rows']:>9,} rows: {r['transform_and_write_seconds']:6.2f} s, x{ratio:.2f} per row, "
            f"peak {r['peak_rss_mb']:,} MB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
