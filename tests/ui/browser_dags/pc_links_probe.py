"""Test-only DAG: an operator that persists the three links and declares PATCH_COMPLIANCE_LINKS, mapped over two
regions, so the browser test can check the links Airflow 3 serves for each map index."""

from __future__ import annotations

from airflow.sdk import DAG, BaseOperator

from include.patch_compliance.orchestration.links import (
    PATCH_COMPLIANCE_LINKS,
    S3ReportLink,
    SecurityHubFindingsLink,
    SsmRunCommandLink,
    persist,
    s3_report_fields,
    securityhub_fields,
    ssm_command_fields,
)

COMMANDS = {"eu-west-1": "11111111-2222-4333-8444-555555555555", "us-east-1": "66666666-7777-4888-9999-000000000000"}


class LinkProbeOperator(BaseOperator):
    operator_extra_links = PATCH_COMPLIANCE_LINKS

    def __init__(self, *, region: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.region = region

    def execute(self, context) -> None:
        persist(SsmRunCommandLink, context, self, self.region, ssm_command_fields(self.region, COMMANDS[self.region]))
        fields = s3_report_fields("pc-reports-test", f"patch-compliance/runs/{self.region}")
        persist(S3ReportLink, context, self, self.region, fields)
        persist(SecurityHubFindingsLink, context, self, self.region, securityhub_fields())


with DAG("pc_links_probe", schedule=None, catchup=False, tags=["test"]):
    LinkProbeOperator.partial(task_id="scan", map_index_template="{{ task.region }}").expand(region=list(COMMANDS))
