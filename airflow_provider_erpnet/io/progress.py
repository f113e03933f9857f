"""Progress lines for long extractions: numbers only, never payloads.

A long export is silent between its first and last log line unless something reports along the
way. ``Progress`` logs every ``every_pages`` pages or ``every_seconds`` seconds, whichever comes
first: rows so far, rows/s and, when the expected total is known, percent done and an ETA.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable


class Progress:
    """Counts pages and rows of one extraction and logs them at a bounded rate."""

    def __init__(
        self,
        log: logging.Logger | logging.LoggerAdapter,
        label: str,
        *,
        expected: int | None = None,
        every_pages: int = 10,
        every_seconds: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log = log
        self.label = label
        self.expected = expected
        self.every_pages = every_pages
        self.every_seconds = every_seconds
        self.clock = clock
        self.started = clock()
        self.pages = 0
        self.rows = 0
        self._logged_pages = 0
        self._logged_at = self.started

    @property
    def elapsed(self) -> float:
        return self.clock() - self.started

    def page(self, rows: int) -> None:
        """Count one page of ``rows`` records; log if a report is due."""
        self.pages += 1
        self.rows += rows
        now = self.clock()
        if self.pages - self._logged_pages >= self.every_pages or now - self._logged_at >= self.every_seconds:
            self._logged_pages, self._logged_at = self.pages, now
            self.log.info("%s", self.line(now))

    def line(self, now: float | None = None) -> str:
        """The progress line as of ``now`` (default: the clock)."""
        elapsed = (self.clock() if now is None else now) - self.started
        rate = self.rows / elapsed if elapsed > 0 else 0.0
        text = f"{self.label}: {self.pages} pages, {self.rows} rows, {rate:.0f} rows/s"
        if self.expected:
            percent = 100.0 * self.rows / self.expected
            text += f", {percent:.1f}% of {self.expected}"
            if rate > 0 and self.rows < self.expected:
                text += f", ETA {(self.expected - self.rows) / rate:.0f} s"
        return text

    def finish(self, *, rows: int, retries: int, duplicates: int = 0, nbytes: int | None = None) -> None:
        """The summary line: what was kept, how long it took, how many requests were retried."""
        elapsed = self.elapsed
        rate = rows / elapsed if elapsed > 0 else 0.0
        size = "" if nbytes is None else f", {nbytes} bytes"
        self.log.info(
            "%s: done, %d pages, %d rows kept (%d duplicates removed)%s, %.1f s, %.0f rows/s, %d retries",
            self.label,
            self.pages,
            rows,
            duplicates,
            size,
            elapsed,
            rate,
            retries,
        )
