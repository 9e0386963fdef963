"""Slack incoming-webhook delivery through the slack provider's SlackWebhookNotifier, against a local HTTP server
standing in for hooks.slack.com (an incoming webhook takes a JSON POST with ``text``, Slack API docs, "Sending
messages using incoming webhooks", https://api.slack.com/messaging/webhooks); and the message/decision logic."""

from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from unittest import mock

import pytest

from include.patch_compliance.config import ConfigError, parse_config
from include.patch_compliance.config_alerts import AlertsConfig
from include.patch_compliance.publish.alerts import SUBJECT_MAX, message, notifiers, should_send, subject

DIGEST = {
    "run_id": "scheduled__2026-11-29T03:00:00+00:00",
    "dag_id": "patch_compliance_scan",
    "previous_run_id": "scheduled__2026-11-28T03:00:00+00:00",
    "report_url": "s3://reports/pc/runs/x/report.html",
    "changed": True,
    "counts": {
        "newly_non_compliant": 2,
        "remediated": 1,
        "new_sla_breaches": 3,
        "new_critical_cves": 1,
        "new_unreachable_targets": 0,
        "security_hub_errors": 0,
        "unreachable_targets": 1,
    },
    "totals": {"nodes": 40, "non_compliant": 12, "compliant_pct": 55.0, "sla_breaches": 9},
    "new_critical_cve_ids": ["CVE-2026-0001"],
    "top_nodes": [
        {
            "instance_id": "i-0123456789abcdef0",
            "instance_name": "web-1",
            "account_id": "111111111111",
            "region": "us-east-1",
            "highest_missing_severity": "CRITICAL",
            "non_compliant_patches": 4,
            "sla_breaches": 2,
            "new": True,
        }
    ],
    "unreachable": ["222222222222/eu-west-1"],
}


@pytest.fixture
def webhook():
    posts: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the http.server API
            body = self.rfile.read(int(self.headers["Content-Length"]))
            posts.append({"path": self.path, "json": json.loads(body)})
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/services/T000/B000/XXXX"
    conn = json.dumps({"conn_type": "slackwebhook", "password": url})
    with mock.patch.dict(os.environ, {"AIRFLOW_CONN_SLACK_PATCH_ALERTS": conn}):
        yield posts
    server.shutdown()


def test_slack_webhook_receives_the_digest_text(webhook):
    cfg = AlertsConfig(slack={"webhook_conn_id": "slack_patch_alerts"})
    channels = notifiers(cfg, DIGEST, aws_conn_id=None)
    assert list(channels) == ["slack"]
    channels["slack"]({})
    (post,) = webhook
    assert post["path"] == "/services/T000/B000/XXXX"
    assert post["json"]["text"] == message(DIGEST)


def test_message_has_counts_top_nodes_and_the_report_link():
    text = message(DIGEST)
    assert "Since run scheduled__2026-11-28T03:00:00+00:00:" in text
    assert "  2 newly non-compliant nodes\n" in text and "  1 remediated nodes\n" in text
    assert "  3 new SLA breaches\n" in text and "New critical CVEs: CVE-2026-0001" in text
    assert "  NEW i-0123456789abcdef0 web-1 (111111111111/us-east-1): 4 patches, worst CRITICAL, 2 past SLA" in text
    assert text.rstrip().endswith("Report: s3://reports/pc/runs/x/report.html")
    assert "compliant 55.0% of nodes" in text


def test_subject_fits_sns():
    long = {**DIGEST, "dag_id": "d" * 300}
    assert len(subject(long)) == SUBJECT_MAX
    assert subject(DIGEST) == "Patch compliance: 2 newly non-compliant, 1 remediated (patch_compliance_scan)"


@pytest.mark.parametrize(
    ("send", "changed", "failure", "expected"),
    [
        ("on_change", True, None, True),
        ("on_change", False, None, False),
        ("always", False, None, True),
        ("never", True, None, False),
        ("never", False, "final gate: too many unreachable", True),
        ("on_change", False, "nothing was published", True),
    ],
)
def test_when_a_digest_is_sent(send, changed, failure, expected):
    digest = {**DIGEST, "changed": changed, "failure": failure}
    assert should_send(AlertsConfig(send=send), digest)[0] is expected


def test_bad_alert_settings_name_the_field():
    base = {"regions": ["us-east-1"], "reports": {"bucket": "reports-bucket"}}
    with pytest.raises(ConfigError, match=r"alerts.sns.topic_arn: 'arn:aws:sns:us-east-1:123456789012:a.fifo'"):
        parse_config({**base, "alerts": {"sns": {"topic_arn": "arn:aws:sns:us-east-1:123456789012:a.fifo"}}})
    with pytest.raises(ConfigError, match=r"alerts.send: 'sometimes'"):
        parse_config({**base, "alerts": {"send": "sometimes"}})
    assert parse_config(base).alerts.sns is None and parse_config(base).alerts.send == "on_change"
