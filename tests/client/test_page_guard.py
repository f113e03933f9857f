"""Paging that never ends is stopped (defect 5 of issue 8); over HTTP see tests/hostile.

``iter_pages`` is driven by a scripted ``fetch_json`` here, so each stop condition shows exactly
when it fires.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from airflow_provider_erpnet.client import ErpNetTransportError, ODataQuery
from airflow_provider_erpnet.client.odata import PageGuard, iter_pages

API = "http://127.0.0.1:1/odata/"


def rows(*numbers: int) -> list[dict[str, Any]]:
    return [{"Id": f"id-{n:04d}"} for n in numbers]


def read(
    pages: Callable[[int], dict[str, Any]], *, page_size: int = 2, expected: int | None = None
) -> list[int]:
    """Drive iter_pages over ``pages(n)`` (the body of the n-th request); the sizes of pages read."""
    counter = itertools.count(1)

    def fetch_json(url: str, params: Mapping[str, str] | None) -> Any:
        return pages(next(counter))

    query = ODataQuery("Things", page_size=page_size, orderby="Id")
    return [len(page.records) for page in iter_pages(fetch_json, API, query, expected=expected)]


def linked(n: int, records: list[dict[str, Any]]) -> dict[str, Any]:
    return {"value": records, "@odata.nextLink": f"{API}Things?$skiptoken={n}"}


def test_an_honest_stream_is_read_to_the_end() -> None:
    pages = {1: linked(1, rows(0, 1)), 2: linked(2, rows(2, 3)), 3: {"value": rows(4)}}
    assert read(pages.__getitem__, expected=5) == [2, 2, 1]


def test_a_page_repeating_the_previous_ids_stops_paging() -> None:
    with pytest.raises(ErpNetTransportError, match="Page 2 of Things repeats the rows of page 1") as raised:
        read(lambda n: linked(n, rows(0, 1)))
    assert raised.value.setting == "api_url"


def test_skip_paging_that_ignores_skip_stops_too() -> None:
    with pytest.raises(ErpNetTransportError, match="repeats"):
        read(lambda n: {"value": rows(0, 1)})


def test_rows_beyond_the_count_and_its_margin_stop_paging() -> None:
    guard = PageGuard("Things", page_size=2, expected=5)
    assert (guard.max_rows, guard.max_pages) == (7, 5)
    with pytest.raises(ErpNetTransportError, match=r"read 8 rows although \$count said 5") as raised:
        read(lambda n: linked(n, rows(2 * n, 2 * n + 1)), expected=5)
    assert "allowing 7" in str(raised.value)


def test_the_margin_grows_with_the_count() -> None:
    assert PageGuard("Things", page_size=1000, expected=1_000_000).max_rows == 1_100_000
    assert PageGuard("Things", page_size=1000, expected=0).max_rows == 1000


def test_empty_pages_that_keep_linking_stop_paging() -> None:
    with pytest.raises(ErpNetTransportError, match="3 empty pages in a row"):
        read(lambda n: linked(n, []))


def test_pages_beyond_what_the_count_needs_stop_paging() -> None:
    """One row per page with a page size of 10: more pages than $count 20 can fill."""
    with pytest.raises(ErpNetTransportError, match="more pages than") as raised:
        read(lambda n: linked(n, rows(n)), page_size=10, expected=20)
    assert raised.value.setting == "page_size"


def test_rows_without_ids_are_not_taken_for_repeats() -> None:
    pages = {1: linked(1, [{"Name": "a"}, {"Name": "b"}]), 2: {"value": [{"Name": "a"}]}}
    assert read(pages.__getitem__) == [2, 1]
