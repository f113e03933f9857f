"""Read ahead: a background thread pulls pages while the caller converts and writes the previous one.

Socket reads release the GIL, so fetching page n+1 overlaps with converting page n, and with the
server's own time per page. The queue is bounded (``depth`` pages wait at most), so memory stays
at a few pages. An error in the reader is raised in the caller, with its own type, at the point
where the failed page would have been; ``close`` (also on an error in the caller) stops the
reader after the request it is in, closes the source iterator in the reader's own thread and
waits for the thread to end.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator
from types import TracebackType
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
_ITEM, _END, _ERROR = "item", "end", "error"
_POLL = 0.1  # seconds between checks for close() while the queue is full


class Prefetcher(Generic[T]):
    """Iterates ``source`` in a background thread, at most ``depth`` items ahead of the caller."""

    def __init__(self, source: Iterator[T], *, depth: int = 2, join_timeout: float = 30.0) -> None:
        self._source = source
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._join_timeout = join_timeout
        self._done = False
        self._thread = threading.Thread(target=self._read, name="erpnet-page-reader", daemon=True)
        self._thread.start()

    def __iter__(self) -> Prefetcher[T]:
        return self

    def __next__(self) -> T:
        if self._done:
            raise StopIteration
        kind, value = self._queue.get()
        if kind == _ITEM:
            return value
        self._done = True
        if kind == _ERROR:
            raise value
        raise StopIteration

    def close(self) -> None:
        """Stop reading, and wait (up to ``join_timeout``) for the reader thread to end."""
        self._done = True
        self._stop.set()
        while True:  # make room, so a reader blocked on a full queue sees the stop at once
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join(self._join_timeout)
        if self._thread.is_alive():
            log.warning(
                "The page reader is still waiting for an answer after %.0f s; it ends when that "
                "request does, without reading further.",
                self._join_timeout,
            )

    def __enter__(self) -> Prefetcher[T]:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _read(self) -> None:
        try:
            for item in self._source:
                if not self._put(_ITEM, item):
                    return
            self._put(_END, None)
        except BaseException as error:  # handed to the caller, who raises it
            self._put(_ERROR, error)
        finally:
            close = getattr(self._source, "close", None)
            if close is not None:
                close()

    def _put(self, kind: str, value: Any) -> bool:
        """Queue one entry unless the caller closed us meanwhile; False when it did."""
        while not self._stop.is_set():
            try:
                self._queue.put((kind, value), timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False
