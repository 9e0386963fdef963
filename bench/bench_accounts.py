"""Benchmark: what each extra member account costs the AWS access layer (AssumeRole + one client), before/after.

    python bench/bench_accounts.py                    # medium profile, every assumable account, both modes
    python bench/bench_accounts.py --profile large --accounts 200

Starts the emulator as its own process (its memory is not ours), then runs each mode in a fresh subprocess:

* ``legacy``: the access pattern this project had before issue 11, reproduced here for comparison: a new
  botocore + boto3 session per account (service models loaded again for each), every context kept to the end.
* ``current``: ``aws.members.MemberContexts`` as the steps use it: ``get`` → ``client`` → ``release``.

Per mode it prints the first account's cost, then per extra account the wall time, the part of it spent in the
AssumeRole round trip to the emulator (timed around the call; the emulator's speed, not ours), the rest (the
access layer's own cost), and the RSS retained after a ``gc.collect()`` (current RSS, /proc/self/status); then
the ratio legacy ÷ current from the same run.
Target (issue 11): after the first, each extra account costs ≤ 2 MB retained and ≤ 20 ms.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

REGION = "eu-west-1"


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status (Linux only)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_sandbox(profile: str) -> tuple[subprocess.Popen, str]:
    """``python -m sandbox serve`` as a child process; returns it and its URL once /_sandbox/health answers."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "serve", "--port", str(port), "--profile", profile, "--time-scale", "0"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_sandbox/health", timeout=2):
                return proc, url
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"the emulator did not answer on {url} within 60 s")


def sandbox_json(url: str, path: str) -> dict:
    with urllib.request.urlopen(url + path, timeout=30) as resp:
        return json.loads(resp.read())


def _legacy_assume(hub, account_id: str, role_name: str):
    """The pre-issue-11 ``AwsContext.assume`` body: a fresh botocore session (and model loader) per account."""
    import boto3
    import botocore.session
    from botocore.credentials import RefreshableCredentials

    from include.patch_compliance.aws import AwsContext

    sts = hub.client("sts")
    params = {"RoleArn": f"arn:aws:iam::{account_id}:role/{role_name}", "RoleSessionName": "bench"}

    def fetch() -> dict:
        creds = sts.assume_role(**params)["Credentials"]
        return {
            "access_key": creds["AccessKeyId"],
            "secret_key": creds["SecretAccessKey"],
            "token": creds["SessionToken"],
            "expiry_time": creds["Expiration"].isoformat(),
        }

    core = botocore.session.get_session()
    core._credentials = RefreshableCredentials.create_from_metadata(  # noqa: SLF001 - as the old code did
        metadata=fetch(), refresh_using=fetch, method="sts-assume-role"
    )
    session = boto3.Session(botocore_session=core, region_name="us-east-1")
    return AwsContext(session=session, endpoint_url=hub.endpoint_url, account_id=account_id)


def run_mode(mode: str, url: str, accounts: list[str], role_name: str) -> dict:
    """One mode in this process: per-account wall time (and the AssumeRole round trips within it) and the RSS
    retained after the first account."""
    os.environ.update({"AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
    os.environ.pop("AWS_SESSION_TOKEN", None)
    from include.patch_compliance.aws import context_from_connection
    from include.patch_compliance.aws.members import MemberContexts
    from include.patch_compliance.config import AccessConfig

    hub = context_from_connection(None)
    sts = hub.client("sts")  # the hub's own clients are a fixed cost, not a per-account one
    round_trip = {"start": 0.0, "total": 0.0}
    sts.meta.events.register("before-call.sts.AssumeRole", lambda **_: round_trip.update(start=time.perf_counter()))
    sts.meta.events.register(
        "after-call.sts.AssumeRole",
        lambda **_: round_trip.update(total=round_trip["total"] + time.perf_counter() - round_trip["start"]),
    )
    kept = []
    members = MemberContexts(hub, AccessConfig(member_role_name=role_name), "bench")

    def one(account_id: str) -> None:
        if mode == "legacy":
            ctx = _legacy_assume(hub, account_id, role_name)
            ctx.client("ssm", REGION)
            kept.append(ctx)  # the old caches kept every context until the task ended
        else:
            members.get(account_id).client("ssm", REGION)
            members.release(account_id)  # the account's work is done

    start = time.perf_counter()
    one(accounts[0])
    first_s = time.perf_counter() - start
    gc.collect()
    after_first = _rss_mb()
    round_trip["total"] = 0.0
    start = time.perf_counter()
    for account_id in accounts[1:]:
        one(account_id)
    extra_s = time.perf_counter() - start
    gc.collect()
    extra = len(accounts) - 1
    return {
        "mode": mode,
        "accounts": len(accounts),
        "first_ms": first_s * 1000,
        "extra_ms": extra_s * 1000 / extra,
        "extra_assume_role_ms": round_trip["total"] * 1000 / extra,
        "extra_own_ms": (extra_s - round_trip["total"]) * 1000 / extra,
        "extra_mb_retained": (_rss_mb() - after_first) / extra,
        "live_contexts": len(kept) if mode == "legacy" else members.live,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="medium", choices=("small", "medium", "large"))
    parser.add_argument("--accounts", type=int, default=0, help="how many member accounts (0 = every assumable one)")
    parser.add_argument("--mode", choices=("legacy", "current"), help=argparse.SUPPRESS)  # the child's half
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:
        fleet = sandbox_json(args.url, "/_sandbox/fleet")
        accounts = _assumable(fleet)[: args.accounts or None]
        print(json.dumps(run_mode(args.mode, args.url, accounts, fleet["member_role_name"])))
        return 0
    proc, url = start_sandbox(args.profile)
    try:
        results = {}
        for mode in ("legacy", "current"):
            cmd = [sys.executable, __file__, "--mode", mode, "--url", url, "--accounts", str(args.accounts)]
            out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
            results[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    print(f"profile {args.profile}: {results['current']['accounts']} member accounts, AssumeRole + one ssm client each")
    head = ("mode", "first ms", "extra ms/acct", "of which AssumeRole", "access layer", "MB/acct retained", "live")
    widths = (8, 9, 14, 20, 13, 17, 5)
    print(" ".join(f"{h:>{w}}" for h, w in zip(head, widths, strict=True)))
    for r in results.values():
        cells = (
            r["mode"],
            f"{r['first_ms']:.1f}",
            f"{r['extra_ms']:.1f}",
            f"{r['extra_assume_role_ms']:.1f}",
            f"{r['extra_own_ms']:.1f}",
            f"{r['extra_mb_retained']:.2f}",
            str(r["live_contexts"]),
        )
        print(" ".join(f"{c:>{w}}" for c, w in zip(cells, widths, strict=True)))
    legacy, current = results["legacy"], results["current"]
    ms_ratio = legacy["extra_own_ms"] / current["extra_own_ms"]
    mb_ratio = legacy["extra_mb_retained"] / max(current["extra_mb_retained"], 0.01)
    print(
        f"legacy / current per extra account: {ms_ratio:.1f}x access-layer time (AssumeRole round trip excluded), "
        f"{mb_ratio:.0f}x retained memory (same run)"
    )
    print(json.dumps({"bench": "accounts", "profile": args.profile, **{k: v for k, v in results.items()}}))
    return 0


def _assumable(fleet: dict) -> list[str]:
    mgmt = fleet["management_account_id"]
    return [a["id"] for a in fleet["accounts"] if a["state"] == "ACTIVE" and a["has_role"] and a["id"] != mgmt]


if __name__ == "__main__":
    sys.exit(main())
