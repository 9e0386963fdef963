"""Check the IAM templates of deploy/iam against what the sandbox recorded (GET /_sandbox/calls/principals).

(a) ``violations``: every call a product principal made is allowed by that principal's template: identity
    policies evaluated like IAM does for one account (explicit Deny wins, then any Allow whose Action, Resource
    and Condition match), plus the reports bucket policy's Deny statements for the hub's S3 calls.
(b) ``unused_grants``: every action the templates grant is called by some recorded test (statements whose Sid
    starts with ``Install`` aside: the end-to-end suite never installs patches).

Which template applies: a session of the member role (role name = MemberRoleName) -> deploy/iam/member-role.yaml;
the hub role's sessions, and the emulator's dummy credentials that stand for it -> deploy/iam/hub-role.yaml.
Deployment parameters are bound per call from what it touched (account, member role name, reports bucket and
top-level prefix, KMS key); the values themselves are pinned by tests/deploy/test_policy_scoping.py.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scripts.cfn_templates import (
    EXAMPLE_PARAMETERS,
    HUB_TEMPLATE,
    MEMBER_TEMPLATE,
    PolicyDocument,
    load,
    policy_documents,
    relative,
    resolve,
)

COVERAGE_EXEMPT_SID_PREFIX = "Install"
# Actions AWS authorizes for every caller: "No permissions are required to perform this operation" (STS API
# Reference, GetCallerIdentity, https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html).
NEEDS_NO_PERMISSION = frozenset({"sts:GetCallerIdentity"})
SAR_URL = "https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html"


@dataclass(frozen=True)
class Call:
    """One distinct authorization of one principal, as the sandbox recorded it."""

    principal: str
    kind: str
    account_id: str
    role_name: str | None
    operation: str
    action: str
    resource: str
    context: tuple[tuple[str, str], ...]
    mapped: bool = True
    source: str = ""  # where it was recorded (a test module)

    @property
    def ctx(self) -> dict[str, str]:
        return dict(self.context)


def calls_from_report(principals: Iterable[Mapping[str, Any]], source: str = "") -> list[Call]:
    out = []
    for p in principals:
        for a in p["authorizations"]:
            out.append(
                Call(
                    p["principal"],
                    p["kind"],
                    p["account_id"],
                    p.get("role_name"),
                    a["operation"],
                    a["action"],
                    a["resource"],
                    tuple(sorted(a.get("context", {}).items())),
                    a.get("mapped", True),
                    source,
                )
            )
    return out


# -- policy evaluation ------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=4096)
def _pattern(text: str, case_sensitive: bool) -> re.Pattern:
    """IAM wildcards: '*' any run of characters, '?' one character, everything else literal."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in text)
    return re.compile(f"^{body}$", 0 if case_sensitive else re.IGNORECASE)


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def _matches(patterns: Any, value: str, case_sensitive: bool = True) -> bool:
    return any(_pattern(str(p), case_sensitive).match(value) for p in _as_list(patterns))


_STRING_OPS = {"StringEquals", "StringLike", "ArnEquals", "ArnLike"}
_NEGATED_OPS = {
    "StringNotEquals": "StringEquals",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
}


def condition_holds(condition: Mapping[str, Mapping[str, Any]], context: Mapping[str, str]) -> bool:
    """IAM condition semantics for the operators the templates use: a missing key makes a positive operator
    false and a negated one true ("IAM JSON policy elements: Condition operators", IAM User Guide)."""
    for operator, tests in condition.items():
        if_exists = operator.endswith("IfExists")
        op = operator.removesuffix("IfExists")
        for key, expected in tests.items():
            present = key in context
            if op == "Null":
                holds = (not present) == (str(expected).lower() == "true")
            elif not present:
                holds = if_exists or op in _NEGATED_OPS
            elif op == "Bool":
                holds = context[key].lower() in [str(e).lower() for e in _as_list(expected)]
            elif op in _STRING_OPS:
                holds = _op_match(op, expected, context[key])
            elif op in _NEGATED_OPS:
                holds = not _op_match(_NEGATED_OPS[op], expected, context[key])
            else:
                raise ValueError(f"condition operator {operator} is not evaluated by tests/deploy/iam_check.py")
            if not holds:
                return False
    return True


def _op_match(op: str, expected: Any, value: str) -> bool:
    if op == "StringEquals":
        return value in [str(e) for e in _as_list(expected)]
    return _matches(expected, value)  # StringLike, ArnEquals/ArnLike (ARN matching allows wildcards)


