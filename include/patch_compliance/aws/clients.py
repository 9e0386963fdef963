"""Sessions and clients: Airflow connection or the default chain, assumed member roles, standard retries.

Endpoints come only from standard configuration: ``AWS_ENDPOINT_URL`` (read by botocore itself) or the Airflow
connection's ``endpoint_url`` extra, so the same code runs against AWS and the local emulator.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import boto3
import botocore.session
from botocore.config import Config
from botocore.credentials import RefreshableCredentials
from botocore.exceptions import BotoCoreError, ClientError

T = TypeVar("T")

DEFAULT_REGION = "us-east-1"
# Organizations is a global API served from us-east-1 (docs/aws-behaviours.md §11).
GLOBAL_REGION = "us-east-1"
_SESSION_NAME_BAD = re.compile(r"[^\w+=,.@-]")
# Error codes meaning "this account or region cannot be used at all", as opposed to a bad request.
UNREACHABLE_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "AuthFailure",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "OptInRequired",
        "EndpointConnectionError",
        "ExpiredTokenException",
    }
)


class TargetUnreachable(Exception):
    """An account or region that cannot be used (role not assumable, region refusing calls)."""

    def __init__(self, stage: str, code: str, message: str) -> None:
        super().__init__(f"{stage}: {code}: {message}")
        self.stage = stage
        self.code = code
        self.message = message

    def as_dict(self) -> dict[str, str]:
        return {"stage": self.stage, "code": self.code, "message": self.message}


def safe_session_name(text: str) -> str:
    """RoleSessionName is 2..64 chars of ``[\\w+=,.@-]`` (docs/aws-behaviours.md §12); run ids contain ':' and more."""
    name = _SESSION_NAME_BAD.sub("-", text)[:64]
    return name if len(name) >= 2 else (name + "--")[:2]


def error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return exc.response.get("Error", {}).get("Code", "ClientError")
    return type(exc).__name__


def paginate(client: Any, operation: str, result_key: str, **params: Any) -> Iterator[dict]:
    """All items of a paginated call. botocore's paginator keeps going through empty pages while a NextToken
    remains (Organizations does return those, docs/aws-behaviours.md §11)."""
    for page in client.get_paginator(operation).paginate(**params):
        yield from page.get(result_key, [])


def chunks(items: Sequence[T] | Iterable[T], size: int) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


@dataclass
class AwsContext:
    """A session plus how to build clients from it. Clients are cached per (service, region)."""

    session: boto3.session.Session
    endpoint_url: str | None = None
    max_attempts: int = 6
    account_id: str | None = None
    partition: str = "aws"
    _clients: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def client(self, service: str, region: str | None = None) -> Any:
        region = region or self.session.region_name or DEFAULT_REGION
        key = (service, region)
        with self._lock:  # boto3 client creation is not thread-safe; clients themselves are
            if key not in self._clients:
                kwargs: dict[str, Any] = {}
                if self.endpoint_url:
                    kwargs["endpoint_url"] = self.endpoint_url
                self._clients[key] = self.session.client(
                    service,
                    region_name=region,
                    config=Config(
                        retries={"mode": "standard", "total_max_attempts": self.max_attempts},
                        user_agent_extra="patch-compliance",
                        max_pool_connections=32,
                    ),
                    **kwargs,
                )
            return self._clients[key]

    def assume(
        self,
        account_id: str,
        role_name: str,
        *,
        session_name: str,
        external_id: str | None = None,
        duration_seconds: int = 3600,
    ) -> AwsContext:
        """A context in ``account_id`` through its member role. Credentials refresh themselves, because role
        chaining caps a session at one hour and a large scan can take longer (docs/aws-behaviours.md §12)."""
        sts = self.client("sts")
        params: dict[str, Any] = {
            "RoleArn": f"arn:{self.partition}:iam::{account_id}:role/{role_name}",
            "RoleSessionName": safe_session_name(session_name),
            "DurationSeconds": duration_seconds,
        }
        if external_id:
            params["ExternalId"] = external_id

        def fetch() -> dict[str, str]:
            creds = sts.assume_role(**params)["Credentials"]
            return {
                "access_key": creds["AccessKeyId"],
                "secret_key": creds["SecretAccessKey"],
                "token": creds["SessionToken"],
                "expiry_time": creds["Expiration"].isoformat(),
            }

        try:
            metadata = fetch()
        except (ClientError, BotoCoreError) as exc:
            raise TargetUnreachable("assume_role", error_code(exc), str(exc)) from exc
        core = botocore.session.get_session()
        core._credentials = RefreshableCredentials.create_from_metadata(  # noqa: SLF001 - botocore's documented pattern
            metadata=metadata, refresh_using=fetch, method="sts-assume-role"
        )
        session = boto3.Session(botocore_session=core, region_name=self.session.region_name or DEFAULT_REGION)
        return AwsContext(
            session=session,
            endpoint_url=self.endpoint_url,
            max_attempts=self.max_attempts,
            account_id=account_id,
            partition=self.partition,
        )


def context_from_connection(conn_id: str | None = "aws_default", *, max_attempts: int = 6) -> AwsContext:
    """The management (hub) context: the Airflow AWS connection when Airflow is there and ``conn_id`` is set,
    else boto3's default credential chain. Either way ``AWS_ENDPOINT_URL`` is honoured by botocore."""
    if conn_id:
        try:
            from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
        except ImportError:  # plain library use, outside Airflow
            AwsBaseHook = None  # noqa: N806
        if AwsBaseHook is not None:
            hook = AwsBaseHook(aws_conn_id=conn_id, client_type="sts")
            return AwsContext(
                session=hook.get_session(),
                endpoint_url=hook.conn_config.endpoint_url,
                max_attempts=max_attempts,
            )
    return AwsContext(session=boto3.Session(), max_attempts=max_attempts)
