"""The WSGI dispatcher in front of moto: counts every call, injects faults, answers the actions moto lacks or
gets wrong (SSM Patch Manager/Run Command, Organizations reads, the AssumeRole gate, Security Hub hook) and
passes everything else to moto's server app unchanged."""

from __future__ import annotations

import importlib
import io
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from urllib.parse import parse_qs

from sandbox import admin
from sandbox.authz import Authorizer
from sandbox.awsproto import AwsError, AwsRequest, error_response, json_response, parse_request
from sandbox.faults import THROTTLE_ERRORS
from sandbox.orgs import Organizations
from sandbox.principals import PrincipalRecorder
from sandbox.ssm_api import HANDLERS as COMMAND_HANDLERS
from sandbox.ssm_inventory_api import HANDLERS as INVENTORY_HANDLERS
from sandbox.sts_gate import check_assume_role
from sandbox.validation import validate_input
from sandbox.world import World

SSM_HANDLERS = {**COMMAND_HANDLERS, **INVENTORY_HANDLERS}
WsgiApp = Callable[[dict, Callable], Iterable[bytes]]

# What an opted-out / disabled region answers, per protocol (docs/aws-behaviours.md §13).
REFUSED = {
    "json": ("UnrecognizedClientException", 400, "The security token included in the request is invalid."),
    "rest-json": ("UnrecognizedClientException", 403, "The security token included in the request is invalid."),
    "ec2": ("AuthFailure", 401, "AWS was not able to validate the provided access credentials"),
    "query": ("InvalidClientTokenId", 403, "The security token included in the request is invalid."),
    "rest-xml": ("InvalidAccessKeyId", 403, "The AWS Access Key Id you provided does not exist in our records."),
}


def load_securityhub() -> object | None:
    """sandbox.securityhub.SecurityHubEmulator if that module exists (another helper owns it), else None."""
    try:
        module = importlib.import_module("sandbox.securityhub")
    except ModuleNotFoundError as exc:
        if exc.name == "sandbox.securityhub":
            return None
        raise
    return module.SecurityHubEmulator()


