"""The page reader thread: order kept, bounded read-ahead, errors raised in the caller, no thread left."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from airflow_provider_erpnet.client.errors import ErpNetTransportError
from airflow_provider_erpnet.client.prefetch import Prefetcher


def _readers() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "erpnet-page-reader"]


class Source:
    """A generator of pages that records how far it was read and whether it was closed."""

    def __init__(self, pages: int, fail_at: int | None = None) -> None:
        self.pages = pages
        self.fail_at = fail_at
        self.read = 0
        self.closed = False

    def __iter__(self) -> Iterator[int]:
        try:
            for number in range(self.pages):
                if number == self.fail_at:
                    raise ErpNetTransportError("page fetch failed")
                self.read += 1
                yield number
        finally:
            self.closed = True


def test_every_page_arrives_in_order_and_the_reader_ends() -> None:
    source = Source(50)
    with Prefetcher(iter(source)) as pages:
        assert list(pages) == list(range(50))
    assert source.closed and _readers() == []


def test_reads_at_most_depth_pages_ahead() -> None:
    source = Source(100)
    with Prefetcher(iter(source), depth=2) as pages:
        assert next(pages) == 0
        time.sleep(0.5)
        # one handed out, two queued, one held by the reader waiting for room
        assert source.read <= 4
    assert source.closed and _readers() == []


def test_a_reader_error_is_raised_in_the_caller_with_its_type() -> None:
    source = Source(10, fail_at=3)
    with Prefetcher(iter(source)) as pages:
        assert [next(pages) for _ in range(3)] == [0, 1, 2]
        with pytest.raises(ErpNetTransportError, match="page fetch failed"):
            next(pages)
        with pytest.raises(StopIteration):
            next(pages)
    assert source.closed and _readers() == []


def test_a_caller_error_stops_the_reader_and_closes_the_source() -> None:
    source = Source(10_000)
    with pytest.raises(RuntimeError), Prefetcher(iter(source)) as pages:
        next(pages)
        raise RuntimeError("the writer failed")
    assert source.closed and source.read < 10_000 and _readers() == []
