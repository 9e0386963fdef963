"""Publish operators: reports to S3 and findings to Security Hub, each with its console link."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator

from include.patch_compliance import tasks as body
from include.patch_compliance.runtime import RunContext
from include.patch_compliance.ui.links import (
    FINDINGS_GENERATOR_ID,
    XCOM_REPORT,
    XCOM_SECURITYHUB,
    S3ReportLink,
    SecurityHubFindingsLink,
    s3_report_url,
    securityhub_findings_url,
)


class PublishReportOperator(BaseOperator):
    """Build the run's pandas tables from the staged raw documents and command outcomes, and publish Parquet
    (Hive-partitioned), CSV, summary.json and the HTML report to S3; ``latest/`` is written last.

    Runs even when a wave failed (trigger rule ``all_done``), so nothing already collected is lost; the final
    gate still fails the run.
    """

    operator_extra_links = (S3ReportLink(),)
    ui_color = "#d8f5e0"

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("trigger_rule", "all_done")
        super().__init__(**kwargs)

    def execute(self, context: Any) -> dict[str, Any]:
        run = RunContext.from_airflow(context)
        result = body.report(run)
        region = run.hub.session.region_name or "us-east-1"
        context["ti"].xcom_push(key=XCOM_REPORT, value=s3_report_url(run.bucket, result["run_prefix"], region))
        return result


class PublishFindingsOperator(BaseOperator):
    """Import one Security Hub finding per non-compliant node into each node's own account-region, update the
    ones seen again and archive the remediated or vanished ones. Disabled hubs and unreachable accounts are
    recorded, not fatal.
    """

    operator_extra_links = (SecurityHubFindingsLink(),)
    ui_color = "#f5d8d8"

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("trigger_rule", "all_done")
        super().__init__(**kwargs)

    def execute(self, context: Any) -> dict[str, Any]:
        run = RunContext.from_airflow(context)
        result = body.security_hub(run)
        region = run.cfg.regions[0]
        context["ti"].xcom_push(key=XCOM_SECURITYHUB, value=securityhub_findings_url(region, FINDINGS_GENERATOR_ID))
        return result
