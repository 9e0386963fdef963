"""Every JSON body the sandbox answers conforms to the botocore output shape: no member the model lacks, enum
values from the model, timestamps as epoch numbers (botocore silently drops unknown keys, so parse success alone
would prove little)."""

from __future__ import annotations

import json

import pytest

from sandbox.ssm_commands import seeded_outcome
from tests.sandbox.conftest import all_pages, client

MGMT = "123456789012"


def _conforms(shapes: dict, shape_name: str, value: object, path: str, problems: list[str]) -> None:
    shape = shapes[shape_name]
    kind = shape["type"]
    if kind == "structure":
        if not isinstance(value, dict):
            problems.append(f"{path}: expected object")
            return
        for key, item in value.items():
            member = shape["members"].get(key)
            if member is None:
                problems.append(f"{path}.{key}: not in the model")
            else:
                _conforms(shapes, member["shape"], item, f"{path}.{key}", problems)
    elif kind == "list":
        if not isinstance(value, list):
            problems.append(f"{path}: expected list")
            return
        for i, item in enumerate(value):
            _conforms(shapes, shape["member"]["shape"], item, f"{path}[{i}]", problems)
    elif kind == "map":
        for k, item in (value or {}).items():
            _conforms(shapes, shape["value"]["shape"], item, f"{path}[{k}]", problems)
    elif kind == "string":
        if not isinstance(value, str):
            problems.append(f"{path}: expected string, got {value!r}")
        elif "enum" in shape and value not in shape["enum"] and not _live_quirk(shape_name, value):
            problems.append(f"{path}: {value!r} not in {shape['enum']}")
    elif kind == "timestamp":
        if not isinstance(value, int | float):
            problems.append(f"{path}: timestamp must be epoch seconds, got {value!r}")
    elif kind in ("integer", "long"):
        if not isinstance(value, int) or isinstance(value, bool):
            problems.append(f"{path}: expected integer, got {value!r}")
    elif kind == "boolean":
        if not isinstance(value, bool):
            problems.append(f"{path}: expected boolean, got {value!r}")


def _live_quirk(shape_name: str, value: str) -> bool:
    # Patch states come back CamelCase, not the model's enum (docs/aws-behaviours.md §7); an unset NotificationConfig
    # comes back with NotificationType "" (a real SendCommand response, docs/aws-behaviours.md §1).
    return shape_name == "PatchComplianceDataState" or (shape_name == "NotificationType" and value == "")


class _Recorder:
    def __init__(self) -> None:
        self.bodies: list[tuple[object, bytes]] = []

    def __call__(self, operation_model, response_dict, **_kwargs) -> None:
        if response_dict["status_code"] == 200:
            self.bodies.append((operation_model, response_dict["body"]))

    def check(self) -> list[str]:
        problems: list[str] = []
        for op, body in self.bodies:
            shapes = op.service_model._shape_resolver._shape_map
            _conforms(shapes, op.output_shape.name, json.loads(body or b"{}"), op.name, problems)
        return problems


@pytest.fixture()
def recorded(sandbox):
    rec = _Recorder()
    ssm = client(sandbox, "ssm")
    org = client(sandbox, "organizations")
    for c in (ssm, org):
        c.meta.events.register("before-parse", rec)
    return rec, ssm, org


def test_ssm_responses_conform_to_the_model(sandbox, recorded):
    rec, ssm, _ = recorded
    nodes = [n for n in sandbox.nodes(MGMT, "us-east-1") if n["managed"]]
    ids = [n["instance_id"] for n in nodes]
    scanned = next(n["instance_id"] for n in nodes if n["scanned"])
    ok = next(
        n["instance_id"]
        for n in nodes
        if n["ping_status"] == "Online" and seeded_outcome(7, n["instance_id"], "AWS-RunPatchBaseline")[0] == "Success"
    )
    all_pages(ssm.describe_instance_information, "InstanceInformationList")
    all_pages(ssm.describe_instance_patch_states, "InstancePatchStates", InstanceIds=ids)
    group = next(n["patch_group"] for n in nodes if n["scanned"])
    all_pages(ssm.describe_instance_patch_states_for_patch_group, "InstancePatchStates", PatchGroup=group)
    all_pages(ssm.describe_instance_patches, "Patches", InstanceId=scanned)
    all_pages(ssm.list_compliance_items, "ComplianceItems", ResourceIds=[scanned], ResourceTypes=["ManagedInstance"])
    all_pages(ssm.list_resource_compliance_summaries, "ResourceComplianceSummaryItems")
    ssm.list_compliance_summaries()
    ssm.describe_patch_baselines()
    cmd = ssm.send_command(DocumentName="AWS-RunPatchBaseline", InstanceIds=ids, Parameters={"Operation": ["Scan"]})[
        "Command"
    ]
    for step in (0, 2, 5, 5000):
        sandbox.admin("advance", seconds=step)
        ssm.list_commands(CommandId=cmd["CommandId"])
        all_pages(ssm.list_command_invocations, "CommandInvocations", CommandId=cmd["CommandId"], Details=True)
    ssm.get_command_invocation(CommandId=cmd["CommandId"], InstanceId=ok)
    ssm.cancel_command(CommandId=cmd["CommandId"])
    assert len(rec.bodies) >= 15
    problems = rec.check()
    assert not problems, "\n".join(problems)


def test_organizations_responses_conform_to_the_model(sandbox, recorded):
    rec, _, org = recorded
    root = org.list_roots()["Roots"][0]["Id"]
    all_pages(org.list_organizational_units_for_parent, "OrganizationalUnits", ParentId=root)
    all_pages(org.list_accounts, "Accounts")
    all_pages(org.list_children, "Children", ParentId=root, ChildType="ACCOUNT")
    org.describe_account(AccountId=sandbox.fleet["accounts"][1]["id"])
    org.describe_organization()
    org.list_parents(ChildId=sandbox.fleet["accounts"][1]["id"])
    org.describe_organizational_unit(OrganizationalUnitId=sandbox.fleet["ous"][0]["id"])
    problems = rec.check()
    assert not problems, "\n".join(problems)
