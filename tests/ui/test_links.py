"""Operator extra links: URL builders, link classes reading the operator's XCom, Airflow 3 (de)serialisation."""

from __future__ import annotations

from types import SimpleNamespace
from urllib.parse import unquote

import pytest

from include.patch_compliance.orchestration.links import (
    PATCH_COMPLIANCE_LINKS,
    S3ReportLink,
    SecurityHubFindingsLink,
    SsmRunCommandLink,
    link_url,
    partition_of,
    persist,
    s3_report_fields,
    securityhub_fields,
    ssm_command_fields,
)

CMD = "0b1e6a28-7f7c-4b5e-9a42-3f0c5d5f1e22"


def ssm_url(region: str, command_id: str = CMD) -> str:
    return link_url(SsmRunCommandLink(), region, ssm_command_fields(region, command_id))


def test_ssm_command_url_is_the_run_command_page_of_the_region() -> None:
    assert ssm_url("eu-west-1") == (
        f"https://console.aws.amazon.com/systems-manager/run-command/{CMD}?region=eu-west-1"
    )
    assert ssm_url("cn-north-1").startswith("https://console.amazonaws.cn/systems-manager/run-command/")
    assert ssm_url("us-gov-west-1").startswith("https://console.amazonaws-us-gov.com/")
    assert [partition_of(r) for r in ("eu-west-1", "cn-north-1", "us-gov-east-1")] == ["aws", "aws-cn", "aws-us-gov"]


@pytest.mark.parametrize(
    ("region", "command_id", "field"),
    [
        ("eu_west_1", CMD, "region"),
        ("", CMD, "region"),
        ("eu-west-1", "abc", "command_id"),
        ("eu-west-1", None, "command_id"),
    ],
)
def test_ssm_command_fields_reject_bad_input_naming_the_field(region, command_id, field) -> None:
    with pytest.raises(ValueError, match=field):
        ssm_command_fields(region, command_id)


def test_s3_report_url_opens_the_run_folder() -> None:
    def url(prefix: str, region: str = "eu-west-1") -> str:
        return link_url(S3ReportLink(), region, s3_report_fields("pc-reports", prefix))

    assert url("patch-compliance/runs/manual__2026-11-29T10_00_00_00_00-1a2b3c4d") == (
        "https://console.aws.amazon.com/s3/buckets/pc-reports?region=eu-west-1"
        "&prefix=patch-compliance/runs/manual__2026-11-29T10_00_00_00_00-1a2b3c4d/&showversions=false"
    )
    assert url("/patch-compliance/runs/x/").count("runs/x/&") == 1
    assert "&prefix=&" in url("", "us-east-1")
    assert "%20" in url("a b", "us-east-1")
    with pytest.raises(ValueError, match="bucket"):
        s3_report_fields("PC_Reports", "x")


def test_securityhub_url_filters_on_generator_id_double_encoded() -> None:
    url = link_url(SecurityHubFindingsLink(), "eu-west-1", securityhub_fields())
    assert url == (
        "https://console.aws.amazon.com/securityhub/home?region=eu-west-1#/findings?search="
        "GeneratorId%3D%255Coperator%255C%253AEQUALS%255C%253Apatch-compliance%252Fnode-patch-state"
    )
    search = url.split("search=", 1)[1]
    assert unquote(unquote(search)) == "GeneratorId=\\operator\\:EQUALS\\:patch-compliance/node-patch-state"
    assert "other%252Fid" in securityhub_fields("other/id")["search"]
    with pytest.raises(ValueError, match="generator_id"):
        securityhub_fields(" ")


class FakeXCom:
    """Stands in for the worker's XCom.get_value: records what was asked, answers from a dict."""

    def __init__(self, values: dict) -> None:
        self.values = values
        self.asked: list[tuple] = []

    def get_value(self, *, ti_key, key):
        self.asked.append((ti_key, key))
        return self.values.get((ti_key.task_id, ti_key.map_index, key))


class FakeTI:
    def __init__(self) -> None:
        self.pushed: dict = {}

    def xcom_push(self, key, value) -> None:
        self.pushed[key] = value


@pytest.fixture
def xcom(monkeypatch: pytest.MonkeyPatch) -> FakeXCom:
    from airflow.providers.amazon.aws.links import base_aws

    fake = FakeXCom({})
    monkeypatch.setattr(base_aws.XCom, "get_value", fake.get_value)
    return fake


def _key(task_id: str = "scan", map_index: int = -1):
    from airflow.sdk.types import TaskInstanceKey

    return TaskInstanceKey(dag_id="patch_compliance_scan", task_id=task_id, run_id="manual__1", map_index=map_index)


@pytest.mark.parametrize(
    ("link", "fields"),
    [
        (SsmRunCommandLink, ssm_command_fields("eu-west-1", CMD)),
        (S3ReportLink, s3_report_fields("pc-reports", "patch-compliance/runs/r1")),
        (SecurityHubFindingsLink, securityhub_fields()),
    ],
)
def test_link_shows_what_the_operator_persisted_for_this_map_index(xcom: FakeXCom, link, fields) -> None:
    ti = FakeTI()
    operator = SimpleNamespace(do_xcom_push=True)
    persist(link, {"ti": ti}, operator, "eu-west-1", fields)
    xcom.values[("scan", 3, link.key)] = ti.pushed[link.key]
    persist(link, {"ti": ti}, operator, "us-east-1", fields)
    xcom.values[("scan", 4, link.key)] = ti.pushed[link.key]
    assert link().get_link(operator=None, ti_key=_key(map_index=3)) == link_url(link(), "eu-west-1", fields)
    assert link().get_link(operator=None, ti_key=_key(map_index=4)) == link_url(link(), "us-east-1", fields)
    assert xcom.asked[-1] == (_key(map_index=4), link.key)
    # Nothing persisted (the task failed before knowing the command): empty, shown as a disabled link.
    assert link().get_link(operator=None, ti_key=_key(map_index=9)) == ""


def test_persist_refuses_a_region_that_is_not_one() -> None:
    with pytest.raises(ValueError, match="region"):
        persist(SsmRunCommandLink, {"ti": FakeTI()}, SimpleNamespace(do_xcom_push=True), "javascript:", {})


def test_link_names_and_xcom_keys_follow_airflow_3() -> None:
    assert [(lk.name, lk.xcom_key, lk.key) for lk in PATCH_COMPLIANCE_LINKS] == [
        ("SSM Run Command", "_link_SsmRunCommandLink", "pc_link_ssm_command"),
        ("Report (S3)", "_link_S3ReportLink", "pc_link_report"),
        ("Security Hub findings", "_link_SecurityHubFindingsLink", "pc_link_securityhub"),
    ]


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
    for path in ("/", "/?account=111111111111", "/cves", "/cves?q=CVE-2024-3094", "/api/summary", "/runs/r1/report"):
        assert client.get(path).status_code == 401, path
    assert client.get("/static/icon.svg").status_code == 200  # the nav icon holds no data
