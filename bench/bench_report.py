"""Benchmark: the collect and report steps against the emulator, in-process steps, one fresh process per step.

    python bench/bench_report.py --profile medium            # medium, then print the figures
    python bench/bench_report.py --profile medium --profile large --json artifacts/bench-report.json

The emulator runs in this process (``sandbox.testing.running_sandbox``); the collect step (discover + every
shard's ``steps.collect_shard`` with its own run context, as a task instance has, shards in a small thread
pool) and the report step (``steps.report``) each run
in a child process, so each peak RSS (``ru_maxrss``) is that step's own. Printed per profile: targets, nodes,
calls per AWS action during collect, collect wall time, report wall time, report peak RSS, the RSS the report
process had before the step (imports) and the Arrow size of the tables the report published (read back after
the peak was recorded), with peak ÷ Arrow size and (peak − before) ÷ Arrow size.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BUCKET = "pc-bench-reports"
RUN_ID = "bench-report"
SHARD_THREADS = 4


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _run_context(run_after: str):
    from datetime import datetime

    from include.patch_compliance.aws import context_from_connection
    from include.patch_compliance.config import load_config, parse_config
    from include.patch_compliance.runtime import RunContext

    raw = load_config().model_dump(mode="json")
    raw["reports"] = {"bucket": BUCKET, "prefix": "bench"}
    raw["security_hub"] = {**raw["security_hub"], "enabled": False}
    raw["regions"] = json.loads(os.environ["PC_BENCH_REGIONS"])
    cfg = parse_config(raw)
    return RunContext(
        cfg=cfg,
        dag_id="patch_compliance_collect",
        run_id=RUN_ID,
        hub=context_from_connection(None),
        run_after=datetime.fromisoformat(run_after),
    )


def child_collect(run_after: str) -> dict:
    from concurrent.futures import ThreadPoolExecutor

    from include.patch_compliance import steps

    start = time.perf_counter()
    plan = steps.plan_fleet(_run_context(run_after))
    refs = [ref for wave in plan["waves"].values() for ref in wave]
    # A fresh run context per shard, as every Airflow task instance has its own (member contexts included).
    with ThreadPoolExecutor(max_workers=SHARD_THREADS) as pool:
        results = list(pool.map(lambda ref: steps.collect_shard(_run_context(run_after), ref), refs))
    return {
        "collect_s": round(time.perf_counter() - start, 2),
        "collect_peak_rss_mb": round(_peak_mb()),
        "targets": plan["targets"],
        "shards": len(refs),
        "nodes": sum(r["nodes"] for r in results),
    }


def child_report(run_after: str) -> dict:
    import pyarrow.parquet as pq

    from include.patch_compliance import steps
    from include.patch_compliance.publish import reports as _reports  # noqa: F401 - import cost before the step
    from include.patch_compliance.storage import get_bytes, parse_s3_uri

    run = _run_context(run_after)
    run.hub.client("s3")
    before = _rss_mb()
    start, cpu = time.perf_counter(), time.process_time()
    result = steps.report(run)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    peak = _peak_mb()
    summary = json.loads(get_bytes(run.hub, *parse_s3_uri(result["summary_uri"])))
    arrow_bytes, rows = 0, {}
    import io

    for name, uri in summary["tables"].items():
        table = pq.read_table(io.BytesIO(get_bytes(run.hub, *parse_s3_uri(uri))))
        arrow_bytes += table.nbytes
        rows[name] = table.num_rows
    arrow_mb = arrow_bytes / 2**20
    return {
        "report_s": round(seconds, 2),
        "report_cpu_s": round(cpu, 2),
        "report_peak_rss_mb": round(peak),
        "report_rss_before_mb": round(before),
        "tables_arrow_mb": round(arrow_mb, 1),
        "peak_over_arrow": round(peak / arrow_mb, 2) if arrow_mb else None,
        "growth_over_arrow": round((peak - before) / arrow_mb, 2) if arrow_mb else None,
        "rows": rows,
    }


def _child(step: str, env: dict[str, str], run_after: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", step, "--run-after", run_after],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
    )
    if out.returncode:
        print(f"{step} step failed ({out.returncode}):\n{out.stderr[-4000:]}", file=sys.stderr)
        raise SystemExit(1)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_profile(profile: str) -> dict:
    from datetime import UTC, datetime

    from sandbox.testing import running_sandbox

    with running_sandbox(profile=profile, seed=7, time_scale=0) as sb:
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "AWS_ENDPOINT_URL": sb.url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "PATCH_COMPLIANCE_CONFIG": str(ROOT / "sandbox" / "fleet-config.yaml"),
            "PC_BENCH_REGIONS": json.dumps(list(sb.fleet["regions"])),
        }
        env.pop("AWS_SESSION_TOKEN", None)
        env.pop("AWS_PROFILE", None)
        sb.client("s3").create_bucket(Bucket=BUCKET)
        run_after = datetime.now(UTC).replace(microsecond=0).isoformat()
        collected = _child("collect", env, run_after)
        calls = {k: v for k, v in sb.calls().items() if k.startswith(("ssm.", "ec2.", "sts."))}
        sb.reset_calls()
        reported = _child("report", env, run_after)
        report_calls = {k: v for k, v in sb.calls().items() if k.startswith("s3.")}
    return {"profile": profile, **collected, "collect_calls": calls, **reported, "report_s3_calls": report_calls}


def print_result(r: dict) -> None:
    print(f"\n== profile {r['profile']}: {r['targets']:,} targets, {r['shards']} shards, {r['nodes']:,} nodes ==")
    print(f"collect: {r['collect_s']:.1f} s, peak RSS {r['collect_peak_rss_mb']:,} MB")
    print("collect calls: " + ", ".join(f"{k}={v:,}" for k, v in r["collect_calls"].items()))
    print(
        f"report:  {r['report_s']:.1f} s ({r.get('report_cpu_s', 0):.1f} s CPU), "
        f"peak RSS {r['report_peak_rss_mb']:,} MB (before the step {r['report_rss_before_mb']:,} MB), "
        f"tables {r['tables_arrow_mb']:,} MB as Arrow"
    )
    print(f"report peak / Arrow size: {r['peak_over_arrow']}, (peak - before) / Arrow size: {r['growth_over_arrow']}")
    print("report S3 calls: " + ", ".join(f"{k}={v:,}" for k, v in r["report_s3_calls"].items()))
    print("rows: " + ", ".join(f"{k}={v:,}" for k, v in r["rows"].items()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", action="append", choices=("small", "medium", "large"))
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--child", choices=("collect", "report"), help=argparse.SUPPRESS)
    parser.add_argument("--run-after", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        func = child_collect if args.child == "collect" else child_report
        print(json.dumps(func(args.run_after)))
        return 0
    results = []
    for profile in args.profile or ["medium"]:
        results.append(run_profile(profile))
        print_result(results[-1])
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
