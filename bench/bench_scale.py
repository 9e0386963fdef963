"""`make bench-scale`: patch_compliance_scan end to end on the local distributed Airflow (scripts/cluster.py:
CeleryExecutor on PostgreSQL and Redis, two workers, the triggerer) against the emulator's ``large`` organization.

    python bench/bench_scale.py [--profile large] [--json artifacts/bench-scale.json] [--timeout 5400]

Printed, and written as JSON: per step (task instances, summed and spanned wall time, peak RSS of the biggest
task instance, from the bench-only listener bench/plugins/bench_task_rss.py) and per AWS action (calls, the floor
from the documented page limits, calls ÷ floor). The floor is computed from the emulator's ground truth
(GET /_sandbox/nodes) and the run's own plan and published tables, never from the calls themselves. Polling
(ListCommands while the waits are deferred) is reported on its own line, per target and poke (pokes counted from
the wait tasks' trigger log lines).
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import math
import pickle
import re
import shutil
import sys
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts import cluster as local_cluster  # noqa: E402
from tests.cluster.helpers import Api, aws_client, free_ports  # noqa: E402

DAG_ID = "patch_compliance_scan"
FOLDER = ROOT / "artifacts" / "bench-scale"
PORT_VARS = [k for k in local_cluster.DEFAULTS if k.endswith("_PORT")]
# Page limits (docs/aws-behaviours.md §1, §4, §6, §9, §10, §35; Organizations and Security Hub API references).
ORG_PAGE, LISTING_PAGE, STATES_BATCH, PATCHES_PAGE, SUMMARIES_PAGE, ITEMS_PAGE = 20, 50, 50, 100, 50, 50
SEND_BATCH, INVOCATIONS_PAGE, IMPORT_BATCH = 50, 50, 100
POKE_LINE = re.compile(r"(\d+) of (\d+) commands terminal \((\d+) account-regions polled\)")


def ceil_div(n: int, size: int, at_least: int = 1) -> int:
    return max(at_least, math.ceil(n / size))


def bench_config(path: Path, profile: str) -> Path:
    """The emulator's config (its waves, member role, reports) over every region of the profile, with the
    product's default shard_size and max_workers (the emulator's config shards small for the tests) and no
    schedule: only the triggered run runs."""
    from sandbox.fleet import PROFILES

    data = yaml.safe_load((ROOT / "sandbox" / "fleet-config.yaml").read_text())
    data["regions"] = list(PROFILES[profile].regions)
    data["orchestration"] = {"schedule": None}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def plugins_folder(folder: Path) -> Path:
    """The project's plugins plus the bench's listener."""
    folder.mkdir(parents=True, exist_ok=True)
    for source in [*sorted((ROOT / "plugins").glob("*.py")), ROOT / "bench" / "plugins" / "bench_task_rss.py"]:
        (folder / source.name).symlink_to(source)
    return folder


def step_of(task_id: str) -> str:
    return task_id.rsplit(".", 1)[-1]


def task_instances(api: Api, run_id: str) -> list[dict]:
    out, offset = [], 0
    while True:
        page = api.call("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances", limit=100, offset=offset)
        out += page["task_instances"]
        offset += len(page["task_instances"])
        if not page["task_instances"] or offset >= page["total_entries"]:
            return out


def _seconds(ti: dict) -> float:
    from datetime import datetime

    if not ti.get("start_date") or not ti.get("end_date"):
        return 0.0
    return (datetime.fromisoformat(ti["end_date"]) - datetime.fromisoformat(ti["start_date"])).total_seconds()


def steps_table(tis: list[dict], rss: list[dict]) -> dict[str, dict[str, Any]]:
    from datetime import datetime

    peak: dict[str, float] = defaultdict(float)
    for line in rss:
        peak[step_of(line["task_id"])] = max(peak[step_of(line["task_id"])], line["peak_rss_mb"])
    out: dict[str, dict[str, Any]] = {}
    for step in dict.fromkeys(step_of(ti["task_id"]) for ti in tis):
        mine = [ti for ti in tis if step_of(ti["task_id"]) == step]
        starts = [datetime.fromisoformat(t["start_date"]) for t in mine if t.get("start_date")]
        ends = [datetime.fromisoformat(t["end_date"]) for t in mine if t.get("end_date")]
        out[step] = {
            "task_instances": len(mine),
            "states": dict(Counter(t["state"] for t in mine)),
            "summed_s": round(sum(_seconds(t) for t in mine), 1),
            "span_s": round((max(ends) - min(starts)).total_seconds(), 1) if starts and ends else 0.0,
            "max_rss_mb": round(peak.get(step, 0.0)),
        }
    return out


def read_object(s3: Any, bucket: str, key: str) -> bytes:
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return gzip.decompress(body) if key.endswith(".gz") else body


def read_table(s3: Any, uri: str, columns: list[str]) -> Any:
    import pyarrow.parquet as pq

    bucket, key = uri.removeprefix("s3://").split("/", 1)
    return pq.read_table(io.BytesIO(read_object(s3, bucket, key)), columns=columns).to_pandas()


def floors(fleet: dict, truth: dict[tuple[str, str], list[dict]], plan: dict, tables: dict[str, Any]) -> dict[str, int]:
    """The fewest calls per action the run could make, from the page limits (see the module docstring)."""
    targets = [t for shards in plan["waves"].values() for shard in shards for t in shard]
    children: Counter[str] = Counter()
    for ou in fleet["ous"]:
        children[ou["parent_id"]] += 1
    accounts_in: Counter[str] = Counter(a["ou_id"] for a in fleet["accounts"])
    parents = [fleet["root_id"], *(ou["id"] for ou in fleet["ous"])]
    reachable = {a["id"] for a in fleet["accounts"] if a["has_role"] and a["state"] == "ACTIVE"}
    listed = {k: [n for n in nodes if n["managed"] and not n["terminated"]] for k, nodes in truth.items()}
    per_target = [listed.get((t["account_id"], t["region"]), []) for t in targets if t["account_id"] in reachable]
    # One AssumeRole per account per process that needs it: scan and collect per shard (also for an account
    # without the role: the refusal is a call), the wait's trigger and its resumed task per shard (reachable
    # accounts only: an unreachable target has no command to wait for), and the security_hub task once.
    shards = [shard for shards in plan["waves"].values() for shard in shards]
    every = sum(len({t["account_id"] for t in shard}) for shard in shards)
    waited = sum(len({t["account_id"] for t in shard} & reachable) for shard in shards)
    commands = tables["commands"]
    patches_per_node = tables["patches"].groupby(["account_id", "region", "instance_id"]).size()
    items_per_node = tables["compliance_items"].groupby(["account_id", "region", "instance_id"]).size()
    nodes = tables["nodes"]
    # Findings are imported in each node's own account-region, 100 per call, where Security Hub is on and the
    # native Patch Manager export is not (security_hub.skip_if_native_export).
    hub = fleet["security_hub"]
    off = {(x["account_id"], x["region"]) for kind in ("disabled", "native_export") for x in hub[kind]}
    with_finding = nodes[~nodes["coverage_status"].isin(["UNMANAGED", "UNREACHABLE"])]
    per_hub = with_finding.groupby(["account_id", "region"]).size()
    imports = sum(ceil_div(int(n), IMPORT_BATCH) for key, n in per_hub.items() if key not in off)
    return {
        "organizations.ListRoots": 1,
        "organizations.ListOrganizationalUnitsForParent": sum(ceil_div(children[p], ORG_PAGE) for p in parents),
        "organizations.ListAccountsForParent": sum(ceil_div(accounts_in[p], ORG_PAGE) for p in parents),
        "sts.AssumeRole": 2 * every + 2 * waited + len({t["account_id"] for t in targets} & reachable),
        "ssm.DescribeInstanceInformation": sum(ceil_div(len(n), LISTING_PAGE) for n in per_target),
        "ssm.SendCommand": sum(ceil_div(len(n), SEND_BATCH, 0) for n in per_target),
        "ssm.DescribeInstancePatchStates": sum(ceil_div(len(n), STATES_BATCH, 0) for n in per_target),
        "ssm.DescribeInstancePatches": sum(ceil_div(int(c), PATCHES_PAGE) for c in patches_per_node),
        "ssm.ListResourceComplianceSummaries": sum(
            ceil_div(sum(len(x["compliance_types"]) for x in n), SUMMARIES_PAGE) for n in per_target
        ),
        "ssm.ListComplianceItems": sum(ceil_div(int(c), ITEMS_PAGE) for c in items_per_node),
        "ssm.ListCommandInvocations": sum(
            ceil_div(int(c), INVOCATIONS_PAGE) for c in commands.groupby("command_id").size()
        ),
        "securityhub.BatchImportFindings": imports,
    }


def pokes(log_folder: Path, run_id: str) -> tuple[int, int]:
    """(pokes, target-pokes) of every wait task of the run, from the trigger's log line per poke."""
    count = target_pokes = 0
    for path in log_folder.glob(f"dag_id={DAG_ID}/run_id={run_id}/task_id=*.wait/**/*.log"):
        for match in POKE_LINE.finditer(path.read_text(errors="replace")):
            count += 1
            target_pokes += int(match.group(3))
    return count, target_pokes


