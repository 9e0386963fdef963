"""`python -m sandbox serve [--host] [--port] [--profile] [--seed] [--time-scale] [--faults]`."""

from __future__ import annotations

import argparse
import os
import sys
import time

from sandbox.faults import FaultConfigError, faults_from_env, load_faults
from sandbox.fleet import PROFILES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description="Local AWS fleet emulator")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve in the foreground (Ctrl-C stops)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=int(os.environ.get("SANDBOX_PORT", "5055")))
    serve.add_argument("--profile", choices=sorted(PROFILES), default="small")
    serve.add_argument("--seed", type=int, default=7)
    serve.add_argument(
        "--time-scale",
        type=float,
        default=60.0,
        help="emulated seconds per real second (0 freezes time; use /_sandbox/admin/advance)",
    )
    serve.add_argument("--faults", help="YAML/JSON fault file (default: $PATCH_SANDBOX_FAULTS)")
    serve.add_argument("--log-requests", action="store_true", help="log every HTTP request")
    args = parser.parse_args(argv)
    try:
        faults = load_faults(args.faults) if args.faults else faults_from_env()
    except (FaultConfigError, ValueError) as exc:
        print(f"error: --faults / PATCH_SANDBOX_FAULTS: {exc}", file=sys.stderr)
        return 2
    from sandbox.server import SandboxServer

    started = time.monotonic()
    server = SandboxServer(
        args.host,
        args.port,
        log_requests=args.log_requests,
        profile=args.profile,
        seed=args.seed,
        time_scale=args.time_scale,
        faults=faults,
    )
    fleet = server.app.world.fleet
    print(
        f"sandbox ready at {server.url} profile={args.profile} seed={args.seed} accounts={len(fleet.accounts)} "
        f"regions={','.join(fleet.regions)} in {time.monotonic() - started:.2f}s",
        flush=True,
    )
    print(
        f"  export AWS_ENDPOINT_URL={server.url} AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing "
        "AWS_DEFAULT_REGION=us-east-1",
        flush=True,
    )
    try:
        server.serve_forever()  # werkzeug returns from here on Ctrl-C
    except KeyboardInterrupt:
        pass
    print("sandbox stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
