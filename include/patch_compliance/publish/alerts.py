"""Alert messages and their delivery through Airflow's notifiers (Amazon SNS, Slack incoming webhook).

Delivery uses the providers' notifiers (``SnsNotifier``, ``SlackWebhookNotifier``) called directly from a task
after publishing, so they run on the worker with its connections (docs/alerts.md, "Where alerts run").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from include.patch_compliance.config_alerts import AlertsConfig

# SNS Subject: at most 100 printable ASCII characters (SNS API reference, Publish).
SUBJECT_MAX = 100
LABELS = {
    "newly_non_compliant": "newly non-compliant nodes",
    "remediated": "remediated nodes",
    "new_sla_breaches": "new SLA breaches",
    "new_critical_cves": "new critical CVEs",
    "new_unreachable_targets": "newly unreachable account-regions",
    "unreachable_targets": "unreachable account-regions",
    "security_hub_errors": "account-regions with Security Hub errors",
}


def should_send(cfg: AlertsConfig, digest: dict[str, Any]) -> tuple[bool, str]:
    """(send?, why): always on failure; otherwise as ``alerts.send`` says."""
    if digest.get("failure"):
        return True, "the run failed"
    if cfg.send == "always":
        return True, "alerts.send is always"
    if cfg.send == "on_change" and digest.get("changed"):
        return True, "something changed since the previous run"
    return False, f"alerts.send is {cfg.send} and nothing changed since run {digest.get('previous_run_id')!r}"


def subject(digest: dict[str, Any]) -> str:
    counts = digest.get("counts") or {}
    if digest.get("failure"):
        text = f"Patch compliance FAILED: {digest['dag_id']} {digest['run_id']}"
    else:
        text = (
            f"Patch compliance: {counts.get('newly_non_compliant', 0)} newly non-compliant, "
            f"{counts.get('remediated', 0)} remediated ({digest['dag_id']})"
        )
    return "".join(c if 32 <= ord(c) < 127 else "?" for c in text)[:SUBJECT_MAX]


def message(digest: dict[str, Any]) -> str:
    """The digest as short plain text: counts, the top nodes and the report link."""
    lines = [f"Patch compliance run {digest['run_id']} ({digest['dag_id']})"]
    if digest.get("failure"):
        lines.append(f"FAILED: {digest['failure']}")
    totals = digest.get("totals")
    if totals:
        lines.append(
            f"Nodes {totals['nodes']}, non-compliant {totals['non_compliant']}, compliant {totals['compliant_pct']}% "
            f"of nodes, patches past SLA {totals['sla_breaches']}"
        )
    previous = digest.get("previous_run_id")
    counts = digest.get("counts")
    if counts:
        lines.append(f"Since run {previous}:" if previous else "First run of this DAG (everything counts as new):")
        lines += [f"  {counts[name]} {label}" for name, label in LABELS.items() if name in counts]
    if digest.get("new_critical_cve_ids"):
        lines.append("New critical CVEs: " + ", ".join(digest["new_critical_cve_ids"]))
    if digest.get("unreachable"):
        lines.append("Unreachable: " + ", ".join(digest["unreachable"]))
    nodes = digest.get("top_nodes") or []
    if nodes:
        lines.append(f"Top {len(nodes)} non-compliant nodes:")
        for n in nodes:
            name = f" {n['instance_name']}" if n.get("instance_name") else ""
            lines.append(
                f"  {'NEW ' if n['new'] else ''}{n['instance_id']}{name} ({n['account_id']}/{n['region']}): "
                f"{n['non_compliant_patches']} patches, worst {n['highest_missing_severity']}, "
                f"{n['sla_breaches']} past SLA"
            )
    if digest.get("report_url"):
        lines.append(f"Report: {digest['report_url']}")
    return "\n".join(lines) + "\n"


def attributes(digest: dict[str, Any]) -> dict[str, Any]:
    """SNS message attributes (for subscription filter policies): the run, failed or not, the counts."""
    return {
        "dag_id": digest["dag_id"],
        "run_id": digest["run_id"],
        "failed": "true" if digest.get("failure") else "false",
        **{name: int(value) for name, value in (digest.get("counts") or {}).items()},
    }


def notifiers(cfg: AlertsConfig, digest: dict[str, Any], *, aws_conn_id: str | None) -> dict[str, Callable]:
    """Channel name -> a callable that delivers the digest (the provider's notifier's ``notify``)."""
    out: dict[str, Callable] = {}
    text = message(digest)
    if cfg.sns is not None:
        from airflow.providers.amazon.aws.notifications.sns import SnsNotifier

        region = cfg.sns.topic_arn.split(":")[3]
        sns = SnsNotifier(
            aws_conn_id=cfg.sns.aws_conn_id or aws_conn_id,
            target_arn=cfg.sns.topic_arn,
            message=text,
            subject=subject(digest),
            message_attributes=attributes(digest),
            region_name=region,
        )
        out["sns"] = sns.notify
    if cfg.slack is not None:
        from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

        slack = SlackWebhookNotifier(slack_webhook_conn_id=cfg.slack.webhook_conn_id, text=text)
        out["slack"] = slack.notify
    return out
