"""Security Hub emulator served over HTTP for tests (account and region from the SigV4 scope)."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs

from sandbox.securityhub.emulator import SecurityHubEmulator
from sandbox.securityhub.model import _ACCOUNT

_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")


def account_from_access_key(access_key: str) -> str:
    """Test convention: an access key ending in 12 digits belongs to that account, any other to 123456789012."""
    digits = access_key[-12:]
    return digits if _ACCOUNT.match(digits) else "123456789012"


def wsgi_app(emulator: SecurityHubEmulator, account_for: Callable[[str], str] = account_from_access_key) -> Callable:
    """A WSGI app that hands every request to ``emulator``; account and region come from the SigV4 scope."""

    def app(environ: dict, start_response: Callable) -> list[bytes]:
        match = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
        access_key, region = (match.group(1), match.group(2)) if match else ("", "us-east-1")
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            status, payload, headers = 400, {"Code": "InvalidInputException", "Message": "Body is not JSON"}, {}
        else:
            status, payload, headers = emulator.handle(
                environ["REQUEST_METHOD"],
                environ.get("PATH_INFO", "/"),
                parse_qs(environ.get("QUERY_STRING", "")),
                body,
                account_for(access_key),
                region,
            )
        data = json.dumps(payload).encode()
        reason = {
            200: "OK",
            400: "Bad Request",
            401: "Unauthorized",
            403: "Forbidden",
            404: "Not Found",
            409: "Conflict",
            429: "Too Many Requests",
            501: "Not Implemented",
        }.get(status, "Error")
        start_response(f"{status} {reason}", [*headers.items(), ("Content-Length", str(len(data)))])
        return [data]

    return app


@contextmanager
def running(
    emulator: SecurityHubEmulator, account_for: Callable[[str], str] = account_from_access_key
) -> Iterator[str]:
    """Serve ``emulator`` on a free local port in a thread; yields the endpoint URL."""
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    class _Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            return

    server = make_server("127.0.0.1", 0, wsgi_app(emulator, account_for), handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
