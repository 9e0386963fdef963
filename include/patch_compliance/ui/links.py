"""Operator extra links: AWS console URLs for a task's SSM command, its S3 report and its Security Hub findings.

How Airflow 3.3 evaluates them (``airflow/sdk/execution_time/task_runner.py::finalize`` and
``airflow/serialization/definitions/operatorlink.py::XComOperatorLink``):

1. during ``execute`` our operators build a URL with the pure builders below and push it as a plain string XCom
   (``pc_link_ssm_command`` / ``pc_link_report`` / ``pc_link_securityhub``);
2. when the task finishes, the *worker* calls ``get_link(operator, ti_key=<the runtime TI>)`` for every link in
   ``operator.operator_extra_links`` and pushes the result under ``link.xcom_key`` (``_link_<ClassName>``);
3. the api-server never runs this code: it deserialises the operator's links as ``XComOperatorLink(name,
   xcom_key)`` and reads ``_link_<ClassName>`` back. So links are declared on the operator class
   (``operator_extra_links = PATCH_COMPLIANCE_LINKS``); the plugin lists the classes too so they show on
   Admin > Plugins, with ``operators = []`` so the api-server does not swap in these worker-side objects.

A missing XCom (the task failed before it knew the command id) gives ``""``, which the UI shows as a disabled link.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, ClassVar
from urllib.parse import quote

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey

XCOM_SSM_COMMAND = "pc_link_ssm_command"
XCOM_REPORT = "pc_link_report"
XCOM_SECURITYHUB = "pc_link_securityhub"
# The GeneratorId our Security Hub publisher stamps on every finding (one finding per node).
FINDINGS_GENERATOR_ID = "patch-compliance/node-patch-state"

_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
# SendCommand returns a UUID CommandId (botocore ssm model: CommandId length 36).
_COMMAND_ID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
# Hosts a link may point at: the consoles of the three partitions (a pushed XCom is data, not trusted).
_ALLOWED_HOST = re.compile(r"^https://([a-z0-9-]+\.)?console\.(aws\.amazon\.com|amazonaws\.cn|amazonaws-us-gov\.com)/")


def _check_region(region: str) -> str:
    if not isinstance(region, str) or not _REGION.match(region):
        raise ValueError(f"region {region!r} is not an AWS region name such as 'eu-west-1'")
    return region


def _console_base(region: str) -> str:
    """Commercial regions get the regional console host (it opens in the right region without a redirect);
    China and GovCloud use their partition's console domain (as the amazon provider's links do)."""
    if region.startswith("cn-"):
        return "https://console.amazonaws.cn"
    if region.startswith("us-gov-"):
        return "https://console.amazonaws-us-gov.com"
    return f"https://{region}.console.aws.amazon.com"


def ssm_command_url(region: str, command_id: str) -> str:
    """Run Command page of one command: ``https://<region>.console.aws.amazon.com/systems-manager/run-command/
    <command_id>?region=<region>``."""
    _check_region(region)
    if not isinstance(command_id, str) or not _COMMAND_ID.match(command_id):
        raise ValueError(f"command_id {command_id!r} is not an SSM CommandId (a 36-character UUID)")
    return f"{_console_base(region)}/systems-manager/run-command/{command_id}?region={region}"


def s3_report_url(bucket: str, key_prefix: str, region: str) -> str:
    """S3 console view of a "folder" (the run's report prefix); the console wants the prefix to end with '/'."""
    _check_region(region)
    if not isinstance(bucket, str) or not _BUCKET.match(bucket):
        raise ValueError(f"bucket {bucket!r} is not an S3 bucket name (3-63 lowercase letters, digits, '.', '-')")
    prefix = (key_prefix or "").strip("/")
    prefix = f"{prefix}/" if prefix else ""
    if region.startswith(("cn-", "us-gov-")):
        base = f"{_console_base(region)}/s3/buckets"
    else:
        base = "https://s3.console.aws.amazon.com/s3/buckets"
    return f"{base}/{bucket}?region={region}&prefix={quote(prefix, safe='/')}&showversions=false"


def securityhub_findings_url(region: str, generator_id: str = FINDINGS_GENERATOR_ID) -> str:
    """Findings view filtered on GeneratorId EQUALS ``generator_id``.

    The console keeps filters in the URL fragment as ``search=<Field>=\\operator\\:EQUALS\\:<value>`` where the
    part after '=' is URL-encoded and the whole filter is encoded once more (hence ``%255C`` for a backslash).
    """
    _check_region(region)
    if not isinstance(generator_id, str) or not generator_id.strip():
        raise ValueError("generator_id must be a non-empty string, e.g. 'patch-compliance/node-patch-state'")
    inner = quote(f"\\operator\\:EQUALS\\:{generator_id}", safe="")
    search = quote(f"GeneratorId={inner}", safe="")
    return f"{_console_base(region)}/securityhub/home?region={region}#/findings?search={search}"


class _XComUrlLink(BaseOperatorLink):
    """Reads the URL the operator pushed under ``source_key`` for this very task instance (map index included)."""

    source_key: ClassVar[str]

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        # Imported here: only the worker runs get_link, and the module resolves the configured XCom backend.
        from airflow.sdk.execution_time.xcom import XCom

        value = XCom.get_value(ti_key=ti_key, key=self.source_key)
        if value is None or value == "":
            return ""
        if not isinstance(value, str) or not _ALLOWED_HOST.match(value):
            raise ValueError(
                f"XCom {self.source_key!r} of task {ti_key.task_id!r} must be an AWS console URL string "
                f"(https://...console.aws.amazon.com/...), got {value!r}; build it with "
                f"include.patch_compliance.ui.links"
            )
        return value


class SsmRunCommandLink(_XComUrlLink):
    name = "SSM Run Command"
    source_key = XCOM_SSM_COMMAND


class S3ReportLink(_XComUrlLink):
    name = "Report (S3)"
    source_key = XCOM_REPORT


class SecurityHubFindingsLink(_XComUrlLink):
    name = "Security Hub findings"
    source_key = XCOM_SECURITYHUB


# What an operator declares: ``operator_extra_links = PATCH_COMPLIANCE_LINKS`` (or a subset).
PATCH_COMPLIANCE_LINKS: tuple[BaseOperatorLink, ...] = (
    SsmRunCommandLink(),
    S3ReportLink(),
    SecurityHubFindingsLink(),
)
