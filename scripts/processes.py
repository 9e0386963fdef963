"""Processes the local cluster starts, recorded so that bring-down stops exactly those and nothing else.

Every record keeps the PID and the kernel's start time of that PID (``/proc/<pid>/stat`` field 22): a PID the
kernel has handed to another process since is recognised as not ours and left alone.
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, or None when no such process exists."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # comm (field 2) may contain spaces and parentheses: split after its closing parenthesis.
    return int(stat.rsplit(")", 1)[1].split()[19])


@dataclass
class Started:
    """One started process. ``group``: it leads its own session, so signals go to its whole process group
    (api-server's uvicorn workers, a Celery worker's pool and task processes). ``stop_signal``: what asks it to
    shut down cleanly (PostgreSQL's fast shutdown is SIGINT)."""

    name: str
    pid: int
    started: int
    group: bool = True
    stop_signal: int = signal.SIGTERM

    def alive(self) -> bool:
        return start_time(self.pid) == self.started and not _zombie(self.pid)

    def signal(self, sig: int) -> None:
        if not self.alive():
            return
        try:
            if self.group:
                os.killpg(self.pid, sig)
            else:
                os.kill(self.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, timeout: float = 20.0) -> str:
        """Ask it to stop, kill it (SIGKILL) after ``timeout`` seconds; say what happened."""
        return stop_together([self], timeout)[0]


def stop_together(entries: list[Started], timeout: float = 20.0) -> list[str]:
    """Ask all of them to stop at once, SIGKILL whatever still runs after ``timeout`` seconds; one line each."""
    lines = {id(e): f"{e.name} (pid {e.pid}) was not running" for e in entries if not e.alive()}
    waiting = [e for e in entries if id(e) not in lines]
    for entry in waiting:
        entry.signal(entry.stop_signal)
    deadline = time.monotonic() + timeout
    while waiting and time.monotonic() < deadline:
        for entry in [e for e in waiting if not e.alive()]:
            lines[id(entry)] = f"{entry.name} (pid {entry.pid}) stopped"
            waiting.remove(entry)
        time.sleep(0.2)
    for entry in waiting:
        entry.signal(signal.SIGKILL)
        lines[id(entry)] = f"{entry.name} (pid {entry.pid}) killed after {timeout:.0f} s"
    return [lines[id(e)] for e in entries]


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return False


def record(name: str, pid: int, *, group: bool = True, stop_signal: int = signal.SIGTERM) -> Started:
    started = start_time(pid)
    if started is None:
        raise RuntimeError(f"{name} (pid {pid}) exited right after it started")
    return Started(name, pid, started, group, int(stop_signal))


class Ledger:
    """The JSON file listing what was started, rewritten after every start (a half-started cluster can still be
    brought down)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: list[Started] = []
        self.info: dict[str, object] = {}
        if path.exists():
            data = json.loads(path.read_text())
            self.entries = [Started(**e) for e in data.get("processes", [])]
            self.info = data.get("info", {})

    def add(self, entry: Started) -> Started:
        self.entries.append(entry)
        self.save()
        return entry

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"processes": [asdict(e) for e in self.entries], "info": self.info}
        self.path.write_text(json.dumps(data, indent=2))

    def get(self, name: str) -> Started:
        for entry in self.entries:
            if entry.name == name:
                return entry
        raise KeyError(f"no process named {name!r} in {self.path}")

    def running(self) -> list[Started]:
        return [e for e in self.entries if e.alive()]

    def stop_all(self, last: tuple[str, ...] = ()) -> list[str]:
        """Stop everything, the processes named in ``last`` (what the others use: database, broker) only once
        the others are gone, then forget the ledger."""
        first = [e for e in reversed(self.entries) if e.name not in last]
        lines = stop_together(first) + stop_together([e for e in reversed(self.entries) if e.name in last])
        self.path.unlink(missing_ok=True)
        return lines