def run(profile: str, timeout: float) -> dict[str, Any]:
    shutil.rmtree(FOLDER / "cluster", ignore_errors=True)
    (FOLDER / "cluster").mkdir(parents=True)
    rss_file = FOLDER / "cluster" / "task_rss.jsonl"
    overrides = dict(zip(PORT_VARS, map(str, free_ports(len(PORT_VARS))), strict=True))
    settings = local_cluster.Settings.from_env({}, CLUSTER_DIR=str(FOLDER / "cluster"), **overrides)
    settings.profile = profile
    settings.config_file = bench_config(FOLDER / "cluster" / "patch-compliance.yaml", profile)
    settings.extra_env = {
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(plugins_folder(FOLDER / "cluster" / "plugins")),
        "PC_BENCH_RSS_FILE": str(rss_file),
    }
    reports = yaml.safe_load(settings.config_file.read_text())["reports"]
    started = time.monotonic()
    handle = local_cluster.up(settings)
    up_s = time.monotonic() - started
    try:
        from sandbox.testing import RunningSandbox

        api = Api(settings.api_url, local_cluster.ADMIN_USER, settings.values["CLUSTER_ADMIN_PASSWORD"])
        emulator = RunningSandbox(settings.sandbox_url, {}, None)
        fleet = emulator._request("GET", "/_sandbox/fleet")
        emulator.reset_calls()
        run_id = f"bench_scale__{profile}"
        api.call("PATCH", f"/api/v2/dags/{DAG_ID}", {"is_paused": False})
        api.call("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", {"dag_run_id": run_id, "logical_date": None, "conf": {}})
        started = time.monotonic()
        state = "queued"
        while state not in ("success", "failed") and time.monotonic() - started < timeout:
            time.sleep(10)
            state = api.call("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}")["state"]
        wall = time.monotonic() - started
        calls = emulator.calls()
        tis = task_instances(api, run_id)
        rss = [json.loads(line) for line in rss_file.read_text().splitlines()] if rss_file.exists() else []
        s3 = aws_client("s3", settings.sandbox_url)
        from include.patch_compliance.publish.report_files import latest_keys
        from include.patch_compliance.storage import staging_key

        summary = json.loads(read_object(s3, reports["bucket"], latest_keys(reports["prefix"], DAG_ID)[0]))
        plan = json.loads(read_object(s3, reports["bucket"], staging_key(reports["prefix"], run_id, "plan")))
        columns = {
            "nodes": ["account_id", "region", "instance_id", "coverage_status"],
            "patches": ["account_id", "region", "instance_id"],
            "compliance_items": ["account_id", "region", "instance_id"],
            "commands": ["command_id"],
        }
        tables = {name: read_table(s3, summary["tables"][name], cols) for name, cols in columns.items()}
        keys = sorted({(t["account_id"], t["region"]) for s in plan["waves"].values() for sh in s for t in sh})
        with ThreadPoolExecutor(max_workers=8) as pool:
            listed = pool.map(
                lambda k: emulator._request("GET", f"/_sandbox/nodes?account_id={k[0]}&region={k[1]}")["nodes"], keys
            )
            truth = dict(zip(keys, listed, strict=True))
        poke_count, target_pokes = pokes(Path(handle.env["AIRFLOW_HOME"]) / "logs", run_id)
    finally:
        print("\n".join(local_cluster.down(settings)))
    raw = {
        "profile": profile, "fleet": fleet, "summary": summary, "plan": plan, "state": state, "wall": wall,
        "up_s": up_s, "calls": calls, "tis": tis, "rss": rss, "pokes": (poke_count, target_pokes),
        "tables": tables, "truth": truth,
    }  # fmt: skip
    with (FOLDER / "raw.pkl").open("wb") as out:  # what the figures are computed from (--reanalyse)
        pickle.dump(raw, out)
    return analyse(raw)


