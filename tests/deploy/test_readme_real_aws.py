"""README "Point it at real AWS", followed as written against the emulator up to the first AWS call of a run.

Every command of the section is read from the README: the `aws cloudformation` ones are checked against the
templates (files, parameter names, required values, capabilities) and the CloudFormation API model (option
names); the hub stack is then created in the emulator from its template resolved with the README's values (the
emulator's CloudFormation, moto's, cannot evaluate these templates' conditions), the member stacks are the
emulated organization's member roles, the connection and the config are made exactly as shown, and the first
task of the scan DAG runs with `AWS_ENDPOINT_URL` pointing at the emulator: its first call must reach it as the
hub role taken through the connection's role_arn.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import boto3
import botocore.session
import pytest
import yaml

from include.patch_compliance import steps
from include.patch_compliance.runtime import RunContext
from sandbox.testing import running_sandbox
from scripts.cfn_templates import ROOT, load, resolve

README_ACCOUNT = "111122223333"
# aws CLI options valid on every command, and those of the `deploy` customization (not in the API model).
GLOBAL_OPTIONS = {"query", "output", "region", "profile", "no-cli-pager"}
DEPLOY_OPTIONS = {"stack-name", "template-file", "parameter-overrides", "capabilities", "tags", "s3-bucket",
                  "s3-prefix", "role-arn", "no-execute-changeset", "no-fail-on-empty-changeset"}  # fmt: skip


def section() -> str:
    text = (ROOT / "README.md").read_text()
    return text.split("## Point it at real AWS", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]


def blocks(language: str) -> list[str]:
    return [textwrap.dedent(b) for b in re.findall(rf"```{language}\n(.*?)```", section(), re.S)]


def commands() -> list[list[str]]:
    out = []
    for block in blocks("bash"):
        for line in re.sub(r"\\\n\s*", " ", block).splitlines():
            if line.strip():
                out.append(shlex.split(line))
    return out


def options(argv: list[str]) -> dict[str, list[str]]:
    """--name value [value ...] pairs of a CLI command line."""
    found: dict[str, list[str]] = {}
    current = None
    for word in argv:
        if word.startswith("--"):
            current = word[2:]
            found[current] = []
        elif current is not None:
            found[current].append(word)
    return found


def template_path(value: str) -> Path:
    path = ROOT / value.removeprefix("file://")
    assert path.is_file(), f"README names {value}, which does not exist"
    return path


def _named_iam(path: Path) -> bool:
    resources = load(path).get("Resources") or {}
    return any(
        r["Type"].startswith("AWS::IAM::") and {"RoleName", "ManagedPolicyName"} & set(r.get("Properties") or {})
        for r in resources.values()
    )


def check_cloudformation(argv: list[str]) -> tuple[str, Path | None, dict[str, str]]:
    """(stack or stack set name, template, parameter values) of one README `aws cloudformation` command."""
    verb, opts = argv[2], options(argv[3:])
    if verb == "deploy":
        known = DEPLOY_OPTIONS
    else:  # plain API commands: every option is a member of the API's input shape
        model = botocore.session.get_session().get_service_model("cloudformation")
        operation = model.operation_model("".join(part.capitalize() for part in verb.split("-")))
        known = {m.lower() for m in operation.input_shape.members}
    unknown = [
        o for o in opts if o not in GLOBAL_OPTIONS and o.replace("-", "") not in {k.replace("-", "") for k in known}
    ]
    assert not unknown, f"`aws cloudformation {verb}` has no option(s) {unknown}"
    name = (opts.get("stack-name") or opts.get("stack-set-name") or [""])[0]
    source = opts.get("template-file") or opts.get("template-body")
    if not source:
        return name, None, {}
    path = template_path(source[0])
    if verb == "deploy":
        params = dict(p.split("=", 1) for p in opts.get("parameter-overrides", []))
    else:
        params = {}
        for item in opts.get("parameters", []):
            fields = dict(f.split("=", 1) for f in item.split(","))
            params[fields["ParameterKey"]] = fields["ParameterValue"]
    resolve(path, params)  # every parameter declared, every required one given, every value allowed
    if _named_iam(path):
        assert "CAPABILITY_NAMED_IAM" in opts.get("capabilities", []), f"{path.name} creates named IAM resources"
    return name, path, params


def test_every_command_of_the_section_is_known_and_consistent() -> None:
    stacks, stack_sets = {}, {}
    for argv in commands():
        if argv[:2] == ["aws", "cloudformation"]:
            name, path, params = check_cloudformation(argv)
            if argv[2] == "create-stack-set":
                stack_sets[name] = (path, params)
                assert options(argv)["permission-model"] == ["SERVICE_MANAGED"]
            elif argv[2] == "create-stack-instances":
                assert name in stack_sets, "stack instances of a stack set the README did not create"
                assert re.fullmatch(r"OrganizationalUnitIds=(r-[0-9a-z]{4,32}|ou-[0-9a-z-]+)(,.+)?",
                                    options(argv)["deployment-targets"][0])  # fmt: skip
            elif argv[2] == "describe-stacks":
                assert name in stacks, "describe-stacks of a stack the README did not deploy"
            else:
                stacks[name] = (path, params)
        elif argv[:3] == ["airflow", "connections", "add"]:
            extra = json.loads(options(argv)["conn-extra"][0])
            assert options(argv)["conn-type"] == ["aws"] and "endpoint_url" not in extra
        elif argv[0] == "cp":
            assert argv[1] == "config.example.yaml" and (ROOT / argv[1]).is_file()
        elif argv[0] == "export":
            assert argv[1].startswith("PATCH_COMPLIANCE_CONFIG=")
        else:
            pytest.fail(f"README command {argv[:3]} is not followed by this test: teach it")
    hub = next(params for path, params in stacks.values() if path and path.name == "hub-role.yaml")
    hub_role = resolve(ROOT / "deploy/iam/hub-role.yaml", hub, account_id=README_ACCOUNT).outputs["HubRoleArn"]
    members = [
        params for path, params in [*stacks.values(), *stack_sets.values()] if path and path.name == "member-role.yaml"
    ]
    assert len(members) == 2 and all(p["HubRoleArn"] == hub_role for p in members)  # StackSet + management account


def _deploy(sb, path: Path, params: dict[str, str], account: str) -> dict[str, str]:
    """What the stack creates, through the emulator's IAM and S3 (as test setup), from the resolved template."""
    stack = resolve(path, params, account_id=account)
    iam, s3 = sb.client("iam"), sb.client("s3")
    order = {"AWS::IAM::ManagedPolicy": 0, "AWS::IAM::Role": 1, "AWS::S3::Bucket": 2, "AWS::S3::BucketPolicy": 3}
    for _, res in sorted(stack.resources.items(), key=lambda kv: order[kv[1]["Type"]]):
        props = res["Properties"]
        if res["Type"] == "AWS::IAM::ManagedPolicy":
            iam.create_policy(PolicyName=props["ManagedPolicyName"], PolicyDocument=json.dumps(props["PolicyDocument"]))
        elif res["Type"] == "AWS::IAM::Role":
            iam.create_role(
                RoleName=props["RoleName"],
                Path=props["Path"],
                AssumeRolePolicyDocument=json.dumps(props["AssumeRolePolicyDocument"]),
                MaxSessionDuration=int(props["MaxSessionDuration"]),
            )
            for arn in props.get("ManagedPolicyArns", []):
                iam.attach_role_policy(RoleName=props["RoleName"], PolicyArn=arn)
        elif res["Type"] == "AWS::S3::Bucket":
            s3.create_bucket(Bucket=props["BucketName"])
            rules = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
            s3.put_bucket_encryption(
                Bucket=props["BucketName"],
                ServerSideEncryptionConfiguration={
                    "Rules": [{"ApplyServerSideEncryptionByDefault": r["ServerSideEncryptionByDefault"]} for r in rules]
                },
            )
        elif res["Type"] == "AWS::S3::BucketPolicy":
            # Not put into the emulator: moto 5.2.5 denies an object request whenever a bucket-policy statement
            # with a Condition matches it (it passes no request context to the condition), so every upload would
            # be refused. tests/deploy/iam_check.py evaluates this policy against each recorded upload instead.
            assert props["Bucket"] in {r["Properties"].get("BucketName") for r in stack.resources.values()}
    return stack.outputs


def _merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def test_following_the_section_reaches_the_first_aws_call_as_the_hub_role(tmp_path, monkeypatch) -> None:
    with running_sandbox(profile="small", seed=7, time_scale=0) as sb:
        mgmt = sb.fleet["management_account_id"]

        def ours(text: str) -> str:
            return text.replace(README_ACCOUNT, mgmt)

        deployed: dict[str, dict[str, str]] = {}
        for argv in commands():
            argv = [ours(a) for a in argv]
            if argv[:3] == ["aws", "cloudformation", "deploy"]:
                name, path, params = check_cloudformation(argv)
                if path.name == "hub-role.yaml":
                    deployed[name] = _deploy(sb, path, params, mgmt)
                elif path.name == "member-role.yaml":  # the emulated organization's member roles stand for it
                    assert params.get("MemberRoleName", "PatchComplianceScanRole") == sb.fleet["member_role_name"]
            elif argv[:3] == ["airflow", "connections", "add"]:
                conn_id, opts = argv[3], options(argv[4:])
                connection = {"conn_type": opts["conn-type"][0], "extra": json.loads(opts["conn-extra"][0])}
                monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(connection))
            elif argv[0] == "cp":
                config = tmp_path / Path(argv[2]).name
                config.write_text((ROOT / argv[1]).read_text())
            elif argv[0] == "export":
                name, value = argv[1].split("=", 1)
                assert Path(value).name == config.name
                monkeypatch.setenv(name, str(config))
        [edits] = blocks("yaml")
        config.write_text(yaml.safe_dump(_merge(yaml.safe_load(config.read_text()), yaml.safe_load(ours(edits)))))
        [hub] = deployed.values()
        assert json.loads(os.environ["AIRFLOW_CONN_AWS_DEFAULT"])["extra"]["role_arn"] == hub["HubRoleArn"]

        # The one difference from real AWS: the endpoint. Airflow's own credentials: the emulator's dummy keys.
        monkeypatch.setenv("AWS_ENDPOINT_URL", sb.url)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
        now = datetime.now(UTC)
        context = {
            "dag": SimpleNamespace(dag_id="patch_compliance_scan"),
            "dag_run": SimpleNamespace(run_after=now, start_date=now),
            "run_id": "manual__readme",
        }
        run = RunContext.from_airflow(context)
        planned = steps.plan_fleet(run)

        assert planned["targets"] > 0 and planned["plan_uri"].startswith(f"s3://{hub['ReportsBucketName']}/")
        by_principal = {p["principal"]: p["calls"] for p in sb.principals() if p["kind"] != "setup"}
        assert by_principal[f"arn:aws:iam::{mgmt}:root"] == {"sts.AssumeRole": 1}  # the connection's role_arn
        assert by_principal[hub["HubRoleArn"]]["organizations.ListRoots"] == 1
        head = boto3.client("s3", endpoint_url=sb.url, region_name="us-east-1").head_object(
            Bucket=hub["ReportsBucketName"], Key=planned["plan_uri"].split("/", 3)[3]
        )
        assert head["ServerSideEncryption"] == "AES256"
