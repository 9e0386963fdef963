"""Fixtures: an in-process sandbox (frozen clock: tests move time with `advance`) and boto3 helpers."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from botocore.config import Config

from sandbox.testing import RunningSandbox, running_sandbox

NO_RETRY = Config(retries={"total_max_attempts": 1, "mode": "standard"})


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    with running_sandbox(profile="small", seed=7, time_scale=0) as sb:
        yield sb


def member_session(sb: RunningSandbox, account_id: str, region: str = "us-east-1") -> boto3.Session:
    """Credentials for the member role in `account_id` (docs/aws-behaviours.md §12)."""
    sts = sb.client("sts", region)
    creds = sts.assume_role(
        RoleArn=f"arn:aws:iam::{account_id}:role/{sb.fleet['member_role_name']}", RoleSessionName="tests"
    )["Credentials"]
    return boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=region,
    )


def client(
    sb: RunningSandbox,
    service: str,
    region: str = "us-east-1",
    account_id: str | None = None,
    config: Config = NO_RETRY,
):
    if account_id and account_id != sb.fleet["management_account_id"]:
        return member_session(sb, account_id, region).client(service, endpoint_url=sb.url, config=config)
    return sb.client(service, region, config=config)


def active_members(sb: RunningSandbox) -> list[dict]:
    mgmt = sb.fleet["management_account_id"]
    return [a for a in sb.fleet["accounts"] if a["state"] == "ACTIVE" and a["has_role"] and a["id"] != mgmt]


def all_pages(method, key: str, **kwargs) -> list:
    out, token = [], None
    while True:
        resp = method(**kwargs, **({"NextToken": token} if token else {}))
        out.extend(resp[key])
        token = resp.get("NextToken")
        if not token:
            return out
