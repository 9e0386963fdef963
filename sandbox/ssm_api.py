"""SSM Run Command actions (SendCommand, ListCommands, ListCommandInvocations, GetCommandInvocation,
CancelCommand) with AWS's validation, error codes, paging and eventual consistency (docs/aws-behaviours.md §1-§5)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime

from sandbox.awsproto import AwsError
from sandbox.nodes import Node, RegionData
from sandbox.paging import page
from sandbox.ssm_commands import (
    DETAIL_STATUS,
    DOCUMENTS,
    TERMINAL,
    Command,
    DocSpec,
    Invocation,
    command_status,
    elapsed,
    iso_ms,
    plan_outcome,
    schedule,
)
from sandbox.world import World

INSTANCE_ID_RE = re.compile(r"^(i-(\w{8}|\w{17})|mi-\w{17})$")
COMMAND_FILTER_KEYS = {"InvokedAfter", "InvokedBefore", "Status", "ExecutionStage", "DocumentName"}
Handler = Callable[[World, RegionData, dict], dict]


def _doc(name: str) -> DocSpec:
    short = name.rsplit("/", 1)[-1] if name.startswith("arn:") else name
    spec = DOCUMENTS.get(short)
    if spec is None:
        raise AwsError("InvalidDocument", f"Document with name {name} does not exist.")
    return spec


def _check_parameters(spec: DocSpec, params: dict[str, list[str]]) -> None:
    for key in params:
        if key not in spec.params:
            raise AwsError(
                "InvalidParameters",
                f'Parameter "{key}" is not allowed for document {spec.name}; allowed: {", ".join(spec.params)}',
            )
    for key, (required, allowed) in spec.params.items():
        values = params.get(key)
        if values is None:
            if required:
                raise AwsError("InvalidParameters", f'Parameter "{key}" is required for document {spec.name}')
            continue
        if key != "commands" and len(values) != 1:
            raise AwsError("InvalidParameters", f'Parameter "{key}" takes exactly one value, got {len(values)}')
        if allowed and values[0] not in allowed:
            raise AwsError(
                "InvalidParameters", f'Parameter "{key}" has value "{values[0]}" not found in [{", ".join(allowed)}]'
            )


def _match_targets(rd: RegionData, targets: list[dict]) -> list[Node]:
    """Several Keys are ANDed, several Values of one Key ORed (docs/aws-behaviours.md §1)."""
    nodes = rd.managed_nodes()
    for target in targets:
        key, values = target.get("Key", ""), target.get("Values", [])
        if key.startswith("tag:"):
            tag = key[4:]
            nodes = [n for n in nodes if n.tags.get(tag) in values]
        elif key == "tag-key":
            nodes = [n for n in nodes if any(v in n.tags for v in values)]
        elif key.lower() == "instanceids":
            if values == ["*"]:
                continue
            nodes = [n for n in nodes if n.instance_id in values]
        else:
            raise AwsError(
                "ValidationException",
                f'Targets Key "{key}" is not supported by the sandbox; use tag:<key>, tag-key or InstanceIds',
            )
    return nodes


def send_command(world: World, rd: RegionData, body: dict) -> dict:
    spec = _doc(body["DocumentName"])
    version = body.get("DocumentVersion") or "$DEFAULT"
    if version not in ("$DEFAULT", "$LATEST", "1"):
        raise AwsError("InvalidDocumentVersion", f"Document version {version} does not exist for {spec.name}")
    ids, targets = body.get("InstanceIds") or [], body.get("Targets") or []
    if bool(ids) == bool(targets):
        raise AwsError("ValidationException", "Specify exactly one of InstanceIds or Targets")
    params = body.get("Parameters") or {}
    _check_parameters(spec, params)
    if ids:
        if len(set(ids)) != len(ids):
            raise AwsError("DuplicateInstanceId", "You can't specify a managed node ID in more than one association.")
        nodes = []
        for iid in ids:
            node = rd.nodes.get(iid)
            if node is None or not node.managed:
                raise AwsError(
                    "InvalidInstanceId", f"Instances [[{iid}]] not in a valid state for account {rd.account_id}"
                )
            nodes.append(node)
    else:
        nodes = _match_targets(rd, targets)
    now = world.clock.now()
    cmd = Command(
        command_id=world.new_command_id(rd.account_id, rd.region),
        account_id=rd.account_id,
        region=rd.region,
        doc=spec,
        document_version=version,
        parameters=params,
        instance_ids=list(ids),
        targets=targets,
        comment=body.get("Comment", ""),
        requested_at=now,
        timeout_seconds=int(body.get("TimeoutSeconds", 3600)),
        max_concurrency=body.get("MaxConcurrency") or "50",
        max_errors=body.get("MaxErrors") or "0",
        extra={
            k: body[k]
            for k in (
                "OutputS3BucketName",
                "OutputS3KeyPrefix",
                "OutputS3Region",
                "ServiceRoleArn",
                "NotificationConfig",
                "CloudWatchOutputConfig",
            )
            if k in body
        },
    )
    faults = world.faults
    for node in nodes:
        fail = world.fault_counter.fires(f"invocation:{rd.account_id}:{rd.region}", faults.invocation_failure_rate)
        outcome, code = plan_outcome(cmd, node, world.seed, fail or faults.fails(node.instance_id, cmd.operation))
        cmd.invocations.append(
            Invocation(
                node.instance_id,
                node.computer_name,
                node.platform.platform_type,
                spec.plugin_for(node.platform.platform_type),
                outcome,
                code,
            )
        )
    schedule(cmd, world.seed, faults.slow_commands)
    world.region_commands(rd.account_id, rd.region)[cmd.command_id] = cmd
    return {"Command": command_shape(cmd, now)}


def command_shape(cmd: Command, now: float) -> dict:
    status = command_status(cmd, now)
    extra = cmd.extra
    shape = {
        "CommandId": cmd.command_id,
        "DocumentName": cmd.doc.name,
        "DocumentVersion": cmd.document_version,
        "Comment": cmd.comment,
        "ExpiresAfter": cmd.requested_at + cmd.timeout_seconds + cmd.doc.execution_timeout,
        "Parameters": cmd.parameters,
        # With Targets the node list is only known from ListCommandInvocations (docs/aws-behaviours.md §1).
        "InstanceIds": list(cmd.instance_ids),
        "Targets": cmd.targets,
        "RequestedDateTime": cmd.requested_at,
        "OutputS3Region": extra.get("OutputS3Region", cmd.region),
        "OutputS3BucketName": extra.get("OutputS3BucketName", ""),
        "OutputS3KeyPrefix": extra.get("OutputS3KeyPrefix", ""),
        "MaxConcurrency": cmd.max_concurrency,
        "MaxErrors": cmd.max_errors,
        "ServiceRole": extra.get("ServiceRoleArn", ""),
        "NotificationConfig": extra.get(
            "NotificationConfig", {"NotificationArn": "", "NotificationEvents": [], "NotificationType": ""}
        ),
        "CloudWatchOutputConfig": extra.get(
            "CloudWatchOutputConfig", {"CloudWatchLogGroupName": "", "CloudWatchOutputEnabled": False}
        ),
        "TimeoutSeconds": cmd.timeout_seconds,
    }
    shape.update(status)
    return shape


def _parse_time(value: str) -> float:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError as exc:
        raise AwsError(
            "ValidationException", f"Filter value '{value}' is not an ISO-8601 timestamp such as 2024-07-07T00:00:00Z"
        ) from exc


def _status_matches(value: str, status: str, details: str) -> bool:
    return value in (status, details.replace(" ", ""))


def _command_filter(filters: list[dict], allow_stage: bool) -> Callable[[float, str, str, str], bool]:
    for f in filters:
        if f["key"] not in COMMAND_FILTER_KEYS or (f["key"] == "ExecutionStage" and not allow_stage):
            raise AwsError("InvalidFilterKey", f"The filter key {f['key']} is not valid for this operation.")
        if f["key"] == "ExecutionStage" and f["value"] not in ("Executing", "Complete"):
            raise AwsError("ValidationException", "ExecutionStage filter value must be Executing or Complete")
    parsed = [(f["key"], _parse_time(f["value"]) if f["key"].startswith("Invoked") else f["value"]) for f in filters]

    def ok(requested: float, doc: str, status: str, details: str) -> bool:
        for key, value in parsed:
            if key == "InvokedAfter" and requested < value:
                return False
            if key == "InvokedBefore" and requested > value:
                return False
            if key == "DocumentName" and doc != value:
                return False
            if key == "Status" and not _status_matches(str(value), status, details):
                return False
            if key == "ExecutionStage" and (
                details in TERMINAL or details in ("Incomplete", "No Instances In Tag")
            ) != (value == "Complete"):
                return False
        return True

    return ok


def _command(world: World, rd: RegionData, command_id: str) -> Command:
    if len(command_id) != 36:
        raise AwsError("InvalidCommandId", f"Command ID {command_id} is not valid.")
    cmd = world.region_commands(rd.account_id, rd.region).get(command_id)
    if cmd is None:
        raise AwsError("InvalidCommandId", f"Command ID {command_id} does not exist in this account and region.")
    return cmd


def list_commands(world: World, rd: RegionData, body: dict) -> dict:
    now = world.clock.now()
    ok = _command_filter(body.get("Filters") or [], allow_stage=True)
    if body.get("CommandId"):
        cmds = [_command(world, rd, body["CommandId"])]
    else:
        cmds = sorted(world.region_commands(rd.account_id, rd.region).values(), key=lambda c: -c.requested_at)
    if body.get("InstanceId"):
        iid = body["InstanceId"]
        cmds = [c for c in cmds if iid in c.instance_ids or any(i.instance_id == iid for i in c.invocations)]
    shapes = [command_shape(c, now) for c in cmds]
    shapes = [s for s in shapes if ok(s["RequestedDateTime"], s["DocumentName"], s["Status"], s["StatusDetails"])]
    items, token = page(
        shapes,
        body.get("MaxResults") or 50,
        body.get("NextToken"),
        f"ListCommands:{rd.account_id}:{rd.region}:{body.get('CommandId')}:{body.get('InstanceId')}",
    )
    return {"Commands": items, **({"NextToken": token} if token else {})}


def _output(cmd: Command, inv: Invocation, node: Node | None, details: str) -> str:
    if details == "Failed":
        return "failed to run commands: exit status 1"
    if details != "Success" or cmd.doc.name == "AWS-RunShellScript":
        return ""
    op = cmd.operation
    group = node.patch_group if node else ""
    return (
        f"Patch group: {group}\nOperation type: {op}\nPatch baseline: {node.baseline_id if node else ''}\n"
        f"Patch operation completed successfully on {inv.instance_id}.\n"
    )


def invocation_shape(world: World, rd: RegionData, cmd: Command, inv: Invocation, now: float, details: bool) -> dict:
    detail, code, started, finished = inv.state(now)
    status = DETAIL_STATUS[detail]
    node = rd.nodes.get(inv.instance_id)
    shape = {
        "CommandId": cmd.command_id,
        "InstanceId": inv.instance_id,
        "InstanceName": inv.instance_name,
        "Comment": cmd.comment,
        "DocumentName": cmd.doc.name,
        "DocumentVersion": cmd.document_version,
        "RequestedDateTime": cmd.requested_at,
        "Status": status,
        "StatusDetails": detail,
        "TraceOutput": "",
        "StandardOutputUrl": "",
        "StandardErrorUrl": "",
        "CommandPlugins": [],
        "ServiceRole": cmd.extra.get("ServiceRoleArn", ""),
        "NotificationConfig": {"NotificationArn": "", "NotificationEvents": [], "NotificationType": ""},
        "CloudWatchOutputConfig": {"CloudWatchLogGroupName": "", "CloudWatchOutputEnabled": False},
    }
    if details:
        plugin = {
            "Name": inv.plugin,
            "Status": "Failed"
            if detail in ("Undeliverable", "Invalid Platform")
            else status
            if status != "Delayed"
            else "Pending",
            "StatusDetails": detail,
            "ResponseCode": code,
            "Output": _output(cmd, inv, node, detail)[:2500],
            "StandardOutputUrl": "",
            "StandardErrorUrl": "",
            "OutputS3Region": cmd.region,
            "OutputS3BucketName": cmd.extra.get("OutputS3BucketName", ""),
            "OutputS3KeyPrefix": cmd.extra.get("OutputS3KeyPrefix", ""),
        }
        if started is not None:
            plugin["ResponseStartDateTime"] = started
        if finished is not None and detail in TERMINAL:
            plugin["ResponseFinishDateTime"] = finished
        shape["CommandPlugins"] = [plugin]
    return shape


def list_command_invocations(world: World, rd: RegionData, body: dict) -> dict:
    now = world.clock.now()
    ok = _command_filter(body.get("Filters") or [], allow_stage=False)
    if body.get("CommandId"):
        cmds = [_command(world, rd, body["CommandId"])]
    else:
        cmds = sorted(world.region_commands(rd.account_id, rd.region).values(), key=lambda c: -c.requested_at)
    iid = body.get("InstanceId")
    if iid and not INSTANCE_ID_RE.match(iid):
        raise AwsError("InvalidInstanceId", f"Instance ID {iid} is not valid.")
    items = []
    for cmd in cmds:
        if not cmd.visible(now):
            continue  # right after SendCommand the list is still empty (docs/aws-behaviours.md §5)
        for inv in cmd.invocations:
            if iid and inv.instance_id != iid:
                continue
            shape = invocation_shape(world, rd, cmd, inv, now, bool(body.get("Details")))
            if ok(cmd.requested_at, cmd.doc.name, shape["Status"], shape["StatusDetails"]):
                items.append(shape)
    chunk, token = page(
        items,
        body.get("MaxResults") or 50,
        body.get("NextToken"),
        f"ListCommandInvocations:{rd.account_id}:{rd.region}:{body.get('CommandId')}:{iid}",
    )
    return {"CommandInvocations": chunk, **({"NextToken": token} if token else {})}


def get_command_invocation(world: World, rd: RegionData, body: dict) -> dict:
    now = world.clock.now()
    cmd = _command(world, rd, body["CommandId"])
    iid = body["InstanceId"]
    if not INSTANCE_ID_RE.match(iid):
        raise AwsError("InvalidInstanceId", f"Instance ID {iid} is not valid.")
    inv = next((i for i in cmd.invocations if i.instance_id == iid), None)
    if inv is None or not cmd.visible(now):
        raise AwsError("InvocationDoesNotExist", f"No invocation of {cmd.command_id} on {iid} (yet).")
    plugin = body.get("PluginName")
    if plugin and plugin != inv.plugin:
        steps = (
            {"PatchLinux", "PatchWindows", "PatchMacOS"}
            if cmd.doc.name != "AWS-RunShellScript"
            else {"aws:runShellScript"}
        )
        if plugin not in steps:  # must be the document's step name, not the action (docs/aws-behaviours.md §2)
            raise AwsError("InvalidPluginName", f"The plugin name {plugin} is not valid for {cmd.doc.name}.")
        raise AwsError("InvocationDoesNotExist", f"Step {plugin} did not run on {iid}.")
    detail, code, started, finished = inv.state(now)
    node = rd.nodes.get(iid)
    return {
        "CommandId": cmd.command_id,
        "InstanceId": iid,
        "Comment": cmd.comment,
        "DocumentName": cmd.doc.name,
        "DocumentVersion": cmd.document_version,
        "PluginName": plugin or inv.plugin,
        "ResponseCode": code,
        "ExecutionStartDateTime": iso_ms(started),
        "ExecutionElapsedTime": elapsed(started, finished if detail in TERMINAL else None),
        "ExecutionEndDateTime": iso_ms(finished) if detail in TERMINAL else "",
        "Status": DETAIL_STATUS[detail],
        "StatusDetails": detail,
        "StandardOutputContent": _output(cmd, inv, node, detail)[:24000],
        "StandardOutputUrl": "",
        "StandardErrorContent": "",
        "StandardErrorUrl": "",
        "CloudWatchOutputConfig": {"CloudWatchLogGroupName": "", "CloudWatchOutputEnabled": False},
    }


def cancel_command(world: World, rd: RegionData, body: dict) -> dict:
    now = world.clock.now()
    cmd = _command(world, rd, body["CommandId"])
    ids = body.get("InstanceIds") or []
    if len(set(ids)) != len(ids):
        raise AwsError("DuplicateInstanceId", "You can't specify a managed node ID more than once.")
    with world.lock:
        running = any(inv.state(now)[0] not in TERMINAL for inv in cmd.invocations)
        for inv in cmd.invocations:
            if (not ids or inv.instance_id in ids) and inv.cancel_at is None and inv.state(now)[0] not in TERMINAL:
                inv.cancel_at = now
        if not ids and running and cmd.cancel_at is None:
            cmd.cancel_at = now
    return {}


HANDLERS: dict[str, Handler] = {
    "SendCommand": send_command,
    "ListCommands": list_commands,
    "ListCommandInvocations": list_command_invocations,
    "GetCommandInvocation": get_command_invocation,
    "CancelCommand": cancel_command,
}