def _applies(stmt: Mapping[str, Any], action: str, resource: str, context: Mapping[str, str]) -> bool:
    if "Action" in stmt and not _matches(stmt["Action"], action, case_sensitive=False):
        return False
    if "NotAction" in stmt and _matches(stmt["NotAction"], action, case_sensitive=False):
        return False
    if "Resource" in stmt and not _matches(stmt["Resource"], resource):
        return False
    if "NotResource" in stmt and _matches(stmt["NotResource"], resource):
        return False
    return condition_holds(stmt.get("Condition") or {}, context)


def decide(docs: Iterable[PolicyDocument], action: str, resource: str, context: Mapping[str, str]) -> tuple[str, str]:
    """("Deny" | "Allow" | "ImplicitDeny", the deciding document/statement)."""
    allow = ""
    for doc in docs:
        for stmt in _as_list(doc.document.get("Statement", [])):
            if _applies(stmt, action, resource, context):
                where = f"{doc.name}/{stmt.get('Sid', '?')}"
                if stmt["Effect"] == "Deny":
                    return "Deny", where
                allow = allow or where
    return ("Allow", allow) if allow else ("ImplicitDeny", "")


# -- which template, bound how ----------------------------------------------------------------------------------
@dataclass
class Templates:
    hub: Path = HUB_TEMPLATE
    member: Path = MEMBER_TEMPLATE
    _cache: dict = field(default_factory=dict, repr=False)

    def docs(self, path: Path, account: str, parameters: Mapping[str, str]) -> list[PolicyDocument]:
        key = (path, account, tuple(sorted(parameters.items())))
        if key not in self._cache:
            self._cache[key] = policy_documents(resolve(path, parameters, account_id=account))
        return self._cache[key]

    @functools.cached_property
    def hub_role_name(self) -> str:
        return str(load(self.hub)["Parameters"]["HubRoleName"]["Default"])

    @functools.cached_property
    def member_role_name(self) -> str:
        return str(load(self.member)["Parameters"]["MemberRoleName"]["Default"])


def _s3_parts(arn: str) -> tuple[str, str] | None:
    match = re.match(r"^arn:[\w-]+:s3:::([^/]+)/?(.*)$", arn)
    return (match.group(1), match.group(2)) if match else None


def _hub_parameters(call: Call) -> dict[str, str]:
    params = {"ReportsBucketName": EXAMPLE_PARAMETERS["hub-role.yaml"]["ReportsBucketName"]}
    parts = _s3_parts(call.resource) if call.action.startswith("s3:") else None
    if parts:
        params["ReportsBucketName"] = parts[0]
        if "/" in parts[1]:
            params["ReportsPrefix"] = parts[1].split("/", 1)[0]
    if call.action == "sns:Publish" and re.match(r"^arn:aws[\w-]*:sns:[\w-]+:\d{12}:[\w-]+$", call.resource):
        params["AlertsTopicArn"] = call.resource  # the topic of alerts.sns.topic_arn, as the stack is given it
    if call.action.startswith("kms:") and re.match(r"^arn:aws[\w-]*:kms:[\w-]+:\d{12}:key/[\w-]+$", call.resource):
        params["ReportsKmsKeyArn"] = call.resource
    return params


def _bucket_policy_parameters(call: Call, params: dict[str, str]) -> dict[str, str]:
    """The reports bucket as the hub template creates it, with the key the upload asked for when it is SSE-KMS."""
    bound = {**params, "CreateReportsBucket": "true"}
    ctx = call.ctx
    if ctx.get("s3:x-amz-server-side-encryption") == "aws:kms":
        key = ctx.get("s3:x-amz-server-side-encryption-aws-kms-key-id", "")
        valid = re.match(r"^arn:aws[\w-]*:kms:[\w-]+:\d{12}:key/[\w-]+$", key)
        # A key id or alias where the bucket policy needs the key ARN: bind an ARN that cannot match, so the
        # DenyUploadsWithAnotherKmsKey statement shows the mismatch.
        bound["ReportsKmsKeyArn"] = key if valid else f"arn:aws:kms:us-east-1:{call.account_id}:key/key-arn-required"
    return bound


@dataclass(frozen=True)
class Violation:
    call: Call
    template: str
    reason: str

    def __str__(self) -> str:
        c = self.call
        where = f"{c.source}: " if c.source else ""
        return (
            f"{where}{c.principal} ({c.kind}) called {c.operation} = IAM action {c.action} on {c.resource}; "
            f"{self.reason} Edit {self.template}."
        )