class SandboxApp:
    def __init__(self, world: World, orgs: Organizations, moto_app: WsgiApp, securityhub: object | None) -> None:
        self.world = world
        self.orgs = orgs
        self.moto_app = moto_app
        self.securityhub = securityhub
        self.calls: Counter[str] = Counter()
        # Every SendCommand as received (the write a test audits: which nodes got which operation), in order.
        self.sent: list[dict] = []
        self.calls_lock = threading.Lock()
        self._accounts: dict[str, str] = {}
        self.authorizer = Authorizer(world.fleet)
        self.principals = PrincipalRecorder(self.account_for)

    # -- helpers ------------------------------------------------------------------------------------------------
    def account_for(self, access_key: str | None) -> str:
        """The caller's account: moto's own access-key -> account mapping (assumed-role keys included)."""
        if not access_key:
            return self.world.fleet.management_account_id
        cached = self._accounts.get(access_key)
        if cached is None:
            from moto.iam.models import get_account_id_from

            cached = get_account_id_from(access_key)
            self._accounts[access_key] = cached
        return cached

    def count(self, key: str) -> None:
        with self.calls_lock:
            self.calls[key] += 1

    def snapshot_calls(self) -> dict[str, int]:
        with self.calls_lock:
            return dict(sorted(self.calls.items()))

    def reset_calls(self) -> None:
        with self.calls_lock:
            self.calls.clear()
            self.sent.clear()

    def log_send(self, account: str, region: str, body: dict, outcome: str) -> None:
        entry = {"account_id": account, "region": region, "at": self.world.clock.now(), "outcome": outcome}
        entry.update({k: body.get(k) for k in ("DocumentName", "Parameters", "InstanceIds", "Targets", "Comment")})
        with self.calls_lock:
            self.sent.append(entry)

    def snapshot_sent(self) -> list[dict]:
        with self.calls_lock:
            return [dict(e) for e in self.sent]

    # -- WSGI ---------------------------------------------------------------------------------------------------
    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path.startswith("/_sandbox/"):
            status, payload = admin.handle(
                self,
                environ.get("REQUEST_METHOD", "GET"),
                path,
                _read_body(environ),
                parse_qs(environ.get("QUERY_STRING", "")),
            )
            return _send(start_response, *json_response(payload, "rest-json", status))
        body = _read_body(environ)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        req = parse_request(environ, body)
        if not req.service:
            return self.moto_app(environ, start_response)
        operation = f"{req.service}.{req.action or req.method}"
        self.count(operation)
        principal = self.principals.principal_for(req.access_key)
        secure = environ.get("wsgi.url_scheme") == "https"
        self.principals.record(principal, operation, self.authorizer.authorize(req, principal.account_id, secure))
        try:
            response = self._route(req, environ)
        except AwsError as err:
            return _send(start_response, *error_response(err, req.protocol, req.service))
        if response is not None:
            return _send(start_response, *response)
        if principal.kind == "setup" and req.service == "sts":
            body = b"".join(self.moto_app(environ, start_response))
            self.principals.note_setup_credentials(body)
            return [body]
        return self.moto_app(environ, start_response)

    def _route(self, req: AwsRequest, environ: dict) -> tuple[int, list[tuple[str, str]], bytes] | None:
        world = self.world
        faults = world.faults
        region = req.region or "us-east-1"
        if region in faults.refuse_regions:
            code, status, message = REFUSED.get(req.protocol, REFUSED["json"])
            raise AwsError(faults.refuse_regions[region] or code, message, status=status)
        if world.fault_counter.fires(
            f"throttle:{req.service}.{req.action}", faults.throttle_rate(req.service or "", req.action or "")
        ):
            code, status = THROTTLE_ERRORS.get(req.service or "", ("ThrottlingException", 400))
            raise AwsError(code, "Rate exceeded", status=status)
        account = self.account_for(req.access_key)
        if req.service == "ssm" and req.action in SSM_HANDLERS:
            body = req.json_body()
            if req.action == "SendCommand":
                return json_response(self._send_command(account, region, body))
            validate_input("ssm", req.action, body)
            rd = world.region(account, region)
            world.settle(rd)
            return json_response(SSM_HANDLERS[req.action](world, rd, body))
        if req.service == "organizations":
            body = req.json_body()
            validate_input("organizations", req.action or "", body)
            result = self.orgs.handle(req.action or "", body, account)
            return json_response(result) if result is not None else None
        if req.service == "sts" and req.action == "AssumeRole":
            check_assume_role(world.fleet, faults, req.param("RoleArn"), account)
            return None
        if req.service == "ec2":
            world.region(account, region)  # make sure the account-region's instances exist in moto first
            return None
        if req.service == "securityhub" and self.securityhub is not None:
            return self._securityhub(req, account, region)
        return None

    def _send_command(self, account: str, region: str, body: dict) -> dict:
        """SendCommand, logged as received with its outcome (refused ones too)."""
        try:
            validate_input("ssm", "SendCommand", body)
            rd = self.world.region(account, region)
            self.world.settle(rd)
            result = SSM_HANDLERS["SendCommand"](self.world, rd, body)
        except AwsError as err:
            self.log_send(account, region, body, err.code)
            raise
        self.log_send(account, region, body, result["Command"]["CommandId"])
        return result

    def _securityhub(self, req: AwsRequest, account: str, region: str) -> tuple[int, list[tuple[str, str]], bytes]:
        body = req.json_body() if req.body else None
        query = {k: (v[0] if len(v) == 1 else v) for k, v in req.query.items()}
        status, payload, headers = self.securityhub.handle(req.method, req.path, query, body, account, region)
        status_, base_headers, raw = json_response(payload, "rest-json", status)
        merged = {k.lower(): (k, v) for k, v in base_headers}
        merged.update({k.lower(): (k, str(v)) for k, v in (headers or {}).items()})
        return status_, list(merged.values()), raw


def _read_body(environ: dict) -> bytes:
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    length = environ.get("CONTENT_LENGTH")
    if length:
        return stream.read(int(length))
    if environ.get("wsgi.input_terminated"):
        return stream.read()
    return b""


def _send(start_response: Callable, status: int, headers: list[tuple[str, str]], body: bytes) -> list[bytes]:
    reason = {
        200: "OK",
        400: "Bad Request",
        401: "Unauthorized",
        403: "Forbidden",
        404: "Not Found",
        429: "Too Many Requests",
        500: "Internal Server Error",
        503: "Service Unavailable",
    }.get(status, "Error")
    start_response(f"{status} {reason}", headers + [("Content-Length", str(len(body)))])
    return [body]
