"""What one client run costs: wall seconds of the work, CPU seconds of the process, peak RSS.

Imported by every client process, including the dlt one that runs in its own virtualenv, so it
uses the standard library only. The work is timed after imports and setup; CPU covers every
thread of the process and any child it waited for (curl), so a reader thread is counted.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Callable


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _peak_mb() -> float:
    """Peak RSS of this process or of its largest waited-for child (Linux KiB, macOS bytes)."""
    peak = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    )
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def measure(work: Callable[[], int]) -> dict[str, float]:
    """Run ``work`` (returns the rows it delivered) and report its figures."""
    cpu_self, cpu_children = _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    rows = work()
    seconds = time.perf_counter() - started
    cpu = _cpu(resource.RUSAGE_SELF) - cpu_self + _cpu(resource.RUSAGE_CHILDREN) - cpu_children
    return {
        "rows": rows,
        "seconds": round(seconds, 4),
        "rows_per_s": round(rows / seconds) if seconds > 0 else 0,
        "cpu_seconds": round(cpu, 4),
        "cpu_s_per_100k": round(cpu / rows * 100_000, 3) if rows else 0.0,
        "peak_rss_mb": round(_peak_mb(), 1),
    }


def report(figures: dict[str, float]) -> None:
    """The one line the parent reads: the figures as JSON, last on stdout."""
    print(json.dumps(figures), flush=True)
