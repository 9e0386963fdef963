"""The hub account's alert topic, as a deployment creates it next to the hub role (docs/alerts.md): a standard SNS
topic in moto's backend, so runs with ``alerts.sns`` (sandbox/fleet-config.yaml) publish to it. Subscribe an SQS
queue to read the messages back (scripts/demo.py does)."""

from __future__ import annotations

from sandbox.fleet import Fleet

ALERTS_TOPIC = "patch-compliance-alerts"
ALERTS_REGION = "us-east-1"


def alerts_topic_arn(fleet: Fleet) -> str:
    return f"arn:aws:sns:{ALERTS_REGION}:{fleet.management_account_id}:{ALERTS_TOPIC}"


def seed_sns(fleet: Fleet) -> str:
    from moto.sns.models import sns_backends

    topic = sns_backends[fleet.management_account_id][ALERTS_REGION].create_topic(ALERTS_TOPIC)
    return topic.arn
