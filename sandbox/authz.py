"""What AWS would authorize for a request: IAM action(s), resource ARNs and condition keys, per the Service
Authorization Reference ("Actions, resources, and condition keys for AWS services",
https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html).

The dispatcher records these per calling principal (GET /_sandbox/calls/principals) so tests can check shipped
IAM policies against every call the code makes. Where an operation's IAM action differs from its name (S3), the
mapping comes from "Required permissions for Amazon S3 API operations"
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-with-s3-policy-actions.html). An operation this
module does not know is recorded as ``<service>:<Operation>`` on "*" with ``mapped: false``: a checker then
fails on it and says to add it here, instead of silently passing.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

if TYPE_CHECKING:
    from sandbox.awsproto import AwsRequest
    from sandbox.fleet import Fleet


@dataclass(frozen=True)
class Authorization:
    operation: str  # "s3.HeadObject"
    action: str  # "s3:GetObject"
    resource: str  # an ARN, or "*" for actions without resource-level permissions
    context: tuple[tuple[str, str], ...] = ()  # condition keys the request carries
    mapped: bool = True  # False: the IAM action is a guess from the operation name

    def as_dict(self) -> dict[str, Any]:
        return {
            "operation": self.operation,
            "action": self.action,
            "resource": self.resource,
            "context": dict(self.context),
            "mapped": self.mapped,
        }


# Services whose IAM action is "<signing name>:<Operation>" for every operation (the SAR lists them so).
SAME_NAME_SERVICES = {"ssm", "ec2", "sts", "organizations", "securityhub", "kms", "sns", "iam"}

S3_OBJECT_ACTIONS = {
    "GetObject": "s3:GetObject",
    "HeadObject": "s3:GetObject",
    "PutObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "DeleteObject": "s3:DeleteObject",
    "GetObjectTagging": "s3:GetObjectTagging",
    "PutObjectTagging": "s3:PutObjectTagging",
}
S3_BUCKET_ACTIONS = {
    "ListObjectsV2": "s3:ListBucket",
    "ListObjects": "s3:ListBucket",
    "HeadBucket": "s3:ListBucket",
    "ListObjectVersions": "s3:ListBucketVersions",
    "ListMultipartUploads": "s3:ListBucketMultipartUploads",
    "CreateBucket": "s3:CreateBucket",
    "DeleteBucket": "s3:DeleteBucket",
    "GetBucketLocation": "s3:GetBucketLocation",
    "GetBucketPolicy": "s3:GetBucketPolicy",
    "PutBucketPolicy": "s3:PutBucketPolicy",
    "GetBucketEncryption": "s3:GetEncryptionConfiguration",
    "PutBucketEncryption": "s3:PutEncryptionConfiguration",
}
# The AWS managed key S3 uses for SSE-KMS when no key is named (UsingKMSEncryption, Amazon S3 User Guide).
S3_MANAGED_KEY_ALIAS = "alias/aws/s3"


def partition_of(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def node_arn(partition: str, region: str, account: str, node_id: str) -> str:
    """EC2 instances are ec2 instance/ ARNs, hybrid (mi-) nodes ssm managed-instance/ ARNs."""
    if node_id.startswith("mi-"):
        return f"arn:{partition}:ssm:{region}:{account}:managed-instance/{node_id}"
    return f"arn:{partition}:ec2:{region}:{account}:instance/{node_id}"


class Authorizer:
    """Turns requests into Authorizations; ``fleet`` gives the organization ids Organizations ARNs carry."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet

    def authorize(self, req: AwsRequest, account: str, secure: bool) -> list[Authorization]:
        service, op = req.service or "", req.action or req.method
        region = req.region or "us-east-1"
        part = partition_of(region)
        operation = f"{service}.{op}"
        base = (("aws:SecureTransport", "true" if secure else "false"),)
        if service == "s3":
            return self._s3(req, op, operation, account, region, part, base)
        if service not in SAME_NAME_SERVICES:
            return [Authorization(operation, f"{service}:{op}", "*", base, mapped=False)]
        body = _body(req)
        action = f"{service}:{op}"
        items: list[tuple[str, tuple[tuple[str, str], ...]]]
        if service == "ssm":
            items = [(r, ()) for r in self._ssm(op, body, account, region, part)]
        elif service == "sts":
            items = self._sts(op, req)
        elif service == "organizations":
            items = [(r, ()) for r in self._organizations(op, body, part)]
        elif service == "securityhub":
            items = [(r, ()) for r in self._securityhub(op, body, account, region, part)]
        elif service == "kms" and body.get("KeyId"):
            items = [(kms_key_arn(account, region, body["KeyId"]), ())]
        elif service == "sns" and (req.param("TopicArn") or req.param("TargetArn")):
            # Publish names its topic as TopicArn or TargetArn (SNS API reference, Publish).
            items = [(req.param("TopicArn") or req.param("TargetArn") or "*", ())]
        elif service == "ec2":
            items = [("*", (("ec2:Region", region),))]
        else:
            items = [("*", ())]
        return [Authorization(operation, action, resource, base + ctx) for resource, ctx in items]

    # -- per service --------------------------------------------------------------------------------------------
    def _ssm(self, op: str, body: dict, account: str, region: str, part: str) -> list[str]:
        nodes = lambda ids: [node_arn(part, region, account, i) for i in ids]  # noqa: E731
        if op == "SendCommand":
            name = str(body.get("DocumentName", ""))
            if name.startswith("arn:"):
                resources = [name]
            else:  # AWS-owned documents carry no account in their ARN
                owner = "" if name.startswith(("AWS-", "AWSEC2-", "AWSSupport-")) else account
                resources = [f"arn:{part}:ssm:{region}:{owner}:document/{name}"]
            if body.get("InstanceIds"):
                resources += nodes(body["InstanceIds"])
            else:  # Targets resolve when the command runs: any node of the account may be hit
                resources += [
                    f"arn:{part}:ec2:{region}:{account}:instance/*",
                    f"arn:{part}:ssm:{region}:{account}:managed-instance/*",
                ]
            if body.get("OutputS3BucketName"):
                resources.append(f"arn:{part}:s3:::{body['OutputS3BucketName']}")
            return resources
        if op == "DescribeInstancePatchStates":
            return nodes(body.get("InstanceIds") or []) or ["*"]
        if op == "DescribeInstancePatches":
            return nodes([body["InstanceId"]]) if body.get("InstanceId") else ["*"]
        if op == "GetPatchBaseline" and body.get("BaselineId"):
            return [f"arn:{part}:ssm:{region}:{account}:patchbaseline/{body['BaselineId']}"]
        if op == "ListTagsForResource" and body.get("ResourceId"):
            rid, kind = str(body["ResourceId"]), body.get("ResourceType")
            if kind == "ManagedInstance":
                return [f"arn:{part}:ssm:{region}:{account}:managed-instance/{rid}"]
            if kind == "PatchBaseline":
                return [f"arn:{part}:ssm:{region}:{account}:patchbaseline/{rid}"]
            if kind == "Document":
                return [f"arn:{part}:ssm:{region}:{account}:document/{rid}"]
        return ["*"]

    def _sts(self, op: str, req: AwsRequest) -> list[tuple[str, tuple[tuple[str, str], ...]]]:
        if op == "AssumeRole":
            ctx: list[tuple[str, str]] = []
            if req.param("ExternalId"):
                ctx.append(("sts:ExternalId", req.param("ExternalId") or ""))
            if req.param("RoleSessionName"):
                ctx.append(("sts:RoleSessionName", req.param("RoleSessionName") or ""))
            return [(req.param("RoleArn") or "*", tuple(ctx))]
        return [("*", ())]

    def _organizations(self, op: str, body: dict, part: str) -> list[str]:
        fleet = self.fleet
        prefix = f"arn:{part}:organizations::{fleet.management_account_id}"

        def arn(entity: str) -> str:
            if entity.startswith("r-"):
                return f"{prefix}:root/{fleet.org_id}/{entity}"
            if entity.startswith("ou-"):
                return f"{prefix}:ou/{fleet.org_id}/{entity}"
            return f"{prefix}:account/{fleet.org_id}/{entity}"

        for field in ("ParentId", "ChildId", "AccountId", "OrganizationalUnitId", "ResourceId"):
            if body.get(field):
                return [arn(str(body[field]))]
        return ["*"]

    def _securityhub(self, op: str, body: dict, account: str, region: str, part: str) -> list[str]:
        if op == "BatchImportFindings":
            products = sorted({str(f.get("ProductArn")) for f in body.get("Findings") or [] if isinstance(f, dict)})
            return products or ["*"]
        return [f"arn:{part}:securityhub:{region}:{account}:hub/default"]

    def _s3(
        self,
        req: AwsRequest,
        op: str,
        operation: str,
        account: str,
        region: str,
        part: str,
        base: tuple[tuple[str, str], ...],
    ) -> list[Authorization]:
        bucket, key = s3_bucket_and_key(req)
        if op == "ListBuckets":
            return [Authorization(operation, "s3:ListAllMyBuckets", "*", base)]
        if op == "CopyObject":
            source = unquote(req.headers.get("x-amz-copy-source", "")).lstrip("/").split("?", 1)[0]
            return [
                Authorization(operation, "s3:PutObject", f"arn:{part}:s3:::{bucket}/{key}", base),
                Authorization(operation, "s3:GetObject", f"arn:{part}:s3:::{source}", base),
            ]
        if op == "DeleteObjects":
            keys = re.findall(r"<Key>([^<]+)</Key>", req.body.decode("utf-8", "replace"))
            return [Authorization(operation, "s3:DeleteObject", f"arn:{part}:s3:::{bucket}/{k}", base) for k in keys]
        if op in S3_OBJECT_ACTIONS:
            action, ctx, implied = S3_OBJECT_ACTIONS[op], list(base), []
            if op in ("PutObject", "CreateMultipartUpload"):
                sse = req.headers.get("x-amz-server-side-encryption")
                kms_id = req.headers.get("x-amz-server-side-encryption-aws-kms-key-id")
                if sse:
                    ctx.append(("s3:x-amz-server-side-encryption", sse))
                if kms_id:
                    ctx.append(("s3:x-amz-server-side-encryption-aws-kms-key-id", kms_id))
                kms_key = _write_kms_key(account, region, bucket, sse, kms_id)
                if kms_key:
                    implied.append(_via_s3(operation, "kms:GenerateDataKey", kms_key, account, region, base))
            elif op == "GetObject":  # HeadObject returns metadata only: no KMS call (HeadObject, S3 API Reference)
                kms_key = _stored_kms_key(account, region, bucket, key)
                if kms_key:
                    implied.append(_via_s3(operation, "kms:Decrypt", kms_key, account, region, base))
            return [Authorization(operation, action, f"arn:{part}:s3:::{bucket}/{key}", tuple(ctx)), *implied]
        if op in S3_BUCKET_ACTIONS:
            ctx = list(base)
            prefix = (req.query.get("prefix") or [None])[0]
            if prefix is not None and S3_BUCKET_ACTIONS[op] == "s3:ListBucket":
                ctx.append(("s3:prefix", prefix))
            return [Authorization(operation, S3_BUCKET_ACTIONS[op], f"arn:{part}:s3:::{bucket}", tuple(ctx))]
        resource = f"arn:{part}:s3:::{bucket}/{key}" if key else f"arn:{part}:s3:::{bucket}"
        return [Authorization(operation, f"s3:{op}", resource, base, mapped=False)]


