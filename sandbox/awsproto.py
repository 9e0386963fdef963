"""AWS wire-protocol helpers: identify service/region/action/access key of a request, build responses and
errors in each protocol's format (json, query, ec2, rest-json, rest-xml) so botocore parses them."""

from __future__ import annotations

import functools
import io
import json
import re
import uuid
from dataclasses import dataclass, field
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

import botocore.loaders

_CRED_RE = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")


class AwsError(Exception):
    """An AWS error as the service would return it."""

    def __init__(self, code: str, message: str, status: int = 400, sender: bool = True) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.sender = sender


@dataclass
class AwsRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    service: str | None = None
    region: str | None = None
    access_key: str | None = None
    action: str | None = None
    protocol: str = "json"
    form: dict[str, list[str]] = field(default_factory=dict)

    def json_body(self) -> dict:
        if not self.body:
            return {}
        try:
            data = json.loads(self.body)
        except ValueError as exc:
            raise AwsError("SerializationException", f"Malformed JSON body: {exc}") from exc
        if not isinstance(data, dict):
            raise AwsError("SerializationException", "The request body must be a JSON object")
        return data

    def param(self, name: str) -> str | None:
        values = self.form.get(name) or self.query.get(name)
        return values[0] if values else None


@functools.lru_cache(maxsize=32)
def service_model(service: str) -> dict | None:
    try:
        return botocore.loaders.Loader().load_service_model(service, "service-2")
    except Exception:  # unknown service name: the caller falls back to moto
        return None


@functools.lru_cache(maxsize=32)
def _rest_routes(service: str) -> list[tuple[str, re.Pattern, tuple[tuple[str, str | None], ...], str]]:
    model = service_model(service) or {}
    routes = []
    for name, op in model.get("operations", {}).items():
        http = op.get("http", {})
        uri = http.get("requestUri", "/")
        path, _, q = uri.partition("?")
        regex = re.sub(r"\{[^}]+\+\}", ".+", path)
        regex = re.sub(r"\{[^}]+\}", "[^/]+", regex)
        # "?uploads" needs the key, "?x-id=PutObject" needs the key with that value.
        required_q = tuple((k, v if sep else None) for k, sep, v in (p.partition("=") for p in q.split("&") if p))
        routes.append((http.get("method", "POST"), re.compile("^" + regex.rstrip("/") + "/?$"), required_q, name))
    # The most specific route (most required query keys, longest literal) wins.
    routes.sort(key=lambda r: (-len(r[2]), -len(r[1].pattern)))
    return routes


def rest_action(service: str, method: str, path: str, query: dict, environ: dict | None = None) -> str | None:
    """The operation of a REST request: moto's own router (it knows S3's header/query distinctions such as
    PutObject vs CopyObject), else a match on the model's requestUri."""
    if environ is not None:
        try:
            from moto.core.request import Request
            from moto.core.routing import get_service_router

            copy = dict(environ)
            copy["wsgi.input"] = io.BytesIO(b"")
            copy["CONTENT_LENGTH"] = "0"
            operation, _ = get_service_router(service).match(Request(copy))
            return operation.name
        except Exception:  # not routable by moto (unknown service or path): use the model match below
            pass
    for m, regex, required_q, name in _rest_routes(service):
        if (
            m == method
            and regex.match(path)
            and all(k in query and (v is None or v in query[k]) for k, v in required_q)
        ):
            return name
    return None


def parse_request(environ: dict, body: bytes) -> AwsRequest:
    headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = environ["CONTENT_TYPE"]
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    req = AwsRequest(environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "/"), query, headers, body)
    match = _CRED_RE.search(headers.get("authorization", ""))
    if match:
        req.access_key, req.region, req.service = match.group(1), match.group(2), match.group(3)
    elif "X-Amz-Credential" in query:
        parts = query["X-Amz-Credential"][0].split("/")
        if len(parts) >= 4:
            req.access_key, req.region, req.service = parts[0], parts[2], parts[3]
    if not req.service:
        return req
    model = service_model(req.service)
    req.protocol = (model or {}).get("metadata", {}).get("protocol", "json")
    target = headers.get("x-amz-target")
    if target:
        req.action = target.split(".", 1)[-1]
    elif req.protocol in ("query", "ec2"):
        if "form-urlencoded" in headers.get("content-type", ""):
            req.form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        req.action = req.param("Action")
    elif req.protocol in ("rest-json", "rest-xml"):
        req.action = rest_action(req.service, req.method, req.path, query, environ)
    return req


def json_response(data: dict, protocol: str = "json", status: int = 200) -> tuple[int, list[tuple[str, str]], bytes]:
    ctype = "application/x-amz-json-1.1" if protocol == "json" else "application/json"
    return status, [("Content-Type", ctype), ("x-amzn-RequestId", str(uuid.uuid4()))], json.dumps(data).encode()


def error_response(err: AwsError, protocol: str, service: str | None) -> tuple[int, list[tuple[str, str]], bytes]:
    rid = str(uuid.uuid4())
    if protocol in ("json", "rest-json"):
        body = json.dumps({"__type": err.code, "message": err.message, "Message": err.message}).encode()
        ctype = "application/x-amz-json-1.1" if protocol == "json" else "application/json"
        return err.status, [("Content-Type", ctype), ("x-amzn-RequestId", rid), ("x-amzn-ErrorType", err.code)], body
    msg = escape(err.message)
    if protocol == "ec2":
        xml = (
            f'<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>{err.code}</Code>'
            f"<Message>{msg}</Message></Error></Errors><RequestID>{rid}</RequestID></Response>"
        )
    elif protocol == "query":
        kind = "Sender" if err.sender else "Receiver"
        ns = {"sts": "https://sts.amazonaws.com/doc/2011-06-15/", "iam": "https://iam.amazonaws.com/doc/2010-05-08/"}
        xml = (
            f'<ErrorResponse xmlns="{ns.get(service or "", "")}"><Error><Type>{kind}</Type>'
            f"<Code>{err.code}</Code><Message>{msg}</Message></Error><RequestId>{rid}</RequestId></ErrorResponse>"
        )
    else:
        xml = f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{err.code}</Code><Message>{msg}</Message></Error>'
    return err.status, [("Content-Type", "text/xml"), ("x-amzn-RequestId", rid)], xml.encode()
