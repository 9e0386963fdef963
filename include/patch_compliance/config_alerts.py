"""The ``alerts:`` section of the configuration (kept apart from ``config.py``, which holds every other section)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

# A standard SNS topic ARN (SNS API reference, CreateTopic: names of 1-256 letters, digits, - and _). FIFO topics
# need a message group id per message, which a digest has no use for: they are refused.
SNS_TOPIC_ARN = r"^arn:aws(-[a-z]+)*:sns:[a-z]{2}(-[a-z]+)+-\d:\d{12}:[A-Za-z0-9_-]{1,256}$"


class SnsAlertConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    topic_arn: Annotated[str, Field(pattern=SNS_TOPIC_ARN)] = Field(
        description="Standard SNS topic the digest is published to (from the hub account: sns:Publish on it)"
    )
    aws_conn_id: str | None = Field(None, description="Airflow AWS connection; null = access.aws_conn_id")


class SlackAlertConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    webhook_conn_id: str = Field(description="Airflow connection of type slackwebhook holding the incoming webhook")


class AlertsConfig(BaseModel):
    """A digest of what changed since the last published run, after publishing (docs/alerts.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    send: Literal["on_change", "always", "never"] = Field(
        "on_change",
        description="on_change: only when something changed; always: every run; never: only on failure",
    )
    sns: SnsAlertConfig | None = None
    slack: SlackAlertConfig | None = None
    top_nodes: Annotated[int, Field(ge=0, le=50)] = 10
