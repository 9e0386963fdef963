"""`running_sandbox(...)`: an in-process sandbox on a free port, for tests and scripts. Sets nothing global:
callers pass `sb.url` as endpoint_url (or in their own env)."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sandbox.principals import SETUP_ACCESS_KEY
from sandbox.server import SandboxServer


@dataclass
class RunningSandbox:
    url: str
    fleet: dict
    server: SandboxServer

    def _request(self, method: str, path: str, payload: dict | None = None) -> Any:
        data = json.dumps(payload).encode() if payload is not None else None
        req = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"{method} {path} -> {exc.code}: {exc.read().decode()}") from exc

    def calls(self) -> dict[str, int]:
        return self._request("GET", "/_sandbox/calls")

    def sent_commands(self) -> list[dict]:
        """Every SendCommand since the last reset, as received: account_id, region, DocumentName, Parameters,
        InstanceIds, Targets, Comment, and outcome (the CommandId, or the error code it was refused with)."""
        return self._request("GET", "/_sandbox/calls/send_command")["requests"]

    def reset_calls(self) -> None:
        self._request("POST", "/_sandbox/calls/reset", {})

    def principals(self) -> list[dict]:
        """Every principal that called, with its calls and what AWS would authorize for them (sandbox/authz.py)."""
        return self._request("GET", "/_sandbox/calls/principals")["principals"]

    def reset_principals(self) -> None:
        self._request("POST", "/_sandbox/calls/principals/reset", {})

    def admin(self, action: str, **kwargs: Any) -> dict:
        """remediate(account_id, region, instance_id) | terminate(...) | advance(seconds=n)."""
        return self._request("POST", f"/_sandbox/admin/{action}", kwargs)

    def set_faults(self, faults: dict) -> dict:
        return self._request("POST", "/_sandbox/faults", faults)

    def nodes(self, account_id: str, region: str) -> list[dict]:
        return self._request("GET", f"/_sandbox/nodes?account_id={account_id}&region={region}")["nodes"]

    def client(self, service: str, region: str = "us-east-1", **kwargs: Any) -> Any:
        """A boto3 client pointed at this sandbox, for test setup and checks: it signs as the management account
        with the setup key, so its calls (and role sessions it assumes) are recorded as principal kind "setup"."""
        import boto3

        kwargs.setdefault("aws_access_key_id", SETUP_ACCESS_KEY)
        kwargs.setdefault("aws_secret_access_key", "testing")
        return boto3.client(service, region_name=region, endpoint_url=self.url, **kwargs)


@contextmanager
def running_sandbox(
    profile: str = "small", seed: int = 7, time_scale: float = 3600.0, faults: dict | str | None = None
) -> Iterator[RunningSandbox]:
    server = SandboxServer("127.0.0.1", 0, profile=profile, seed=seed, time_scale=time_scale, faults=faults).start()
    try:
        sb = RunningSandbox(server.url, {}, server)
        sb.fleet = sb._request("GET", "/_sandbox/fleet")
        yield sb
    finally:
        server.stop()
