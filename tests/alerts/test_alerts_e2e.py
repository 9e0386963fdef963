"""Alerts end to end on the emulator: the digest is published to an SNS topic (moto's) through the amazon
provider's SnsNotifier and read back from an SQS queue subscribed to it (SNS developer guide, "Fanout to Amazon
SQS queues", https://docs.aws.amazon.com/sns/latest/dg/sns-sqs-as-subscriber.html). The first run of a DAG
alerts with its counts; a second run with nothing changed sends nothing; a retried alert task does not send
again; a run that published nothing always alerts."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from include.patch_compliance import alert_steps, steps
from include.patch_compliance.publish.report_files import read_parquet_bytes, run_key
from include.patch_compliance.storage import get_bytes, parse_s3_uri
from include.patch_compliance.transform.schema import DELTA
from tests.orchestration.conftest import BUCKET, fleet_config, make_run

HUB_REGION = "us-east-1"


@pytest.fixture(scope="module")
def topic(sandbox):
    """A topic in the hub account with an SQS queue subscribed (raw delivery off: the SNS envelope)."""
    sns, sqs = sandbox.client("sns", HUB_REGION), sandbox.client("sqs", HUB_REGION)
    arn = sns.create_topic(Name="patch-compliance-alerts")["TopicArn"]
    url = sqs.create_queue(QueueName="patch-compliance-alerts")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn)
    return arn, sqs, url


def received(sqs, url) -> list[dict]:
    out = []
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not batch:
            return out
        for m in batch:
            out.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def config(arn: str, **alerts):
    return fleet_config(
        reports={"bucket": BUCKET, "prefix": "pc-alerts"},
        alerts={"sns": {"topic_arn": arn}, **alerts},
        thresholds={"max_unreachable_ratio": 1.0},
    )


def scan_and_publish(run) -> dict:
    plan = steps.plan_fleet(run)
    for refs in plan["waves"].values():
        for ref in refs:
            steps.collect_shard(run, ref)
    return steps.report(run)


def published(run, name: str, schema) -> pd.DataFrame:
    summary = json.loads(get_bytes(run.hub, BUCKET, run_key("pc-alerts", run.run_id, "summary.json")))
    bucket, key = parse_s3_uri(summary["tables"][name])
    return read_parquet_bytes(get_bytes(run.hub, bucket, key), schema, pd.Timestamp(summary["snapshot_date"]).date())


def test_first_run_alerts_with_its_counts_and_an_unchanged_second_run_sends_nothing(sandbox, topic):
    arn, sqs, url = topic
    received(sqs, url)
    first = make_run("alerts-1", cfg=config(arn), dag_id="patch_compliance_collect")
    report = scan_and_publish(first)
    out = alert_steps.alert(first)
    assert out["sent"] == ["sns"] and out["failure"] is None
    (envelope,) = received(sqs, url)
    assert envelope["TopicArn"] == arn and envelope["Subject"].startswith("Patch compliance: ")
    text = envelope["Message"]
    totals = report["totals"]
    # The first run: every non-compliant node is new.
    assert int(envelope["MessageAttributes"]["newly_non_compliant"]["Value"]) == totals["non_compliant"] > 0
    assert f"  {totals['non_compliant']} newly non-compliant nodes" in text
    assert f"Nodes {totals['nodes']}, non-compliant {totals['non_compliant']}" in text
    assert f"Report: s3://{BUCKET}/pc-alerts/runs/" in text and "report.html" in text
    node_lines = [line for line in text.splitlines() if line.startswith("  NEW ")]
    assert len(node_lines) == min(10, totals["non_compliant"])

    # A retried alert task: the record says SNS has it, nothing is sent twice.
    again = alert_steps.alert(first)
    assert again["send"] and again["sent"] == [] and received(sqs, url) == []

    second = make_run("alerts-2", cfg=config(arn), dag_id="patch_compliance_collect")
    scan_and_publish(second)
    assert published(second, "delta", DELTA).empty  # nothing changed in the emulated fleet
    quiet = alert_steps.alert(second)
    assert not quiet["send"] and quiet["sent"] == [] and "nothing changed" in quiet["reason"]
    assert all(v == 0 for k, v in quiet["counts"].items() if k != "unreachable_targets")
    assert received(sqs, url) == []

    always = make_run("alerts-3", cfg=config(arn, send="always"), dag_id="patch_compliance_collect")
    scan_and_publish(always)
    assert alert_steps.alert(always)["sent"] == ["sns"]
    (envelope,) = received(sqs, url)
    assert envelope["MessageAttributes"]["newly_non_compliant"]["Value"] == "0"
    assert "Since run alerts-2:" in envelope["Message"]


def test_a_run_that_published_nothing_always_alerts(sandbox, topic):
    arn, sqs, url = topic
    received(sqs, url)
    run = make_run("alerts-nothing", cfg=config(arn), dag_id="patch_compliance_collect")
    out = alert_steps.alert(run, failed_tasks=["report"])
    assert out["sent"] == ["sns"] and "nothing was published" in out["failure"]
    (envelope,) = received(sqs, url)
    assert envelope["Subject"] == "Patch compliance FAILED: patch_compliance_collect alerts-nothing"
    assert "tasks failed: report" in envelope["Message"]
    assert envelope["MessageAttributes"]["failed"]["Value"] == "true"


def test_no_channel_configured_sends_nothing(sandbox):
    run = make_run("alerts-off", dag_id="patch_compliance_collect")
    assert alert_steps.alert(run)["sent"] == []