def analyse(raw: dict[str, Any]) -> dict[str, Any]:
    floor = floors(raw["fleet"], raw["truth"], raw["plan"], raw["tables"])
    return result(
        raw["profile"], raw["fleet"], raw["summary"], raw["plan"], raw["state"], raw["wall"], raw["up_s"],
        raw["calls"], floor, raw["tis"], raw["rss"], *raw["pokes"],
    )  # fmt: skip


def result(profile, fleet, summary, plan, state, wall, up_s, calls, floor, tis, rss, poke_count, target_pokes):
    targets = sum(len(sh) for s in plan["waves"].values() for sh in s)
    steps = steps_table(tis, rss)
    counted = {a: calls.get(a, 0) for a in floor}
    reachable = {a["id"] for a in fleet["accounts"] if a["has_role"] and a["state"] == "ACTIVE"}
    # The scan's check for this run's earlier commands: one per reachable target.
    scan_list_commands = sum(1 for s in plan["waves"].values() for sh in s for t in sh if t["account_id"] in reachable)
    polling = max(0, calls.get("ssm.ListCommands", 0) - scan_list_commands)
    report_rss = steps.get("report", {}).get("max_rss_mb", 0)
    return {
        "profile": profile,
        "state": state,
        "accounts": len({t["account_id"] for s in plan["waves"].values() for sh in s for t in sh}),
        "targets": targets,
        "nodes": summary["totals"].get("nodes"),
        "wall_s": round(wall, 1),
        "cluster_up_s": round(up_s, 1),
        "emulator_command_s": "30-120 emulated s per Linux node, 60-300 per Windows node, ÷ CLUSTER_TIME_SCALE 120",
        "max_task_rss_mb": max((s["max_rss_mb"] for s in steps.values()), default=0),
        "report_rss_mb": report_rss,
        "steps": steps,
        "calls": counted,
        "floor": floor,
        "ratio": {a: round(counted[a] / floor[a], 2) if floor[a] else None for a in floor},
        "calls_over_floor": round(sum(counted.values()) / sum(floor.values()), 3) if sum(floor.values()) else None,
        "other_calls": {a: n for a, n in sorted(calls.items()) if a not in floor},
        "polling": {"list_commands": polling, "pokes": poke_count, "target_pokes": target_pokes},
        "list_commands_per_target_poke": round(polling / target_pokes, 3) if target_pokes else None,
    }