def violations(calls: Iterable[Call], templates: Templates | None = None) -> list[Violation]:
    templates = templates or Templates()
    found: list[Violation] = []
    for call in calls:
        if call.kind in ("setup", "anonymous") or call.action in NEEDS_NO_PERMISSION:
            continue
        is_member = call.kind == "assumed-role" and call.role_name == templates.member_role_name
        is_hub = call.kind == "account" or (call.kind == "assumed-role" and call.role_name == templates.hub_role_name)
        if not (is_member or is_hub):
            reason = f"that role is neither the member role {templates.member_role_name!r} nor the hub role " + (
                f"{templates.hub_role_name!r}."
            )
            found.append(Violation(call, relative(templates.member), reason))
            continue
        path = templates.member if is_member else templates.hub
        name = relative(path)
        if _assumes_hub_role(call, templates):
            # Airflow's own credentials taking the hub role (the connection's role_arn): the hub role's trust
            # policy decides, with its default parameters (this account may assume it).
            [trust] = [d for d in templates.docs(path, call.account_id, _hub_parameters(call)) if d.kind == "trust"]
            trusted = trust.document["Statement"][0]["Principal"]["AWS"]
            if trusted not in (call.principal, f"arn:aws:iam::{call.account_id}:root"):
                found.append(Violation(call, name, f"the hub role's trust policy trusts {trusted}, not this caller."))
            continue
        if not call.mapped:
            reason = f"the emulator has no IAM mapping for {call.operation}: add it from the Service Authorization "
            found.append(Violation(call, "sandbox/authz.py", reason + f"Reference ({SAR_URL}), then check again."))
            continue
        if is_member:
            params = {
                "MemberRoleName": call.role_name or templates.member_role_name,
                "HubRoleArn": EXAMPLE_PARAMETERS["member-role.yaml"]["HubRoleArn"],
            }
            parts = _s3_parts(call.resource)
            if call.action == "ssm:SendCommand" and parts and not parts[1]:
                params["CommandOutputBucketName"] = parts[0]
        else:
            params = _hub_parameters(call)
        docs = [d for d in templates.docs(path, call.account_id, params) if d.kind == "identity"]
        decision, where = decide(docs, call.action, call.resource, call.ctx)
        if decision != "Allow":
            why = f"denied by {where}." if decision == "Deny" else "no statement of its policies allows it."
            why += " Add the action to a statement of that template, scoped to the resource type the Service "
            found.append(Violation(call, name, why + f"Authorization Reference lists for it ({SAR_URL})."))
            continue
        if is_hub and call.action.startswith("s3:"):
            bound = _bucket_policy_parameters(call, params)
            bucket_docs = [d for d in templates.docs(path, call.account_id, bound) if d.kind == "resource"]
            # The emulator speaks plain HTTP; botocore uses HTTPS against AWS, which the TLS statement requires.
            ctx = {**call.ctx, "aws:SecureTransport": "true"}
            decision, where = decide(bucket_docs, call.action, call.resource, ctx)
            if decision == "Deny":
                reason = f"the reports bucket policy denies it ({where}) with request context {ctx}."
                found.append(Violation(call, name, reason))
    return found


def _assumes_hub_role(call: Call, templates: Templates) -> bool:
    return (
        call.kind == "account"
        and call.action == "sts:AssumeRole"
        and call.resource.endswith(f":iam::{call.account_id}:role/{templates.hub_role_name}")
    )


def granted_actions(path: Path) -> list[tuple[str, str]]:
    """(statement Sid, action) for every Allow of the template's identity policies, all optional features on."""
    docs = policy_documents(resolve(path, EXAMPLE_PARAMETERS[path.name]))
    out = []
    for doc in docs:
        if doc.kind != "identity":
            continue
        for stmt in _as_list(doc.document["Statement"]):
            if stmt["Effect"] == "Allow":
                out += [(stmt.get("Sid", "?"), a) for a in _as_list(stmt.get("Action", []))]
    return out


def unused_grants(calls: Iterable[Call], templates: Templates | None = None) -> list[str]:
    """Granted actions no recorded call needed, one message each (Install statements aside)."""
    templates = templates or Templates()
    called: dict[str, set[str]] = {"member": set(), "hub": set()}
    for call in calls:
        if call.kind == "assumed-role" and call.role_name == templates.member_role_name:
            called["member"].add(call.action)
        elif _assumes_hub_role(call, templates):
            continue  # Airflow's credentials taking the hub role: not a permission of the hub role itself
        elif call.kind == "account" or (call.kind == "assumed-role" and call.role_name == templates.hub_role_name):
            called["hub"].add(call.action)
    messages = []
    for who, path in (("member", templates.member), ("hub", templates.hub)):
        for sid, action in granted_actions(path):
            if sid.startswith(COVERAGE_EXEMPT_SID_PREFIX):
                continue
            if not any(_pattern(action, False).match(a) for a in called[who]):
                messages.append(
                    f"{relative(path)} grants {action} (statement {sid}) but no end-to-end test made the {who} "
                    "principal call it: remove it, or add a test that exercises the code path that needs it."
                )
    return messages
