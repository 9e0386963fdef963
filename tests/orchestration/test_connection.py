"""The Airflow AWS connection honoured (issue 13): its config_kwargs (proxies, timeouts), verify (CA bundle),
region, endpoints and role_arn reach every botocore client, the member accounts' too; the project's retry mode
is layered on top."""

from __future__ import annotations

import json
import os
from unittest import mock

from include.patch_compliance.aws import context_from_connection

CA_BUNDLE = "/etc/ssl/certs/corporate-ca.pem"
PROXIES = {"https": "http://proxy.example.internal:3128"}


def _connection(conn_id: str, extra: dict, **fields: str) -> dict[str, str]:
    return {f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps({"conn_type": "aws", **fields, "extra": extra})}


def _assert_connection_settings(client, *, max_attempts: int) -> None:
    config = client.meta.config
    assert config.proxies == PROXIES
    assert (config.connect_timeout, config.read_timeout) == (7, 11)
    assert config.retries == {"mode": "standard", "total_max_attempts": max_attempts}  # ours, over the connection's
    assert "patch-compliance" in config.user_agent_extra and "ops-team" in config.user_agent_extra
    http = client._endpoint.http_session  # noqa: SLF001 - where botocore keeps verify and the proxies
    assert http._verify == CA_BUNDLE  # noqa: SLF001
    assert http._proxy_config.proxy_url_for("https://ssm.eu-west-1.amazonaws.com") == PROXIES["https"]  # noqa: SLF001


def test_config_kwargs_verify_region_and_endpoints_reach_hub_and_member_clients():
    extra = {
        "region_name": "eu-west-1",
        "verify": CA_BUNDLE,
        "config_kwargs": {
            "proxies": PROXIES,
            "connect_timeout": 7,
            "read_timeout": 11,
            "user_agent_extra": "ops-team",
            "retries": {"mode": "legacy", "max_attempts": 1},
        },
        "service_config": {"securityhub": {"endpoint_url": "https://securityhub.vpce.example.internal"}},
    }
    with mock.patch.dict(os.environ, _connection("pc_conn", extra, login="AKIDEXAMPLE", password="secret")):
        hub = context_from_connection("pc_conn", max_attempts=5)
        assert hub.region == "eu-west-1" and hub.verify == CA_BUNDLE
        _assert_connection_settings(hub.client("s3"), max_attempts=5)
        assert hub.session.get_credentials().access_key == "AKIDEXAMPLE"
        member = hub.for_account("111111111111", hub.session.get_credentials())
        ssm = member.client("ssm")
        _assert_connection_settings(ssm, max_attempts=5)
        assert ssm.meta.region_name == "eu-west-1"
        assert (
            member.client("securityhub", "us-east-1").meta.endpoint_url
            == extra["service_config"]["securityhub"]["endpoint_url"]
        )


def test_role_arn_is_assumed_from_the_connection_base_credentials(sandbox):
    """The hub role: the provider's session factory assumes ``role_arn`` with the connection's own keys."""
    fleet = sandbox.fleet
    hub_account = next(a["id"] for a in fleet["accounts"] if a["has_role"] and a["state"] == "ACTIVE")
    role_arn = f"arn:aws:iam::{hub_account}:role/{fleet['member_role_name']}"
    extra = {"region_name": "us-east-1", "role_arn": role_arn, "endpoint_url": sandbox.url}
    sandbox.reset_calls()
    with mock.patch.dict(os.environ, _connection("pc_role", extra, login="testing", password="testing")):
        hub = context_from_connection("pc_role")
        identity = hub.client("sts").get_caller_identity()
    assert identity["Account"] == hub_account
    assert sandbox.calls().get("sts.AssumeRole") == 1
