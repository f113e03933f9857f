"""Time as the client and the sandbox see it, injectable so tests never wait on the wall clock.

Token expiry, refresh margins, ``Retry-After`` dates and backoff sleeps all read one ``Clock``;
``SYSTEM_CLOCK`` is the real one, ``ManualClock`` one that only moves when told to (or when
something sleeps on it), so a test of a 60-second token or a 2-second ``Retry-After`` takes no time.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """Epoch seconds and a way to wait."""

    def time(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The wall clock and ``time.sleep``."""

    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


SYSTEM_CLOCK: Clock = SystemClock()


class ManualClock:
    """A clock that stands still until ``advance`` moves it; ``sleep`` advances it at once.

    ``slept`` records every sleep, so a test can assert how long the retry policy waited.
    Thread-safe: a sandbox serving in another thread may read it.
    """

    def __init__(self, start: float = 1_780_000_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()
        self.slept: list[float] = []

    def time(self) -> float:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.slept.append(seconds)
            self._now += max(0.0, seconds)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds
