"""The CloudFormation templates under deploy/, resolved for given parameter values: what a deployed stack would
contain (conditions applied, intrinsics evaluated) and the IAM policy documents it would create.

Used by `make lint` (parliament needs concrete ARNs, not `Fn::Sub`) and by tests/deploy (the least-privilege
check evaluates the documents against every AWS call the end-to-end tests make). Handles the intrinsics the
templates use: Ref, Fn::Sub (both forms), Fn::If, Fn::Equals/Not/And/Or, Condition, Fn::GetAtt, Fn::Join,
Fn::Select, Fn::Split; anything else raises, so a template can never be checked half-resolved.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
HUB_TEMPLATE = DEPLOY / "iam" / "hub-role.yaml"
MEMBER_TEMPLATE = DEPLOY / "iam" / "member-role.yaml"
ATHENA_TEMPLATE = DEPLOY / "athena" / "glue-tables.yaml"

EXAMPLE_ACCOUNT = "111122223333"
EXAMPLE_REGION = "us-east-1"
# Every optional feature switched on, for linting the largest form of each template.
EXAMPLE_PARAMETERS: dict[str, dict[str, str]] = {
    "hub-role.yaml": {
        "ReportsBucketName": "example-patch-compliance-reports",
        "ReportsKmsKeyArn": f"arn:aws:kms:{EXAMPLE_REGION}:{EXAMPLE_ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "TrustedPrincipalArn": f"arn:aws:iam::{EXAMPLE_ACCOUNT}:role/airflow-workers",
        "ManagementAccountId": "444455556666",
        "AlertsTopicArn": f"arn:aws:sns:{EXAMPLE_REGION}:{EXAMPLE_ACCOUNT}:patch-compliance-alerts",
    },
    "member-role.yaml": {
        "HubRoleArn": f"arn:aws:iam::{EXAMPLE_ACCOUNT}:role/PatchComplianceHubRole",
        "ExternalId": "example-external-id",
        "CommandOutputBucketName": "example-command-output",
    },
    "glue-tables.yaml": {
        "ReportsBucketName": "example-patch-compliance-reports",
        "QueryResultsLocation": "s3://example-athena-results/patch-compliance/",
        "ResultsKmsKeyArn": f"arn:aws:kms:{EXAMPLE_REGION}:{EXAMPLE_ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    },
}
NO_VALUE = object()  # AWS::NoValue: the key or list item disappears
_SUB_VAR = re.compile(r"\$\{([^}]*)\}")


class TemplateError(ValueError):
    """A template (or a parameter value) that cannot be resolved; the message names the place."""


def _construct(tag: str):
    name = "Ref" if tag == "Ref" else ("Condition" if tag == "Condition" else f"Fn::{tag}")

    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if tag == "GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {name: value}

    return construct


class _Loader(yaml.SafeLoader):
    pass


for _tag in ("Ref", "Sub", "GetAtt", "If", "Equals", "Not", "And", "Or", "Condition", "Join", "Select", "Split"):
    _Loader.add_constructor(f"!{_tag}", _construct(_tag))


def load(path: Path) -> dict[str, Any]:
    """A template as plain data, short-form intrinsics turned into their long form."""
    return yaml.load(path.read_text(), Loader=_Loader)  # noqa: S506 - SafeLoader plus intrinsic tags


@dataclass
class Resolved:
    """A template as one deployment would see it."""

    path: Path
    parameters: dict[str, str]
    resources: dict[str, dict[str, Any]]
    outputs: dict[str, Any]
    conditions: dict[str, bool]


@dataclass(frozen=True)
class PolicyDocument:
    template: str  # e.g. "deploy/iam/hub-role.yaml"
    resource: str  # logical id of the resource that creates it
    name: str  # policy name (inline), logical id (managed / bucket policy) or "trust policy"
    kind: str  # "identity" | "trust" | "resource"
    document: dict[str, Any] = field(hash=False, compare=False)


class _Resolver:
    def __init__(
        self, template: dict[str, Any], parameters: Mapping[str, str], account: str, region: str, partition: str
    ) -> None:
        self.template = template
        self.raw_resources: dict[str, Any] = template.get("Resources") or {}
        declared: dict[str, Any] = template.get("Parameters") or {}
        unknown = sorted(set(parameters) - set(declared))
        if unknown:
            raise TemplateError(f"unknown parameter(s) {unknown}; the template declares {sorted(declared)}")
        self.parameters: dict[str, str] = {}
        for name, spec in declared.items():
            if name in parameters:
                value = str(parameters[name])
            elif "Default" in spec:
                value = str(spec["Default"])
            else:
                raise TemplateError(f"parameter {name} has no default: give it a value")
            pattern = spec.get("AllowedPattern")
            if pattern and not re.fullmatch(pattern, value):
                raise TemplateError(f"parameter {name}={value!r} does not match its AllowedPattern {pattern}")
            allowed = spec.get("AllowedValues")
            if allowed and value not in [str(a) for a in allowed]:
                raise TemplateError(f"parameter {name}={value!r} is not one of {allowed}")
            self.parameters[name] = value
        self.pseudo = {
            "AWS::AccountId": account,
            "AWS::Region": region,
            "AWS::Partition": partition,
            "AWS::StackName": "patch-compliance",
            "AWS::URLSuffix": "amazonaws.com",
        }
        self._conditions: dict[str, bool] = {}

    # -- conditions ---------------------------------------------------------------------------------------------
    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            spec = (self.template.get("Conditions") or {}).get(name)
            if spec is None:
                raise TemplateError(f"unknown condition {name!r}")
            self._conditions[name] = bool(self._condition_value(spec))
        return self._conditions[name]

    def _condition_value(self, spec: Any) -> bool:
        if isinstance(spec, dict) and len(spec) == 1:
            ((key, arg),) = spec.items()
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::Equals":
                left, right = (self.value(a) for a in arg)
                return str(left) == str(right)
            if key == "Fn::Not":
                return not self._condition_value(arg[0])
            if key == "Fn::And":
                return all(self._condition_value(a) for a in arg)
            if key == "Fn::Or":
                return any(self._condition_value(a) for a in arg)
        raise TemplateError(f"unsupported condition {spec!r}")

    # -- values -------------------------------------------------------------------------------------------------
    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.raw_resources:
            return self._resource_ref(name)
        raise TemplateError(f"Ref to unknown name {name!r}")

    def _props(self, logical: str) -> dict[str, Any]:
        return self.value(self.raw_resources[logical].get("Properties") or {})

    def _resource_ref(self, logical: str) -> str:
        """What Ref returns for the resource types the templates use (CloudFormation Template Reference)."""
        kind = self.raw_resources[logical]["Type"]
        props = self._props(logical)
        p, acct = self.pseudo["AWS::Partition"], self.pseudo["AWS::AccountId"]
        if kind == "AWS::IAM::Role":
            return props["RoleName"]
        if kind == "AWS::IAM::ManagedPolicy":
            return f"arn:{p}:iam::{acct}:policy{props.get('Path', '/')}{props['ManagedPolicyName']}"
        if kind == "AWS::S3::Bucket":
            return props["BucketName"]
        if kind == "AWS::Glue::Database":
            return props["DatabaseInput"]["Name"]
        if kind == "AWS::Athena::WorkGroup":
            return props["Name"]
        raise TemplateError(f"Ref to {logical} ({kind}) is not modelled in scripts/cfn_templates.py")

    def get_att(self, logical: str, attribute: str) -> str:
        kind = self.raw_resources.get(logical, {}).get("Type")
        p, acct = self.pseudo["AWS::Partition"], self.pseudo["AWS::AccountId"]
        if kind == "AWS::IAM::Role" and attribute == "Arn":
            props = self._props(logical)
            return f"arn:{p}:iam::{acct}:role{props.get('Path', '/')}{props['RoleName']}"
        if kind == "AWS::S3::Bucket" and attribute == "Arn":
            return f"arn:{p}:s3:::{self._props(logical)['BucketName']}"
        raise TemplateError(f"Fn::GetAtt {logical}.{attribute} ({kind}) is not modelled in scripts/cfn_templates.py")

    def sub(self, text: str, variables: Mapping[str, Any]) -> str:
        def replace(match: re.Match) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name and name.split(".", 1)[0] in self.raw_resources:
                return self.get_att(*name.split(".", 1))
            value = self.ref(name)
            if value is NO_VALUE:
                raise TemplateError(f"Fn::Sub cannot use AWS::NoValue in {text!r}")
            return str(value)

        return _SUB_VAR.sub(replace, text)

    def value(self, node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in (self.value(item) for item in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::Sub":
                if isinstance(arg, str):
                    return self.sub(arg, {})
                text, variables = arg
                return self.sub(text, {k: self.value(v) for k, v in variables.items()})
            if key == "Fn::If":
                name, when_true, when_false = arg
                return self.value(when_true if self.condition(name) else when_false)
            if key == "Fn::GetAtt":
                logical, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.get_att(logical, attribute)
            if key == "Fn::Join":
                separator, items = arg
                return separator.join(str(v) for v in self.value(items))
            if key == "Fn::Select":
                index, items = arg
                return self.value(items)[int(self.value(index))]
            if key == "Fn::Split":
                separator, text = arg
                return str(self.value(text)).split(separator)
            if key.startswith("Fn::") or key == "Condition":
                raise TemplateError(f"intrinsic {key} is not handled by scripts/cfn_templates.py")
        out = {}
        for key, item in node.items():
            resolved = self.value(item)
            if resolved is not NO_VALUE:
                out[key] = resolved
        return out


def resolve(
    path: Path,
    parameters: Mapping[str, str] | None = None,
    *,
    account_id: str = EXAMPLE_ACCOUNT,
    region: str = EXAMPLE_REGION,
    partition: str = "aws",
) -> Resolved:
    """The stack `path` would create with these parameter values (defaults for the rest)."""
    template = load(path)
    resolver = _Resolver(template, parameters or {}, account_id, region, partition)
    resources = {}
    for logical, spec in (template.get("Resources") or {}).items():
        if "Condition" in spec and not resolver.condition(spec["Condition"]):
            continue
        resources[logical] = {"Type": spec["Type"], "Properties": resolver._props(logical)}
    outputs = {}
    for name, spec in (template.get("Outputs") or {}).items():
        if "Condition" in spec and not resolver.condition(spec["Condition"]):
            continue
        outputs[name] = resolver.value(spec["Value"])
    conditions = {name: resolver.condition(name) for name in template.get("Conditions") or {}}
    return Resolved(path, resolver.parameters, resources, outputs, conditions)


def relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def policy_documents(resolved: Resolved) -> list[PolicyDocument]:
    """Every IAM policy document of the stack: role trust policies, inline and managed policies, bucket policies."""
    name = relative(resolved.path)
    docs: list[PolicyDocument] = []
    for logical, res in resolved.resources.items():
        kind, props = res["Type"], res["Properties"]
        if kind == "AWS::IAM::Role":
            docs.append(PolicyDocument(name, logical, "trust policy", "trust", props["AssumeRolePolicyDocument"]))
            for policy in props.get("Policies", []):
                docs.append(PolicyDocument(name, logical, policy["PolicyName"], "identity", policy["PolicyDocument"]))
        elif kind in ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy"):
            docs.append(PolicyDocument(name, logical, logical, "identity", props["PolicyDocument"]))
        elif kind == "AWS::S3::BucketPolicy":
            docs.append(PolicyDocument(name, logical, logical, "resource", props["PolicyDocument"]))
    return docs


def templates() -> list[Path]:
    """The CloudFormation templates under deploy/ (docker-compose and Helm values live there too, and are not)."""
    return sorted(p for p in DEPLOY.rglob("*.yaml") if "AWSTemplateFormatVersion:" in p.read_text())
