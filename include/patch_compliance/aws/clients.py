"""Sessions and clients: Airflow connection or the default chain, assumed member roles, standard retries.

Endpoints come only from standard configuration: ``AWS_ENDPOINT_URL`` (read by botocore itself) or the Airflow
connection's ``endpoint_url`` / ``service_config`` extras, so the same code runs against AWS and the local
emulator. The connection's botocore config and TLS ``verify`` reach every client, member accounts' included.
Member accounts' clients come from one botocore session per process, each signed with its account's refreshable
credentials (docs/aws-behaviours.md §26).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

import boto3
import botocore.session
from botocore.config import Config
from botocore.credentials import RefreshableCredentials
from botocore.exceptions import BotoCoreError, ClientError

from include.patch_compliance.records import TargetError

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

    def as_dict(self) -> TargetError:
        return TargetError(stage=self.stage, code=self.code, message=self.message)


def safe_session_name(text: str) -> str:
    """RoleSessionName is 2..64 chars of ``[\\w+=,.@-]`` (docs/aws-behaviours.md §12); run ids contain ':' and more."""
    name = _SESSION_NAME_BAD.sub("-", text)[:64]
    return name if len(name) >= 2 else (name + "--")[:2]


def error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return exc.response.get("Error", {}).get("Code", "ClientError")
    return type(exc).__name__


def paginate(client: Any, operation: str, result_key: str, **params: Any) -> Iterator[Any]:
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


# Each client keeps its own urllib3 pool; enough for a step's worker threads sharing one client.
MAX_POOL_CONNECTIONS = 32
_member_lock = threading.Lock()
_member_session: botocore.session.Session | None = None


def member_session() -> botocore.session.Session:
    """The process's one botocore session for member accounts: one loader (each service model read once), one
    set of event handlers, and a client per account built from it with that account's credentials
    (docs/aws-behaviours.md §26). Sessions are not thread-safe: it is only used under ``_member_lock``."""
    global _member_session  # noqa: PLW0603 - one per process by design
    with _member_lock:
        if _member_session is None:
            _member_session = botocore.session.Session()
        return _member_session


def _member_client(credentials: Any, service: str, **kwargs: Any) -> Any:
    """A client of the member session signed with ``credentials`` (refreshable: the client keeps the object).
    botocore's ``create_client`` takes only static keys, so the session holds the credentials for the call."""
    core = member_session()
    with _member_lock:
        core._credentials = credentials  # noqa: SLF001 - as the provider's session factory sets them
        try:
            return core.create_client(service, **kwargs)
        finally:
            core._credentials = None  # noqa: SLF001 - never used without an account's credentials