def print_result(r: dict[str, Any]) -> None:
    head = f"run {r['state']} in {r['wall_s']:.0f} s (cluster up {r['cluster_up_s']:.0f} s)"
    print(f"\n== bench-scale {r['profile']}: {head}")
    print(f"{r['accounts']:,} accounts, {r['targets']:,} account-regions, {r['nodes']:,} nodes")
    print(f"emulator command time: {r['emulator_command_s']}")
    print(f"\n{'step':<16}{'TIs':>6}{'summed s':>11}{'span s':>9}{'max RSS MB':>12}  states")
    for step, s in r["steps"].items():
        states = ", ".join(f"{k}={v}" for k, v in s["states"].items())
        times = f"{s['summed_s']:>11.1f}{s['span_s']:>9.1f}"
        print(f"{step:<16}{s['task_instances']:>6}{times}{s['max_rss_mb']:>12}  {states}")
    print(f"\n{'AWS action':<42}{'calls':>9}{'floor':>9}{'ratio':>8}")
    for action, floor in r["floor"].items():
        ratio = r["ratio"][action]
        print(f"{action:<42}{r['calls'][action]:>9,}{floor:>9,}{ratio if ratio is not None else '-':>8}")
    total, floor_total = sum(r["calls"].values()), sum(r["floor"].values())
    print(f"{'all of the above':<42}{total:>9,}{floor_total:>9,}{r['calls_over_floor']:>8}")
    p = r["polling"]
    print(
        f"polling: ListCommands {p['list_commands']:,} over {p['pokes']:,} pokes, {p['target_pokes']:,} "
        f"target-pokes = {r['list_commands_per_target_poke']} per target-poke"
    )
    print("other calls: " + ", ".join(f"{a}={n:,}" for a, n in r["other_calls"].items()))
    print(f"max task RSS {r['max_task_rss_mb']:,} MB; report step {r['report_rss_mb']:,} MB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="large", choices=("small", "medium", "large"))
    parser.add_argument("--json", type=Path, default=ROOT / "artifacts" / "bench-scale.json")
    parser.add_argument("--timeout", type=float, default=5400.0, help="seconds to wait for the run")
    parser.add_argument("--reanalyse", action="store_true", help=f"recompute from {FOLDER / 'raw.pkl'}, no run")
    args = parser.parse_args()
    if args.reanalyse:
        with (FOLDER / "raw.pkl").open("rb") as source:
            r = analyse(pickle.load(source))  # noqa: S301 - the file this script wrote
    else:
        r = run(args.profile, args.timeout)
    print_result(r)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(r, indent=2, default=str) + "\n")
    print(f"\nwritten: {args.json}")
    return 0 if r["state"] == "success" else 1


if __name__ == "__main__":
    sys.exit(main())
