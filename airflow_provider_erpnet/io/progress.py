"""Progress lines for long extractions: numbers only, never payloads.

A long export is silent between its first and last log line unless something reports along the
way. ``Progress`` logs every ``every_pages`` pages or ``every_seconds`` seconds, whichever comes
first: rows so far, rows/s and, when the expected total is known, percent done and an ETA. Lines
stay short (under 100 characters for entity set names up to about 40), because Airflow's task
log panel cuts longer ones; ``finish`` writes the one summary line of an extraction.
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
        if not self.expected:
            return f"{self.label}: {self.rows} rows, {rate:.0f} rows/s"
        text = f"{self.label}: {self.rows}/{self.expected} rows ({100 * self.rows / self.expected:.0f}%)"
        text += f", {rate:.0f} rows/s"
        if rate > 0 and self.rows < self.expected:
            text += f", ETA {(self.expected - self.rows) / rate:.0f} s"
        return text

    def finish(
        self,
        *,
        rows: int,
        retries: int,
        duplicates: int = 0,
        nbytes: int | None = None,
        window: tuple[str, str] | None = None,
    ) -> None:
        """The summary line: rows kept (in which window), pages, size, time, duplicates, retries."""
        elapsed = self.elapsed
        rate = rows / elapsed if elapsed > 0 else 0.0
        where = "" if window is None else f" in window [{window[0]}, {window[1]}]"
        size = "" if nbytes is None else f", {nbytes} bytes"
        self.log.info(
            "%s: %d rows%s, %d page%s%s, %.1f s, %.0f rows/s, %d duplicates removed, %d retries",
            self.label,
            rows,
            where,
            self.pages,
            "" if self.pages == 1 else "s",
            size,
            elapsed,
            rate,
            duplicates,
            retries,
        )
