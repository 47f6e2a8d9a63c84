"""The shared start time of the emulated belt, so the scanner and I/O-board emulators agree."""

from __future__ import annotations

import threading
import time


class BeltClock:
    """Belt time zero, set once (explicitly or by the scanner when acquisition starts)."""

    def __init__(self) -> None:
        self._started = threading.Event()
        self._lock = threading.Lock()
        self.t0_mono_ns = 0
        self.t0_wall_ns = 0

    def start(self) -> None:
        """Start the belt now; later calls do nothing."""
        with self._lock:
            if self._started.is_set():
                return
            self.t0_mono_ns = time.monotonic_ns()
            self.t0_wall_ns = time.time_ns()
            self._started.set()

    @property
    def started(self) -> bool:
        return self._started.is_set()

    def wait_started(self, timeout_s: float) -> bool:
        return self._started.wait(timeout_s)

    def elapsed_ns(self) -> int:
        return time.monotonic_ns() - self.t0_mono_ns if self.started else 0

    def wall_ns(self, offset_ns: int) -> int:
        """Wall-clock time of a belt-time offset."""
        return self.t0_wall_ns + offset_ns

    def sleep_until(self, offset_ns: int, stop: threading.Event) -> bool:
        """Sleep until belt time ``offset_ns``; False if ``stop`` was set first."""
        while True:
            remaining = (self.t0_mono_ns + offset_ns - time.monotonic_ns()) / 1e9
            if remaining <= 0:
                return not stop.is_set()
            if stop.wait(min(remaining, 0.05)):
                return False
