"""The change window: a remediation run may start only while it is open (a recurring cron opening, UTC, plus a
duration)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from croniter import croniter

from include.patch_compliance.config import ChangeWindowConfig


@dataclass(frozen=True)
class WindowState:
    window: ChangeWindowConfig
    is_open: bool
    opened_at: datetime  # the latest opening at or before now
    closes_at: datetime  # when that opening closes
    next_open: datetime  # the next opening after now

    def describe(self) -> str:
        window = self.window
        spec = f"remediation.change_window (opens at cron {window.start!r} UTC for {window.duration_minutes} min)"
        if self.is_open:
            return f"{spec} is open until {self.closes_at:%Y-%m-%d %H:%M} UTC"
        return f"{spec} is closed; it opens next at {self.next_open:%Y-%m-%d %H:%M} UTC"

    def as_dict(self) -> dict[str, Any]:
        return {
            "open": self.is_open,
            "opened_at": self.opened_at.isoformat(),
            "closes_at": self.closes_at.isoformat(),
            "next_open": self.next_open.isoformat(),
        }


def window_state(window: ChangeWindowConfig, now: datetime) -> WindowState:
    """Open when ``now`` is in [opening, opening + duration) for the latest opening at or before ``now``."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    now = now.astimezone(UTC).replace(tzinfo=None)
    # croniter's get_prev is strictly before its start: start a microsecond later so an opening at now counts.
    opened = croniter(window.start, now + timedelta(microseconds=1)).get_prev(datetime)
    closes = opened + timedelta(minutes=window.duration_minutes)
    upcoming = croniter(window.start, now).get_next(datetime)
    return WindowState(
        window=window,
        is_open=now < closes,
        opened_at=opened.replace(tzinfo=UTC),
        closes_at=closes.replace(tzinfo=UTC),
        next_open=upcoming.replace(tzinfo=UTC),
    )
