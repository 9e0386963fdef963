"""Emulated time: `time_scale` emulated seconds pass per real second, plus explicit advances.

time_scale=0 freezes the clock so tests move it only with `advance` (deterministic lifecycles).
"""

from __future__ import annotations

import threading
import time


class EmulatedClock:
    def __init__(self, time_scale: float = 60.0, start: float | None = None) -> None:
        if time_scale < 0:
            raise ValueError(f"time_scale={time_scale} must be >= 0 (emulated seconds per real second)")
        self.time_scale = time_scale
        self.start = time.time() if start is None else start
        self._real0 = time.monotonic()
        self._advanced = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self.start + (time.monotonic() - self._real0) * self.time_scale + self._advanced

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError(f"seconds={seconds} must be >= 0: emulated time never goes backwards")
        with self._lock:
            self._advanced += seconds
        return self.now()
