"""The /_sandbox/* control endpoints: health, fleet, calls, faults, nodes, and admin actions."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from sandbox.ec2_seed import terminate_ec2
from sandbox.faults import FaultConfigError, Faults
from sandbox.ssm_shapes import iso_z, resource_compliance_summaries
from sandbox.world import remediate, terminate

if TYPE_CHECKING:
    from sandbox.dispatcher import SandboxApp


class AdminError(ValueError):
    pass


def _json(raw: bytes) -> dict:
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise AdminError(f"request body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise AdminError("request body must be a JSON object")
    return data


def _node_args(app: SandboxApp, data: dict) -> tuple:
    missing = [k for k in ("account_id", "region", "instance_id") if not data.get(k)]
    if missing:
        raise AdminError(f'missing field(s) {missing}: send {{"account_id", "region", "instance_id"}}')
    rd = app.world.region(data["account_id"], data["region"])
    node = rd.nodes.get(data["instance_id"])
    if node is None:
        raise AdminError(
            f"instance_id={data['instance_id']!r} is not a node of account {data['account_id']} in "
            f"{data['region']} (see GET /_sandbox/nodes?account_id=..&region=..)"
        )
    return rd, node


def handle(app: SandboxApp, method: str, path: str, raw: bytes, query: dict[str, list[str]]) -> tuple[int, dict]:
    try:
        return 200, _dispatch(app, method, path.rstrip("/"), raw, query)
    except (AdminError, FaultConfigError) as exc:
        return 400, {"error": str(exc)}
    except KeyError:
        return 404, {"error": f"unknown sandbox endpoint {method} {path}"}


def _dispatch(app: SandboxApp, method: str, path: str, raw: bytes, query: dict[str, list[str]]) -> dict:
    world = app.world
    if (method, path) == ("GET", "/_sandbox/health"):
        return {
            "status": "ready",
            "profile": world.fleet.profile.name,
            "seed": world.seed,
            "time_scale": world.clock.time_scale,
            "now": iso_z(world.clock.now()),
            "generated_account_regions": len(world.generated_regions()),
        }
    if (method, path) == ("GET", "/_sandbox/fleet"):
        return {**world.fleet.to_dict(), "security_hub": getattr(app, "securityhub_layout", None)}
    if (method, path) == ("GET", "/_sandbox/calls"):
        return app.snapshot_calls()
    if (method, path) == ("GET", "/_sandbox/calls/send_command"):
        return {"requests": app.snapshot_sent()}
    if (method, path) == ("POST", "/_sandbox/calls/reset"):
        app.reset_calls()
        return {"reset": True}
    if (method, path) == ("GET", "/_sandbox/calls/principals"):
        return app.principals.report()
    if (method, path) == ("POST", "/_sandbox/calls/principals/reset"):
        app.principals.reset()
        return {"reset": True}
    if (method, path) == ("GET", "/_sandbox/faults"):
        return world.faults.to_dict()
    if (method, path) == ("POST", "/_sandbox/faults"):
        world.faults = Faults.from_dict(_json(raw))
        world.fault_counter.reset()
        return world.faults.to_dict()
    if (method, path) == ("GET", "/_sandbox/nodes"):
        account, region = (query.get("account_id") or [""])[0], (query.get("region") or [""])[0]
        if not account or not region:
            raise AdminError("query parameters account_id and region are required")
        rd = world.region(account, region)
        world.settle(rd)
        return {
            "nodes": [
                {
                    "instance_id": n.instance_id,
                    "resource_type": n.resource_type,
                    "platform": n.platform.platform_name,
                    "platform_type": n.platform.platform_type,
                    "ping_status": n.ping_status,
                    "ec2_state": n.ec2_state,
                    "has_agent": n.has_agent,
                    "managed": n.managed,
                    "terminated": n.terminated,
                    "tags": n.tags,
                    "patch_group": n.patch_group,
                    "baseline_id": n.baseline_id,
                    "scanned": n.patch_state is not None,
                    "last_operation_end": n.patch_state["OperationEndTime"] if n.patch_state else None,
                    "missing": sum(1 for s in n.truth if s in ("Missing", "Failed")),
                    # What ListResourceComplianceSummaries lists for the node (one entry per compliance type).
                    "compliance_types": (
                        [c["ComplianceType"] for c in resource_compliance_summaries(n, rd)] if n.managed else []
                    ),
                }
                for n in rd.nodes.values()
            ]
        }
    if (method, path) == ("POST", "/_sandbox/admin/remediate"):
        rd, node = _node_args(app, _json(raw))
        with world.lock:
            changed = remediate(node, world.clock.now())
        return {"instance_id": node.instance_id, "patches_changed": changed}
    if (method, path) == ("POST", "/_sandbox/admin/terminate"):
        rd, node = _node_args(app, _json(raw))
        terminate(world, rd, node)
        terminate_ec2(rd.account_id, rd.region, node.instance_id)
        return {"instance_id": node.instance_id, "terminated": True}
    if (method, path) == ("POST", "/_sandbox/admin/advance"):
        data = _json(raw)
        seconds = data.get("seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            raise AdminError(f'seconds={seconds!r}: send {{"seconds": n}} with n >= 0')
        now = world.clock.advance(float(seconds))
        return {"now": iso_z(now), "epoch": now}
    raise KeyError(path)