def _body(req: AwsRequest) -> dict:
    if not req.body:
        return {}
    try:
        data = json.loads(req.body)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def s3_bucket_and_key(req: AwsRequest) -> tuple[str, str]:
    """Path-style (/bucket/key, what botocore uses with a custom endpoint) or virtual-hosted (bucket.s3.…)."""
    host = req.headers.get("host", "").split(":", 1)[0]
    path = req.path.lstrip("/")
    if ".s3." in host or ".s3-" in host:
        return host.split(".", 1)[0], unquote(path)
    bucket, _, key = path.partition("/")
    return bucket, unquote(key)


def _via_s3(
    operation: str, action: str, key_arn: str, account: str, region: str, base: tuple[tuple[str, str], ...]
) -> Authorization:
    """A KMS call S3 makes as the caller (kms:ViaService and kms:CallerAccount, "AWS KMS condition keys")."""
    ctx = (*base, ("kms:CallerAccount", account), ("kms:ViaService", f"s3.{region}.amazonaws.com"))
    return Authorization(operation, action, key_arn, ctx)


def kms_key_arn(account: str, region: str, key_id: str) -> str:
    """A KMS key id, key ARN, alias or alias ARN as the key ARN KMS authorizes on (moto's keys, else as given)."""
    if key_id.startswith("arn:") and ":key/" in key_id:
        return key_id
    try:
        from moto.kms.models import kms_backends

        return kms_backends[account][region].describe_key(key_id).arn
    except Exception:  # an unknown key or alias: keep what was asked for, as an ARN
        if key_id.startswith("arn:"):
            return key_id
        kind = "" if key_id.startswith("alias/") else "key/"
        return f"arn:{partition_of(region)}:kms:{region}:{account}:{kind}{key_id}"


