"""Benchmark: peak memory of the Security Hub step for N member accounts, on the emulator.

    python bench/bench_securityhub.py                       # medium profile, 5 and 40 accounts
    python bench/bench_securityhub.py --accounts 5 20 40 --nodes 30

Starts the emulator as its own process (the findings it stores are not our memory), then per N a fresh
subprocess builds a synthetic nodes/patches table for N accounts × every Region of the profile (``--nodes`` per
account-region, half of them NON_COMPLIANT with 5 missing patches each) and runs ``publish_findings`` through
``MemberContexts`` (AssumeRole per account, member clients, BatchImportFindings). Printed per N: wall time,
peak RSS above the process's RSS before the call (ru_maxrss), and the growth per extra account between the
smallest and largest N. Target (issue 11): memory does not grow with the accounts a task touches.
"""

from __future__ import annotations

import argparse
import inspect
import json
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_accounts import _assumable, _rss_mb, sandbox_json, start_sandbox  # noqa: E402

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


def frames(accounts: list[str], regions: list[str], per_target: int):
    import pandas as pd
    import pyarrow as pa

    nodes, patches = [], []
    for account in accounts:
        for region in regions:
            for n in range(per_target):
                instance = f"i-{int(account) % 10**9:09x}{n:08x}"
                failing = n % 2 == 0
                nodes.append(
                    {
                        "ou_path": "Root/Workloads/Prod",
                        "account_id": account,
                        "account_name": f"acct-{account[-4:]}",
                        "region": region,
                        "instance_id": instance,
                        "instance_name": f"web-{n}",
                        "platform_type": "Linux",
                        "platform_name": "Amazon Linux",
                        "patch_group": "prod-linux",
                        "baseline_id": "pb-0123456789abcdef0",
                        "compliance_status": "NON_COMPLIANT" if failing else "COMPLIANT",
                        "critical_non_compliant_count": 1 if failing else 0,
                        "security_non_compliant_count": 5 if failing else 0,
                        "missing_count": 5 if failing else 0,
                        "installed_count": 400,
                        "last_operation": "Scan",
                        "last_scan_time": NOW - timedelta(hours=2),
                        "highest_missing_severity": "CRITICAL" if failing else None,
                    }
                )
                for k in range(5 if failing else 0):
                    patches.append(
                        {
                            "account_id": account,
                            "region": region,
                            "instance_id": instance,
                            "kb_id": f"KB{5000000 + k}",
                            "title": f"kernel-6.1.{k} security update",
                            "classification": "Security",
                            "severity": "CRITICAL" if k == 0 else "HIGH",
                            "state": "MISSING",
                            "cve_ids": [f"CVE-2026-{1000 + k}"],
                            "first_seen": NOW - timedelta(days=10 + k),
                            "age_days": 10 + k,
                            "sla_breached": k == 0,
                        }
                    )
    as_frame = lambda rows: pa.Table.from_pylist(rows).to_pandas(types_mapper=pd.ArrowDtype)  # noqa: E731
    return as_frame(nodes), as_frame(patches)


def run_child(url: str, count: int, per_target: int) -> dict:
    import os

    os.environ.update({"AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
    os.environ.pop("AWS_SESSION_TOKEN", None)
    from include.patch_compliance.aws import context_from_connection
    from include.patch_compliance.aws.members import MemberContexts
    from include.patch_compliance.config import AccessConfig, SecurityHubConfig
    from include.patch_compliance.publish.securityhub import publish_findings

    fleet = sandbox_json(url, "/_sandbox/fleet")
    accounts = _assumable(fleet)[:count]
    nodes, patches = frames(accounts, fleet["regions"], per_target)
    access = AccessConfig(member_role_name=fleet["member_role_name"])
    members = MemberContexts(context_from_connection(None), access, "bench")
    kwargs = {}
    if "release" in inspect.signature(publish_findings).parameters:
        kwargs["release"] = members.release
    import gc

    gc.collect()
    before = _rss_mb()
    start = time.perf_counter()
    result = publish_findings(
        members.get, nodes, patches, cfg=SecurityHubConfig(), run_id=f"bench-{count}", now=NOW, max_workers=4, **kwargs
    )
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    gc.collect()
    return {
        "accounts": len(accounts),
        "targets": len(accounts) * len(fleet["regions"]),
        "nodes": len(nodes),
        "patches": len(patches),
        "seconds": seconds,
        "rss_before_mb": before,
        "peak_over_before_mb": peak - before,
        "retained_mb": _rss_mb() - before,
        "created": result.created,
        "errors": len(result.errors),
        "live_contexts": getattr(members, "live", None),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="medium", choices=("small", "medium", "large"))
    parser.add_argument("--accounts", type=int, nargs="+", default=[5, 40])
    parser.add_argument("--nodes", type=int, default=30, help="nodes per account-region")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_child(args.url, args.child, args.nodes)))
        return 0
    proc, url = start_sandbox(args.profile)
    rows = []
    try:
        for count in args.accounts:
            cmd = [sys.executable, __file__, "--child", str(count), "--url", url, "--nodes", str(args.nodes)]
            out = subprocess.run(cmd, cwd=Path.cwd(), capture_output=True, text=True, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    print(f"profile {args.profile}: publish_findings, {args.nodes} nodes per account-region")
    head = ("accounts", "targets", "nodes", "s", "peak MB over start", "retained MB", "live")
    print(" ".join(f"{h:>{w}}" for h, w in zip(head, (8, 8, 7, 7, 19, 12, 5), strict=True)))
    for r in rows:
        print(
            f"{r['accounts']:>8} {r['targets']:>8} {r['nodes']:>7} {r['seconds']:>7.1f} "
            f"{r['peak_over_before_mb']:>19.1f} {r['retained_mb']:>12.1f} {r['live_contexts']!s:>5}"
        )
    if len(rows) > 1:
        slope = (rows[-1]["peak_over_before_mb"] - rows[0]["peak_over_before_mb"]) / (
            rows[-1]["accounts"] - rows[0]["accounts"]
        )
        print(f"peak growth per extra account: {slope:.2f} MB")
    print(json.dumps({"bench": "securityhub", "profile": args.profile, "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
