"""PostgreSQL and Redis from Debian's packages, as user processes with their data in the cluster folder.

Debian's ``postgresql`` package puts the server binaries in ``/usr/lib/postgresql/<major>/bin``; ``initdb`` and
``pg_ctl`` refuse to run as root, so as root they run as the package's ``postgres`` user. ``redis-server`` runs
as whoever starts it. Neither is started through systemd or ``pg_ctlcluster``: the cluster owns its data.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from scripts.processes import Started, record

APT_HINT = "apt-get update && apt-get install -y postgresql redis-server"


class MissingPackage(RuntimeError):
    pass


def pg_bindir() -> Path | None:
    """The newest installed PostgreSQL server's bin folder (initdb, pg_ctl, psql)."""
    found = [
        d for d in Path("/usr/lib/postgresql").glob("*/bin") if (d / "initdb").exists() and (d / "pg_ctl").exists()
    ]
    if found:
        return max(found, key=lambda d: int(d.parent.name) if d.parent.name.isdigit() else 0)
    pg_ctl = shutil.which("pg_ctl")
    return Path(pg_ctl).resolve().parent if pg_ctl else None


def missing_reason() -> str | None:
    """Why the local cluster cannot start on this machine, or None when it can."""
    if pg_bindir() is None:
        return f"PostgreSQL server binaries (initdb, pg_ctl) not found: {APT_HINT}"
    if shutil.which("redis-server") is None:
        return f"redis-server not found: {APT_HINT}"
    return None


def require_binaries() -> None:
    reason = missing_reason()
    if reason:
        raise MissingPackage(reason)


def _as_db_owner(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _pg_root(folder: Path) -> Path:
    """``<folder>/postgres``, unless the postgres user cannot reach the folder (a clone under root's 0700
    home): then a folder in the temp dir, named after the cluster folder."""
    if os.geteuid() != 0:
        return folder / "postgres"
    folder.mkdir(parents=True, exist_ok=True)
    if subprocess.run(_as_db_owner(["test", "-x", str(folder)])).returncode == 0:
        return folder / "postgres"
    digest = hashlib.sha1(str(folder).encode(), usedforsecurity=False).hexdigest()[:10]
    return Path(tempfile.gettempdir()) / f"pc-cluster-postgres-{digest}"


def _run(cmd: list[str], log: Path) -> None:
    with log.open("a") as out:
        result = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    if result.returncode:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        raise RuntimeError(f"{' '.join(cmd)} failed ({result.returncode}):\n{tail}")


def postgres_start(folder: Path, port: int, user: str, password: str, db: str) -> Started:
    """initdb on first use, start the server on 127.0.0.1:``port``, create the Airflow role and database."""
    bindir = pg_bindir()
    assert bindir is not None, "require_binaries() first"
    root = _pg_root(folder)
    data, sock = root / "data", root / "sock"
    sock.mkdir(parents=True, exist_ok=True)
    log = folder / "postgres.log"
    log.touch()
    if os.geteuid() == 0:
        subprocess.run(["chown", "-R", "postgres:postgres", str(root)], check=True)
    if not (data / "PG_VERSION").exists():
        # trust on 127.0.0.1 and the private socket only: a throwaway development database
        _run(
            _as_db_owner([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]), log
        )
    server_log = root / "server.log"
    # A throwaway development database: no fsync (Airflow's ~200 migrations then take seconds, not a minute);
    # a statement waiting over a second for a lock is logged with who holds it.
    tuning = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c log_lock_waits=on"
    options = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 {tuning}"
    _run(
        _as_db_owner([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(server_log), "-o", options, "-w", "start"]),
        log,
    )
    pid = int((data / "postmaster.pid").read_text().split()[0])
    entry = record("postgres", pid, group=False, stop_signal=signal.SIGINT)  # SIGINT: PostgreSQL's fast shutdown
    psql = [str(bindir / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-v", "ON_ERROR_STOP=1"]

    def query(sql: str) -> str:
        return subprocess.run([*psql, "-tAc", sql], capture_output=True, text=True, check=True).stdout.strip()

    # One statement per call: CREATE DATABASE cannot run inside the transaction a multi-statement -c opens.
    if not query(f"SELECT 1 FROM pg_roles WHERE rolname = '{user}'"):
        query(f"CREATE USER {user} PASSWORD '{password}'")
    if not query(f"SELECT 1 FROM pg_database WHERE datname = '{db}'"):
        query(f"CREATE DATABASE {db} OWNER {user}")
    return entry


def redis_start(folder: Path, port: int) -> Started:
    """redis-server on 127.0.0.1:``port`` without persistence (the broker's queue is rebuilt by the scheduler)."""
    work = folder / "redis"
    work.mkdir(parents=True, exist_ok=True)
    cmd = [
        "redis-server",
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(work),
        "--save",
        "",
        "--appendonly",
        "no",
        "--logfile",
        str(folder / "redis.log"),
    ]
    # Its own messages go to --logfile; anything before that (a bad option) to the same file, never to the
    # caller's terminal or pipe (a pipe held open by a daemon never reaches EOF).
    with (folder / "redis.log").open("ab") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True)
    entry = record("redis", proc.pid)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if redis_ping(port):
            return entry
        if proc.poll() is not None:
            raise RuntimeError(f"redis-server exited with {proc.returncode}; see {folder / 'redis.log'}")
        time.sleep(0.2)
    entry.stop()
    raise RuntimeError(f"redis-server did not answer PING on port {port}; see {folder / 'redis.log'}")


def redis_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False