@dataclass
class AwsContext:
    """Credentials plus how to build clients with them; clients are cached per (service, region).

    ``session`` is the hub's boto3 session (the Airflow connection's, or boto3's default chain); in a member
    account it is the shared ``member_session()`` and ``credentials`` are that account's refreshable ones.
    ``base_config``, ``verify`` and the endpoints come from the connection and reach every client, member
    accounts' included; the project's retry mode is layered on top (``client_config``).
    """

    session: Any
    endpoint_url: str | None = None
    max_attempts: int = 6
    account_id: str | None = None
    partition: str = "aws"
    verify: bool | str | None = None
    base_config: Config | None = None
    service_endpoints: dict[str, str] = field(default_factory=dict)
    credentials: Any = None  # a member account's RefreshableCredentials; None: the session's own
    default_region: str | None = None
    _clients: dict[tuple[str, str], Any] = field(default_factory=dict, init=False, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    @property
    def region(self) -> str:
        """The session's default Region (clients name theirs explicitly; this is for global APIs and links)."""
        return self.default_region or getattr(self.session, "region_name", None) or DEFAULT_REGION

    @cached_property
    def client_config(self) -> Config:
        """The connection's botocore config (proxies, timeouts, ...) with the project's retries on top."""
        ours = Config(retries={"mode": "standard", "total_max_attempts": self.max_attempts})
        base = self.base_config or Config()
        agent = " ".join(a for a in (base.user_agent_extra, "patch-compliance") if a)
        pool = max(base.max_pool_connections or 0, MAX_POOL_CONNECTIONS)
        return base.merge(ours).merge(Config(user_agent_extra=agent, max_pool_connections=pool))

    def client(self, service: str, region: str | None = None) -> Any:
        region = region or self.region
        key = (service, region)
        with self._lock:  # sessions are not thread-safe; clients are, once created (docs/aws-behaviours.md §26)
            if key not in self._clients:
                kwargs: dict[str, Any] = {"region_name": region, "config": self.client_config}
                endpoint = self.service_endpoints.get(service, self.endpoint_url)
                if endpoint:
                    kwargs["endpoint_url"] = endpoint
                if self.verify is not None:
                    kwargs["verify"] = self.verify
                if self.credentials is not None:
                    self._clients[key] = _member_client(self.credentials, service, **kwargs)
                else:
                    self._clients[key] = self.session.client(service, **kwargs)
            return self._clients[key]

    def assume_credentials(
        self,
        account_id: str,
        role_name: str,
        *,
        session_name: str,
        external_id: str | None = None,
        duration_seconds: int = 3600,
    ) -> RefreshableCredentials:
        """AssumeRole into ``account_id``'s member role now; the credentials refresh themselves through the same
        call, because role chaining caps a session at one hour and a large scan can take longer
        (docs/aws-behaviours.md §12). Raises TargetUnreachable when the role cannot be assumed."""
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
        return RefreshableCredentials.create_from_metadata(
            metadata=metadata, refresh_using=fetch, method="sts-assume-role"
        )

    def for_account(self, account_id: str, credentials: RefreshableCredentials) -> AwsContext:
        """A context in ``account_id`` with these credentials and this context's client settings. No AWS call and
        no session of its own: its clients come from the shared member session (a few ms and well under 1 MB
        each, docs/aws-behaviours.md §26)."""
        return AwsContext(
            session=member_session(),
            endpoint_url=self.endpoint_url,
            max_attempts=self.max_attempts,
            account_id=account_id,
            partition=self.partition,
            verify=self.verify,
            base_config=self.base_config,
            service_endpoints=dict(self.service_endpoints),
            credentials=credentials,
            default_region=self.region,
        )

    def assume(
        self,
        account_id: str,
        role_name: str,
        *,
        session_name: str,
        external_id: str | None = None,
        duration_seconds: int = 3600,
    ) -> AwsContext:
        """A context in ``account_id`` through its member role (``assume_credentials`` + ``for_account``)."""
        credentials = self.assume_credentials(
            account_id,
            role_name,
            session_name=session_name,
            external_id=external_id,
            duration_seconds=duration_seconds,
        )
        return self.for_account(account_id, credentials)


def context_from_connection(conn_id: str | None = "aws_default", *, max_attempts: int = 6) -> AwsContext:
    """The management (hub) context. With Airflow and ``conn_id`` set, the amazon provider's ``AwsBaseHook`` reads
    the connection: credentials, region, ``role_arn`` (the hub role, assumed from the connection's base
    credentials by the provider's session factory), ``config_kwargs`` (proxies, timeouts, ...), ``verify`` (CA
    bundle) and endpoints (``endpoint_url``, ``service_config``). Without Airflow, boto3's default chain.
    Either way ``AWS_ENDPOINT_URL`` is honoured by botocore."""
    if conn_id:
        hook_class: Any
        try:
            from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

            hook_class = AwsBaseHook
        except ImportError:  # plain library use, outside Airflow
            hook_class = None
        if hook_class is not None:
            hook = hook_class(aws_conn_id=conn_id, client_type="sts")
            conn = hook.conn_config
            endpoints = {
                service: settings["endpoint_url"]
                for service, settings in (conn.service_config or {}).items()
                if isinstance(settings, dict) and settings.get("endpoint_url")
            }
            return AwsContext(
                session=hook.get_session(),
                endpoint_url=conn.endpoint_url,
                max_attempts=max_attempts,
                verify=conn.verify,
                base_config=conn.botocore_config,
                service_endpoints=endpoints,
            )
    # The hub keeps a boto3 session of its own (few clients); member accounts use member_session().
    return AwsContext(session=boto3.Session(), max_attempts=max_attempts)
