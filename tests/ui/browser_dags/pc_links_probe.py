"""Test-only DAG: an operator that pushes the three link XComs and declares PATCH_COMPLIANCE_LINKS, mapped over two
regions, so the browser test can check the links Airflow 3 serves for each map index."""

from __future__ import annotations

from airflow.sdk import DAG, BaseOperator

from include.patch_compliance.ui.links import (
    PATCH_COMPLIANCE_LINKS,
    XCOM_REPORT,
    XCOM_SECURITYHUB,
    XCOM_SSM_COMMAND,
    s3_report_url,
    securityhub_findings_url,
    ssm_command_url,
)

COMMANDS = {"eu-west-1": "11111111-2222-4333-8444-555555555555", "us-east-1": "66666666-7777-4888-9999-000000000000"}


class LinkProbeOperator(BaseOperator):
    operator_extra_links = PATCH_COMPLIANCE_LINKS

    def __init__(self, *, region: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.region = region

    def execute(self, context) -> None:
        ti = context["ti"]
        ti.xcom_push(key=XCOM_SSM_COMMAND, value=ssm_command_url(self.region, COMMANDS[self.region]))
        ti.xcom_push(
            key=XCOM_REPORT, value=s3_report_url("pc-reports-test", f"patch-compliance/runs/{self.region}", self.region)
        )
        ti.xcom_push(key=XCOM_SECURITYHUB, value=securityhub_findings_url(self.region))


with DAG("pc_links_probe", schedule=None, catchup=False, tags=["test"]):
    LinkProbeOperator.partial(task_id="scan", map_index_template="{{ task.region }}").expand(region=list(COMMANDS))
