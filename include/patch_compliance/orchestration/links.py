"""Operator extra links: AWS console pages of a task's SSM command, its S3 report and its Security Hub findings.

They are the amazon provider's ``BaseAwsLink`` (the same mechanism its own operators use): during ``execute`` an
operator stores the link's fields in XCom with ``<Link>.persist(...)`` (the helpers below validate them first),
and when the task finishes or defers, the worker formats ``format_str`` from that XCom and pushes the URL under
``_link_<ClassName>``, which the api-server reads back (``XComOperatorLink``). Links are declared on the operator
classes (``operator_extra_links``); the plugin lists the classes too so they show on Admin > Plugins.

Nothing pushed yet (the task failed before it knew the command id) gives ``""``: a disabled link in the UI.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from airflow.providers.amazon.aws.links.base_aws import BASE_AWS_CONSOLE_LINK, BaseAwsLink

from include.patch_compliance.vocab import FINDINGS_GENERATOR_ID, REGION_PATTERN

_REGION = re.compile(REGION_PATTERN)
# SendCommand returns a UUID CommandId (botocore ssm model: CommandId length 36).
_COMMAND_ID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


class SsmRunCommandLink(BaseAwsLink):
    name = "SSM Run Command"
    key = "pc_link_ssm_command"
    format_str = BASE_AWS_CONSOLE_LINK + "/systems-manager/run-command/{command_id}?region={region_name}"


class S3ReportLink(BaseAwsLink):
    name = "Report (S3)"
    key = "pc_link_report"
    format_str = BASE_AWS_CONSOLE_LINK + "/s3/buckets/{bucket}?region={region_name}&prefix={prefix}&showversions=false"


class SecurityHubFindingsLink(BaseAwsLink):
    name = "Security Hub findings"
    key = "pc_link_securityhub"
    format_str = BASE_AWS_CONSOLE_LINK + "/securityhub/home?region={region_name}#/findings?search={search}"


# What an operator declares: ``operator_extra_links = PATCH_COMPLIANCE_LINKS`` (or a subset).
PATCH_COMPLIANCE_LINKS: tuple[BaseAwsLink, ...] = (SsmRunCommandLink(), S3ReportLink(), SecurityHubFindingsLink())


def partition_of(region: str) -> str:
    """The partition of a region name (China and GovCloud have their own console domains)."""
    _check_region(region)
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def _check_region(region: str) -> str:
    if not isinstance(region, str) or not _REGION.match(region):
        raise ValueError(f"region {region!r} is not an AWS region name such as 'eu-west-1'")
    return region


def ssm_command_fields(region: str, command_id: str) -> dict[str, str]:
    _check_region(region)
    if not isinstance(command_id, str) or not _COMMAND_ID.match(command_id):
        raise ValueError(f"command_id {command_id!r} is not an SSM CommandId (a 36-character UUID)")
    return {"command_id": command_id}


def s3_report_fields(bucket: str, key_prefix: str) -> dict[str, str]:
    """A "folder" of the bucket: the console wants the prefix URL-encoded and ending with '/'."""
    if not isinstance(bucket, str) or not _BUCKET.match(bucket):
        raise ValueError(f"bucket {bucket!r} is not an S3 bucket name (3-63 lowercase letters, digits, '.', '-')")
    prefix = (key_prefix or "").strip("/")
    return {"bucket": bucket, "prefix": quote(f"{prefix}/" if prefix else "", safe="/")}


def securityhub_fields(generator_id: str = FINDINGS_GENERATOR_ID) -> dict[str, str]:
    """Findings filtered on GeneratorId EQUALS ``generator_id``. The console keeps filters in the URL fragment as
    ``search=<Field>=\\operator\\:EQUALS\\:<value>``, the value URL-encoded and the whole filter encoded once more
    (hence ``%255C`` for a backslash)."""
    if not isinstance(generator_id, str) or not generator_id.strip():
        raise ValueError("generator_id must be a non-empty string, e.g. 'patch-compliance/node-patch-state'")
    inner = quote(f"\\operator\\:EQUALS\\:{generator_id}", safe="")
    return {"search": quote(f"GeneratorId={inner}", safe="")}


def link_url(link: BaseAwsLink, region: str, fields: dict[str, str]) -> str:
    """The URL ``link`` shows for these fields (what the worker formats from the persisted XCom)."""
    return link.format_link(region_name=region, aws_domain=BaseAwsLink.get_aws_domain(partition_of(region)), **fields)


def persist(link: type[BaseAwsLink], context: Any, operator: Any, region: str, fields: dict[str, str]) -> None:
    """Store a validated link for this task instance (map index included)."""
    link.persist(context=context, operator=operator, region_name=region, aws_partition=partition_of(region), **fields)
