"""Paging against the sandbox: every row exactly once, with server next links and with the
``$skip`` fallback of servers before 26.2, and query options that survive every page."""

from __future__ import annotations

import pytest

from airflow_provider_erpnet.client import ErpNetClient, ErpNetConfigError, ErpNetSettings, Page
from airflow_provider_erpnet.sandbox import Sandbox

CUSTOMERS = "Crm_Sales_Customers"

next_links_on_and_off = pytest.mark.parametrize("next_links", [True, False], ids=["next-links", "skip"])


def _expected_ids(sandbox: Sandbox, entity_set: str) -> list[str]:
    return [row["Id"] for row in sandbox.dataset.rows(entity_set)]


@next_links_on_and_off
@pytest.mark.parametrize("page_size", [97, 100], ids=["short-last-page", "exact-multiple"])
def test_every_row_exactly_once(
    erpnet_sandbox: Sandbox, sandbox_settings: ErpNetSettings, next_links: bool, page_size: int
) -> None:
    erpnet_sandbox.set_faults(next_links=next_links)
    expected = _expected_ids(erpnet_sandbox, CUSTOMERS)
    assert len(expected) == 1000
    with ErpNetClient(sandbox_settings) as client:
        pages = list(client.iter_pages(CUSTOMERS, select="Id", page_size=page_size))
    ids = [record["Id"] for page in pages for record in page.records]
    assert sorted(ids) == sorted(expected)
    assert len(set(ids)) == len(ids)
    assert [page.number for page in pages] == list(range(1, len(pages) + 1))
    assert len(pages) == -(-1000 // page_size)  # no empty trailing page is yielded
    assert all(len(page.records) == page_size for page in pages[:-1])
    assert all((page.next_link is not None) == next_links for page in pages[:-1])
    assert pages[-1].next_link is None


@next_links_on_and_off
def test_filter_and_select_survive_every_page(
    erpnet_sandbox: Sandbox, sandbox_settings: ErpNetSettings, next_links: bool
) -> None:
    erpnet_sandbox.set_faults(next_links=next_links)
    expected = [row["Id"] for row in erpnet_sandbox.dataset.rows(CUSTOMERS) if row["Active"]]
    assert 150 < len(expected) < 1000  # the filter must actually drop rows for this test to mean much
    with ErpNetClient(sandbox_settings) as client:
        pages = list(
            client.iter_pages(
                CUSTOMERS, filter="Active eq true", select=["Id", "Number", "Active"], page_size=50
            )
        )
        counted = client.count(CUSTOMERS, filter="Active eq true")
    assert len(pages) >= 4
    for record in pages[2].records:  # page 3: reached via a next link or $skip, not page 1's URL
        assert record["Active"] is True
        assert {key for key in record if not key.startswith("@")} == {"Id", "Number", "Active"}
    ids = [record["Id"] for page in pages for record in page.records]
    assert sorted(ids) == sorted(expected)
    assert counted == len(ids)


@next_links_on_and_off
def test_caller_order_is_kept_and_made_stable(
    erpnet_sandbox: Sandbox, sandbox_settings: ErpNetSettings, next_links: bool
) -> None:
    erpnet_sandbox.set_faults(next_links=next_links)
    rows = erpnet_sandbox.dataset.rows(CUSTOMERS)
    with ErpNetClient(sandbox_settings) as client:
        records = list(
            client.iter_records(CUSTOMERS, select="Id,Number", orderby="Number desc", page_size=120)
        )
    numbers = [record["Number"] for record in records]
    assert numbers == sorted((row["Number"] for row in rows), reverse=True)
    assert sorted(record["Id"] for record in records) == sorted(row["Id"] for row in rows)


def test_skip_fallback_refetches_page_one_in_a_stable_order(
    erpnet_sandbox: Sandbox, sandbox_settings: ErpNetSettings
) -> None:
    """Page 1 asked without $orderby is asked again ordered by Id before $skip paging uses that order."""
    erpnet_sandbox.set_faults(next_links=False)
    with ErpNetClient(sandbox_settings) as client:
        # A token this process cached in an earlier test may be one the sandbox no longer knows:
        # its 401 and the retry happen here, not among the requests counted below.
        client.count(CUSTOMERS)
        erpnet_sandbox.reset_stats()
        unordered = list(client.iter_pages(CUSTOMERS, select="Id", page_size=250))
        unordered_requests = erpnet_sandbox.stats()["api_requests"]
        erpnet_sandbox.reset_stats()
        ordered = list(client.iter_pages(CUSTOMERS, select="Id", orderby="Id", page_size=250))
        ordered_requests = erpnet_sandbox.stats()["api_requests"]
    assert [len(p.records) for p in unordered] == [250] * 4
    assert [r["Id"] for p in unordered for r in p.records] == [r["Id"] for p in ordered for r in p.records]
    # 4 pages + the empty answer that ends $skip paging; + 1 refetch of page 1 when no order was given
    assert (ordered_requests, unordered_requests) == (5, 6)


def test_empty_result_is_one_empty_page(sandbox_settings: ErpNetSettings) -> None:
    with ErpNetClient(sandbox_settings) as client:
        pages = list(client.iter_pages(CUSTOMERS, filter="Number eq 'no such number'"))
    assert pages == [Page(number=1, records=[], next_link=None)]


def test_pages_are_streamed_lazily(erpnet_sandbox: Sandbox, sandbox_settings: ErpNetSettings) -> None:
    with ErpNetClient(sandbox_settings) as client:
        erpnet_sandbox.reset_stats()
        pages = client.iter_pages(CUSTOMERS, select="Id", page_size=100)
        assert erpnet_sandbox.stats()["api_requests"] == 0
        next(pages)
        next(pages)
        assert erpnet_sandbox.stats()["api_requests"] == 2
        pages.close()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"page_size": 1001}, "1..1000"),
        ({"page_size": 0}, "1..1000"),
        ({"params": {"$top": "5"}}, "managed by the pager"),
        ({"params": {"$skip": "5"}}, "managed by the pager"),
        ({"params": {"$filter": "Active eq true"}}, "filter= argument"),
    ],
)
def test_options_that_would_break_paging_are_refused_before_any_request(
    erpnet_sandbox: Sandbox, sandbox_settings: ErpNetSettings, options: dict, message: str
) -> None:
    with ErpNetClient(sandbox_settings) as client:
        erpnet_sandbox.reset_stats()
        with pytest.raises(ErpNetConfigError, match=message):
            client.iter_pages(CUSTOMERS, **options)
    assert erpnet_sandbox.stats()["api_requests"] == 0
