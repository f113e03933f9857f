"""Fault injection for Domain API requests: settings and the per-request decision.

Clients must survive throttling, outages, dropped connections and truncated bodies; the sandbox
produces each on demand. Decisions come from a seeded ``random.Random`` behind a lock, so a run
that sends the same requests in the same order meets the same faults.
"""

from __future__ import annotations

import dataclasses
import enum
import random
import threading
from dataclasses import dataclass
from typing import Any


class Fault(enum.Enum):
    """What the server does instead of (or to) a normal answer; the value is the stats key."""

    THROTTLE = "429"
    UNAVAILABLE = "503"
    DROP = "drop"
    TRUNCATE = "truncate"


_RATE_FIELDS = (
    ("rate_429", Fault.THROTTLE),
    ("rate_503", Fault.UNAVAILABLE),
    ("rate_drop", Fault.DROP),
    ("rate_truncate", Fault.TRUNCATE),
)


def check_rate(name: str, value: Any) -> float:
    """A probability in [0, 1]; raises ValueError naming the setting otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a number between 0 and 1 (a probability), got {value!r}")
    return float(value)


def check_count(name: str, value: Any) -> int:
    """A whole number >= 0; raises ValueError naming the setting otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a whole number >= 0, got {value!r}")
    return value


@dataclass(frozen=True)
class FaultSettings:
    """Fault knobs. Rates are checked in field order (429, 503, drop, truncate), each an independent draw."""

    latency_ms: int = 0
    rate_429: float = 0.0
    retry_after: int = 1
    rate_503: float = 0.0
    rate_drop: float = 0.0
    rate_truncate: float = 0.0

    def __post_init__(self) -> None:
        check_count("latency_ms", self.latency_ms)
        check_count("retry_after", self.retry_after)
        for field, _ in _RATE_FIELDS:
            object.__setattr__(self, field, check_rate(field, getattr(self, field)))

    def replace(self, **changes: Any) -> FaultSettings:
        """A copy with ``changes`` applied; unknown names raise ValueError listing the known ones."""
        known = {field.name for field in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown fault setting(s) {unknown}; known: {sorted(known)}")
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class FaultInjector:
    """Holds the current settings (swappable at runtime) and draws the fault for each request."""

    def __init__(self, settings: FaultSettings | None = None, *, seed: int = 0) -> None:
        self._settings = settings or FaultSettings()
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    @property
    def settings(self) -> FaultSettings:
        return self._settings

    def update(self, **changes: Any) -> FaultSettings:
        """Apply ``changes`` atomically (all or nothing) and return the new settings."""
        with self._lock:
            self._settings = self._settings.replace(**changes)
            return self._settings

    def decide(self) -> Fault | None:
        """The fault to inject into the next request, or None for a normal answer."""
        with self._lock:
            settings = self._settings
            for field, fault in _RATE_FIELDS:
                rate = getattr(settings, field)
                if rate > 0.0 and self._random.random() < rate:
                    return fault
        return None
