"""Operator extra links: URL builders, link classes reading the operator's XCom, Airflow 3 (de)serialisation."""

from __future__ import annotations

from urllib.parse import unquote

import pytest

from include.patch_compliance.ui import links
from include.patch_compliance.ui.links import (
    PATCH_COMPLIANCE_LINKS,
    S3ReportLink,
    SecurityHubFindingsLink,
    SsmRunCommandLink,
    s3_report_url,
    securityhub_findings_url,
    ssm_command_url,
)

CMD = "0b1e6a28-7f7c-4b5e-9a42-3f0c5d5f1e22"


def test_ssm_command_url_is_the_regional_run_command_page() -> None:
    assert ssm_command_url("eu-west-1", CMD) == (
        f"https://eu-west-1.console.aws.amazon.com/systems-manager/run-command/{CMD}?region=eu-west-1"
    )
    assert ssm_command_url("cn-north-1", CMD).startswith("https://console.amazonaws.cn/systems-manager/run-command/")
    assert ssm_command_url("us-gov-west-1", CMD).startswith("https://console.amazonaws-us-gov.com/")


@pytest.mark.parametrize(
    ("region", "command_id", "field"),
    [
        ("eu_west_1", CMD, "region"),
        ("", CMD, "region"),
        ("eu-west-1", "abc", "command_id"),
        ("eu-west-1", None, "command_id"),
    ],
)
def test_ssm_command_url_rejects_bad_input_naming_the_field(region, command_id, field) -> None:
    with pytest.raises(ValueError, match=field):
        ssm_command_url(region, command_id)


def test_s3_report_url_opens_the_run_folder() -> None:
    expected = (
        "https://s3.console.aws.amazon.com/s3/buckets/pc-reports?region=eu-west-1"
        "&prefix=patch-compliance/runs/manual__2026-11-29T10_00_00_00_00-1a2b3c4d/&showversions=false"
    )
    assert (
        s3_report_url("pc-reports", "patch-compliance/runs/manual__2026-11-29T10_00_00_00_00-1a2b3c4d", "eu-west-1")
        == expected
    )
    assert s3_report_url("pc-reports", "/patch-compliance/runs/x/", "eu-west-1").count("runs/x/&") == 1
    assert "&prefix=&" in s3_report_url("pc-reports", "", "us-east-1")
    assert "%20" in s3_report_url("pc-reports", "a b", "us-east-1")
    with pytest.raises(ValueError, match="bucket"):
        s3_report_url("PC_Reports", "x", "eu-west-1")


def test_securityhub_url_filters_on_generator_id_double_encoded() -> None:
    url = securityhub_findings_url("eu-west-1")
    assert url == (
        "https://eu-west-1.console.aws.amazon.com/securityhub/home?region=eu-west-1#/findings?search="
        "GeneratorId%3D%255Coperator%255C%253AEQUALS%255C%253Apatch-compliance%252Fnode-patch-state"
    )
    search = url.split("search=", 1)[1]
    assert unquote(unquote(search)) == "GeneratorId=\\operator\\:EQUALS\\:patch-compliance/node-patch-state"
    assert "other%252Fid" in securityhub_findings_url("us-east-1", "other/id")
    with pytest.raises(ValueError, match="generator_id"):
        securityhub_findings_url("us-east-1", " ")


class FakeXCom:
    """Stands in for the worker's XCom.get_value: records what was asked, answers from a dict."""

    def __init__(self, values: dict) -> None:
        self.values = values
        self.asked: list[tuple] = []

    def get_value(self, *, ti_key, key):
        self.asked.append((ti_key, key))
        return self.values.get((ti_key.task_id, ti_key.map_index, key))


@pytest.fixture
def xcom(monkeypatch: pytest.MonkeyPatch) -> FakeXCom:
    from airflow.sdk.execution_time import xcom as xcom_module

    fake = FakeXCom({})
    monkeypatch.setattr(xcom_module.XCom, "get_value", fake.get_value)
    return fake


def _key(task_id: str = "scan", map_index: int = -1):
    from airflow.sdk.types import TaskInstanceKey

    return TaskInstanceKey(dag_id="patch_compliance_scan", task_id=task_id, run_id="manual__1", map_index=map_index)


@pytest.mark.parametrize(
    ("link", "source_key", "url"),
    [
        (SsmRunCommandLink(), "pc_link_ssm_command", ssm_command_url("eu-west-1", CMD)),
        (S3ReportLink(), "pc_link_report", s3_report_url("pc-reports", "patch-compliance/runs/r1", "eu-west-1")),
        (SecurityHubFindingsLink(), "pc_link_securityhub", securityhub_findings_url("eu-west-1")),
    ],
)
def test_link_returns_the_url_the_operator_pushed_for_this_map_index(xcom: FakeXCom, link, source_key, url) -> None:
    xcom.values[("scan", 3, source_key)] = url
    xcom.values[("scan", 4, source_key)] = "https://eu-west-1.console.aws.amazon.com/other"
    assert link.get_link(operator=None, ti_key=_key(map_index=3)) == url
    assert xcom.asked[-1] == (_key(map_index=3), source_key)
    # Nothing pushed (the task failed before knowing the command): empty, shown as a disabled link.
    assert link.get_link(operator=None, ti_key=_key(map_index=9)) == ""


def test_link_refuses_a_value_that_is_not_a_console_url(xcom: FakeXCom) -> None:
    xcom.values[("scan", -1, "pc_link_ssm_command")] = "javascript:alert(1)"
    with pytest.raises(ValueError, match="pc_link_ssm_command.*must be an AWS console URL"):
        SsmRunCommandLink().get_link(operator=None, ti_key=_key())
    xcom.values[("scan", -1, "pc_link_ssm_command")] = {"url": "x"}
    with pytest.raises(ValueError, match="got \\{'url': 'x'\\}"):
        SsmRunCommandLink().get_link(operator=None, ti_key=_key())


def test_link_names_and_xcom_keys_follow_airflow_3() -> None:
    assert [(lk.name, lk.xcom_key) for lk in PATCH_COMPLIANCE_LINKS] == [
        ("SSM Run Command", "_link_SsmRunCommandLink"),
        ("Report (S3)", "_link_S3ReportLink"),
        ("Security Hub findings", "_link_SecurityHubFindingsLink"),
    ]
    assert (links.XCOM_SSM_COMMAND, links.XCOM_REPORT, links.XCOM_SECURITYHUB) == (
        "pc_link_ssm_command",
        "pc_link_report",
        "pc_link_securityhub",
    )


def test_api_server_reads_the_links_back_from_their_xcom_keys() -> None:
    """What the api-server sees: a serialised operator whose links became XComOperatorLink(name, xcom_key)."""
    from airflow.sdk import DAG, BaseOperator
    from airflow.serialization.definitions.operatorlink import XComOperatorLink
    from airflow.serialization.serialized_objects import DagSerialization

    class ScanOperator(BaseOperator):
        operator_extra_links = PATCH_COMPLIANCE_LINKS

        def execute(self, context):
            return None

    with DAG("pc_links_serialisation", schedule=None) as dag:
        ScanOperator(task_id="scan")
    task = DagSerialization.from_dict(DagSerialization.to_dict(dag)).get_task("scan")
    assert task.extra_links == sorted(lk.name for lk in PATCH_COMPLIANCE_LINKS)
    for lk in PATCH_COMPLIANCE_LINKS:
        served = task.operator_extra_link_dict[lk.name]
        assert isinstance(served, XComOperatorLink)
        assert served.xcom_key == lk.xcom_key


def test_plugin_registers_page_nav_entry_and_links(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util
    from pathlib import Path

    from botocore.client import BaseClient

    def no_aws(*args, **kwargs):
        raise AssertionError("the plugin must not call AWS while loading")

    # Loading the plugin (as every Airflow component does) reads no config and calls no AWS API.
    monkeypatch.setattr(BaseClient, "_make_api_call", no_aws)
    monkeypatch.setenv("PATCH_COMPLIANCE_CONFIG", "/nonexistent/fleet.yaml")
    path = Path(__file__).resolve().parents[2] / "plugins" / "patch_compliance_plugin.py"
    spec = importlib.util.spec_from_file_location("patch_compliance_plugin_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    PatchCompliancePlugin = module.PatchCompliancePlugin  # noqa: N806
    (app,) = PatchCompliancePlugin.fastapi_apps
    assert app["url_prefix"] == "/patch-compliance"
    (view,) = PatchCompliancePlugin.external_views
    assert (view["href"], view["destination"], view["url_route"]) == ("/patch-compliance/", "nav", "patch-compliance")
    assert view["nav_top_level"] is True and view["icon"] == "/patch-compliance/static/icon.svg"
    assert [type(lk) for lk in PatchCompliancePlugin.operator_extra_links] == [
        SsmRunCommandLink,
        S3ReportLink,
        SecurityHubFindingsLink,
    ]
    # Plugin apps are not protected by Airflow by default: ours requires a login.
    from fastapi.testclient import TestClient

    client = TestClient(app["app"])
    for path in ("/", "/api/summary", "/runs/r1/report"):
        assert client.get(path).status_code == 401, path
    assert client.get("/static/icon.svg").status_code == 200  # the nav icon holds no data
