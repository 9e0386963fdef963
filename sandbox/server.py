"""Builds the sandbox (fleet + world + dispatcher + moto) and serves it with moto's threaded werkzeug server."""

from __future__ import annotations

import json
import os
import threading
import uuid
from pathlib import Path

from werkzeug.serving import BaseWSGIServer, make_server

from sandbox.clock import EmulatedClock
from sandbox.dispatcher import SandboxApp, load_securityhub
from sandbox.ec2_seed import seed_ec2
from sandbox.faults import Faults, load_faults
from sandbox.fleet import generate_fleet
from sandbox.orgs import Organizations, seed_moto
from sandbox.securityhub_seed import seed_security_hub
from sandbox.sns_seed import seed_sns
from sandbox.world import World

# moto keeps its backends in module globals: one sandbox per process at a time.
_ACTIVE = threading.Lock()
# Set to a folder: each sandbox writes its per-principal record there when it stops (GET /_sandbox/calls/principals).
RECORD_DIR_ENV = "PATCH_SANDBOX_RECORD_DIR"


def build_app(
    profile: str = "small", seed: int = 7, time_scale: float = 60.0, faults: Faults | dict | str | Path | None = None
) -> SandboxApp:
    from moto.moto_api._internal.models import moto_api_backend
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    moto_api_backend.reset()  # fresh moto state for this sandbox
    clock = EmulatedClock(time_scale)
    fleet = generate_fleet(profile, seed, created_at=clock.start)
    fault_cfg = faults if isinstance(faults, Faults) else load_faults(faults)
    world = World(fleet, clock, fault_cfg, on_region_created=seed_ec2)
    seed_moto(fleet)
    seed_sns(fleet)
    securityhub = load_securityhub()
    app = SandboxApp(world, Organizations(fleet), DomainDispatcherApplication(create_backend_app), securityhub)
    if securityhub is not None:
        app.securityhub_layout = seed_security_hub(securityhub, fleet)
    return app


class SandboxServer:
    """A sandbox on host:port (port 0 = a free one). `start()` serves from a thread, `serve_forever()` blocks."""

    def __init__(self, host: str = "127.0.0.1", port: int = 5055, log_requests: bool = False, **kwargs: object) -> None:
        from moto.moto_server.werkzeug_app import MotoRequestHandler

        class QuietHandler(MotoRequestHandler):
            def log_request(self, code: object = "-", size: object = "-") -> None:
                if log_requests:
                    super().log_request(code, size)

        if not _ACTIVE.acquire(blocking=False):
            raise RuntimeError("a sandbox is already running in this process (moto state is process-global)")
        try:
            self.app = build_app(**kwargs)  # type: ignore[arg-type]
            self.httpd: BaseWSGIServer = make_server(host, port, self.app, threaded=True, request_handler=QuietHandler)
        except BaseException:
            _ACTIVE.release()
            raise
        self._thread: threading.Thread | None = None
        self._recorded = False

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> SandboxServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="sandbox", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        try:
            self.httpd.serve_forever()
        finally:
            self.close()

    def stop(self) -> None:
        self.httpd.shutdown()
        if self._thread:
            self._thread.join(timeout=10)
        self.close()

    def close(self) -> None:
        try:
            self.httpd.server_close()
            self.write_record()
        finally:
            if _ACTIVE.locked():
                _ACTIVE.release()

    def write_record(self) -> Path | None:
        """The per-principal record as JSON in $PATCH_SANDBOX_RECORD_DIR, if that is set (one file per sandbox)."""
        folder = os.environ.get(RECORD_DIR_ENV)
        if not folder or self._recorded:
            return None
        self._recorded = True
        path = Path(folder) / f"principals-{os.getpid()}-{uuid.uuid4().hex[:12]}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.app.principals.report()))
        return path
