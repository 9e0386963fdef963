"""What `make demo` leaves to look at: the run's report.html, summary.json and nodes.csv copied out of the
emulator's S3 into artifacts/demo/, and the alert the run sent (read back from an SQS queue subscribed to the
alert topic before the run)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RUN_FILES = ("report.html", "summary.json", "nodes.csv")
QUEUE = "patch-compliance-demo-alerts"


def subscribe_queue(topic_arn: str) -> str:
    """An SQS queue subscribed to the alert topic (SNS envelope delivery); returns its URL. Messages already in
    it (an earlier demo) are dropped."""
    import boto3

    region = topic_arn.split(":")[3]
    sqs, sns = boto3.client("sqs", region_name=region), boto3.client("sns", region_name=region)
    url = sqs.create_queue(QueueName=QUEUE)["QueueUrl"]
    sqs.purge_queue(QueueUrl=url)
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)
    return url


def received_alerts(queue_url: str) -> list[dict[str, Any]]:
    """The SNS envelopes waiting in the queue (Subject, Message, MessageAttributes, ...)."""
    import boto3

    sqs = boto3.client("sqs")
    out = []
    while True:
        batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not batch:
            return out
        for message in batch:
            out.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def copy_run_files(bucket: str, report_url: str, target: Path, alerts: list[dict[str, Any]]) -> list[Path]:
    """Copy the run's files next to report_url (s3://bucket/.../runs/<run>/report.html) into ``target``, and
    the alert messages as alert.txt. Returns the paths written."""
    import boto3

    prefix = report_url.split(f"s3://{bucket}/", 1)[1].rsplit("/", 1)[0]
    s3 = boto3.client("s3")
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name in RUN_FILES:
        path = target / name
        path.write_bytes(s3.get_object(Bucket=bucket, Key=f"{prefix}/{name}")["Body"].read())
        written.append(path)
    text = "".join(f"Subject: {a.get('Subject')}\n\n{a['Message']}\n" for a in alerts) or "(no alert was sent)\n"
    (target / "alert.txt").write_text(text)
    written.append(target / "alert.txt")
    return written