def _bucket(account: str, region: str, bucket: str) -> Any:
    from moto.s3.models import s3_backends

    try:
        return s3_backends[account][partition_of(region)].get_bucket(bucket)
    except Exception:  # no such bucket: S3 answers NoSuchBucket, no KMS call happens
        return None


def _write_kms_key(account: str, region: str, bucket: str, sse: str | None, kms_id: str | None) -> str | None:
    if sse is None:  # no header: the bucket's default encryption decides
        rule = ((getattr(_bucket(account, region, bucket), "encryption", None) or {}).get("Rule")) or {}
        default = rule.get("ApplyServerSideEncryptionByDefault") or {}
        if default.get("SSEAlgorithm") != "aws:kms":
            return None
        kms_id = default.get("KMSMasterKeyID")
    elif sse != "aws:kms":
        return None
    return kms_key_arn(account, region, kms_id or S3_MANAGED_KEY_ALIAS)


def _stored_kms_key(account: str, region: str, bucket: str, key: str) -> str | None:
    found = _bucket(account, region, bucket)
    obj = found.keys.get(key) if found is not None else None
    if obj is None or getattr(obj, "encryption", None) != "aws:kms":
        return None
    return kms_key_arn(account, region, obj.kms_key_id or S3_MANAGED_KEY_ALIAS)
