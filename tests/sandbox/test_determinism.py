"""Same seed, same calls => same fleet, same command ids, same outcomes and faults (no randomness per run)."""

from __future__ import annotations

from sandbox.testing import running_sandbox
from tests.sandbox.conftest import all_pages, client


def _session(seed: int) -> dict:
    with running_sandbox(profile="small", seed=seed, time_scale=0) as sb:
        sb.set_faults({"invocation_failure_rate": 0.5})
        ssm = client(sb, "ssm")
        nodes = sb.nodes("123456789012", "us-east-1")
        ids = [n["instance_id"] for n in nodes if n["managed"]]
        cmd = ssm.send_command(
            DocumentName="AWS-RunPatchBaseline", InstanceIds=ids, MaxErrors="100%", Parameters={"Operation": ["Scan"]}
        )["Command"]
        sb.admin("advance", seconds=9000)
        invs = all_pages(ssm.list_command_invocations, "CommandInvocations", CommandId=cmd["CommandId"])
        states = all_pages(ssm.describe_instance_patch_states, "InstancePatchStates", InstanceIds=ids)
        return {
            "fleet": sb.fleet,
            "nodes": [(n["instance_id"], n["tags"], n["missing"]) for n in nodes],
            "command": cmd["CommandId"],
            "outcomes": sorted((i["InstanceId"], i["StatusDetails"]) for i in invs),
            "counts": sorted((s["InstanceId"], s["MissingCount"], s["InstalledCount"]) for s in states),
        }


def test_same_seed_same_everything_other_seed_differs():
    first, second, other = _session(7), _session(7), _session(8)
    assert first == second
    assert any(detail == "Failed" for _, detail in first["outcomes"])  # the failure fault fired
    assert other["fleet"]["accounts"] != first["fleet"]["accounts"] and other["nodes"] != first["nodes"]
