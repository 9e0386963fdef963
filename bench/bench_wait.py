"""Benchmark: SSM calls of the wait step per target and poke, before/after, on the emulator.

    python bench/bench_wait.py                      # small and medium profiles
    python bench/bench_wait.py --profiles small

Scans every account-region of the profile (``targets.mode: all_managed``, shards of 25), then polls every
shard once per emulated minute until its commands are terminal, and records the outcomes. Both strategies run
in lockstep on the same commands and the same emulated clock, the emulator's call counter read between them:

* ``legacy``: the wait as it was before issue 11: one ListCommands per command per poke, finished commands
  included (``shard_progress`` on records without ``sent_at`` and without known states), then one more
  ListCommands per command when recording the outcomes.
* ``current``: one paged ListCommands per account-region that still has a running command, none for commands
  known terminal, outcomes recorded from the states the last poll saw.

Printed per profile and strategy: ListCommands while polling ÷ (targets × pokes of their shard) (target
≤ 1.2), ÷ the tight floor (Σ over targets of the pokes until that target's commands were terminal), and the
ListCommands / ListCommandInvocations calls of the outcome step (ListCommandInvocations floor: one page of 50
per command).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BUCKET = "bench-wait-reports"
STEP_SECONDS = 60  # emulated time between pokes


def run_profile(profile: str) -> dict:
    from sandbox.testing import running_sandbox

    with running_sandbox(profile=profile, seed=7, time_scale=0) as sb:
        os.environ.update(
            {"AWS_ENDPOINT_URL": sb.url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
        )
        os.environ.pop("AWS_SESSION_TOKEN", None)
        from include.patch_compliance import run_staging, steps
        from include.patch_compliance.aws import context_from_connection
        from include.patch_compliance.config import parse_config
        from include.patch_compliance.runtime import RunContext
        from include.patch_compliance.scan.command import ScanRequest, run_tag, scan_record
        from include.patch_compliance.wait.status import is_terminal, outcome_records, shard_progress

        sb.client("s3").create_bucket(Bucket=BUCKET)
        cfg = parse_config(
            {
                "regions": sb.fleet["regions"],
                "reports": {"bucket": BUCKET},
                "waves": [{"name": "all", "ous": ["*"]}],
                "scan": {"targets": {"mode": "all_managed"}, "max_concurrency": "50%", "max_errors": "50%"},
                "orchestration": {"shard_size": 25, "max_workers": 8},
            }
        )
        run = RunContext(cfg=cfg, dag_id="bench", run_id=f"bench-wait-{profile}", hub=context_from_connection(None))
        steps.plan_fleet(run)
        req = ScanRequest(operation="Scan", run_id=run.run_id, run_tag=run_tag("bench", run.run_id), scan=cfg.scan)
        since = datetime.now(UTC) - timedelta(hours=1)
        plan = run_staging.load_plan(run)
        shards = [[scan_record(run.members.get, t, req, since) for t in shard] for shard in plan.waves["all"]]
        legacy_records = [[{k: v for k, v in r.items() if k != "sent_at"} for r in shard] for shard in shards]
        sent = [[r for r in shard if r["commands"]] for shard in shards]
        doc = cfg.scan.document_name

        def listed() -> int:
            return sb.calls().get("ssm.ListCommands", 0)

        calls = {"legacy": 0, "current": 0}
        states: list[dict] = [{} for _ in shards]
        pending = [i for i, shard in enumerate(sent) if shard]
        pokes = target_pokes = tight = 0
        while pending:
            sb.admin("advance", seconds=STEP_SECONDS)
            pokes += 1
            start = listed()
            legacy_done = {i: shard_progress(run.members.get, legacy_records[i]).done for i in pending}
            middle = listed()
            still = []
            for i in pending:
                target_pokes += len(sent[i])
                tight += sum(
                    1 for r in sent[i] if not all(is_terminal(states[i].get(c["command_id"])) for c in r["commands"])
                )
                progress = shard_progress(run.members.get, shards[i], document_name=doc, known=states[i])
                states[i] = progress.states
                if progress.done != legacy_done[i]:
                    raise RuntimeError(f"shard {i}: legacy and current disagree at poke {pokes}")
                if not progress.done:
                    still.append(i)
            calls["legacy"] += middle - start
            calls["current"] += listed() - middle
            pending = still
        finish = {}
        for name, kwargs_of in (("legacy", lambda i: {}), ("current", lambda i: {"states": states[i]})):
            sb.reset_calls()
            records = legacy_records if name == "legacy" else shards
            outcomes = [
                o for i, shard in enumerate(records) for o in outcome_records(run.members.get, shard, **kwargs_of(i))
            ]
            counted = sb.calls()
            per_command: dict[str, int] = {}
            for o in outcomes:
                if o["command_id"]:
                    per_command[o["command_id"]] = per_command.get(o["command_id"], 0) + bool(o["instance_id"])
            finish[name] = {
                "pages_floor": sum(max(1, -(-n // 50)) for n in per_command.values()),
                "list_commands": counted.get("ssm.ListCommands", 0),
                "list_command_invocations": counted.get("ssm.ListCommandInvocations", 0),
                "invocations": sum(1 for o in outcomes if o["instance_id"]),
            }
        commands = sum(len(r["commands"]) for shard in sent for r in shard)
        return {
            "profile": profile,
            "targets": sum(len(s) for s in sent),
            "commands": commands,
            "pokes": pokes,
            "target_pokes": target_pokes,
            "tight_floor": tight,
            "invocation_pages_floor": finish["current"]["pages_floor"],
            "polling_list_commands": calls,
            "finish": finish,
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", nargs="+", default=["small", "medium"], choices=("small", "medium", "large"))
    args = parser.parse_args()
    results = []
    for profile in args.profiles:
        r = run_profile(profile)
        results.append(r)
        print(f"profile {profile}: {r['targets']} targets, {r['commands']} commands, {r['pokes']} pokes")
        for name in ("legacy", "current"):
            polled = r["polling_list_commands"][name]
            fin = r["finish"][name]
            print(
                f"  {name:<8} polling ListCommands {polled:>6}: {polled / r['target_pokes']:.2f} per target per poke, "
                f"{polled / r['tight_floor']:.2f}x the tight floor; outcomes: ListCommands {fin['list_commands']}, "
                f"ListCommandInvocations {fin['list_command_invocations']} (floor {r['invocation_pages_floor']})"
            )
        ratio = r["polling_list_commands"]["legacy"] / max(r["polling_list_commands"]["current"], 1)
        print(f"  legacy / current polling ListCommands: {ratio:.1f}x (same run, same commands)")
    print(json.dumps({"bench": "wait", "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
