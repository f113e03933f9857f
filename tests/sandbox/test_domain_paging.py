"""Server-driven paging: next links only with $top, keyset by Id without $orderby, $skip with it,
every option carried over, every row exactly once."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from airflow_provider_erpnet.sandbox import model as m
from airflow_provider_erpnet.sandbox.data import Dataset
from airflow_provider_erpnet.sandbox.domain import DomainService
from tests.sandbox.domain_support import BASE, call, decode, follow, get_json, query, strip_annotations

C, SO = m.CUSTOMERS, m.SALES_ORDERS


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return Dataset(2000)


@pytest.fixture
def service(dataset: Dataset) -> DomainService:
    return DomainService(dataset)


def records(pages: list[dict]) -> list[dict]:
    return [record for page in pages for record in page["value"]]


def test_next_links_walk_the_whole_set_once_and_match_the_dataset(
    service: DomainService, dataset: Dataset
) -> None:
    pages = follow(service, C, query(top="137", select="*"))
    assert len(pages) == -(-2000 // 137)
    assert all(len(page["value"]) == 137 for page in pages[:-1])
    assert "@odata.nextLink" not in pages[-1]
    assert [strip_annotations(r) for r in records(pages)] == list(dataset.rows(C))


def test_expanded_orders_page_with_their_lines(service: DomainService, dataset: Dataset) -> None:
    pages = follow(service, SO, query(top="300", select="*", expand="Lines"))
    assert [strip_annotations(r) for r in records(pages)] == list(dataset.rows(SO))
    assert all(r["Lines"] for r in records(pages))


def test_keyset_next_link_keeps_every_option_and_encodes_like_erpnet(service: DomainService) -> None:
    raw = query(top="2", filter="Active eq true and contains(Number,'C')", select="Number,Id", count="true")
    page = get_json(service, C, raw + "&custom=x%20y")
    link = page["@odata.nextLink"]
    last_id = page["value"][-1]["Id"]
    assert link.startswith(
        f"{BASE}{C}?%24top=2&%24filter=Active%20eq%20true%20and%20contains%28Number%2c%27C%27%29"
    )
    assert link.endswith(f"&%24select=Number%2cId&%24count=true&custom=x%20y&%24skiptoken={last_id}")
    options = dict(parse_qsl(urlsplit(link).query))
    assert options == {
        "$top": "2",
        "$filter": "Active eq true and contains(Number,'C')",
        "$select": "Number,Id",
        "$count": "true",
        "custom": "x y",
        "$skiptoken": last_id,
    }
    second = get_json(service, C, urlsplit(link).query)
    assert second["@odata.count"] == page["@odata.count"]
    assert list(second["value"][0]) == ["@odata.id", "Id", "Number"]
    assert second["value"][0]["Id"] > last_id


def test_filtered_keyset_paging_returns_exactly_the_matching_rows(
    service: DomainService, dataset: Dataset
) -> None:
    text = "State in ('Released','Closed') and AggregateLastUpdateTimeUtc ge 2026-01-01T00:00:00Z"
    expected = [
        r["Id"]
        for r in dataset.rows(SO)
        if r["State"] in ("Released", "Closed") and r["AggregateLastUpdateTimeUtc"] >= "2026-01-01T00:00:00Z"
    ]
    pages = follow(service, SO, query(top="50", filter=text, select="Id", count="true"))
    assert [r["Id"] for r in records(pages)] == expected
    assert len(pages) > 2 and {page["@odata.count"] for page in pages} == {len(expected)}


def test_orderby_pages_with_skip(service: DomainService, dataset: Dataset) -> None:
    raw = query(top="400", orderby="DefaultPaymentTermDays desc,Number", select="Id,Number")
    first = get_json(service, C, raw)
    options = parse_qsl(urlsplit(first["@odata.nextLink"]).query)
    assert options[-1] == ("$skip", "400") and ("$orderby", "DefaultPaymentTermDays desc,Number") in options
    pages = follow(service, C, raw)
    rows = sorted(dataset.rows(C), key=lambda r: r["Number"])
    rows.sort(key=lambda r: r["DefaultPaymentTermDays"], reverse=True)
    assert [r["Id"] for r in records(pages)] == [r["Id"] for r in rows]
    third = parse_qsl(urlsplit(pages[1]["@odata.nextLink"]).query)
    assert third[-1] == ("$skip", "800") and [name for name, _ in third].count("$skip") == 1


def test_skip_with_keyset_paging_starts_there_and_continues_by_id(
    service: DomainService, dataset: Dataset
) -> None:
    pages = follow(service, C, query(skip="1900", top="30", select="Id"))
    assert [r["Id"] for r in records(pages)] == [dataset.id_at(C, i) for i in range(1900, 2000)]
    assert "%24skip=" not in pages[0]["@odata.nextLink"]


def test_no_next_link_without_top_or_when_switched_off(service: DomainService) -> None:
    everything = get_json(service, C, query(select="Id"))
    assert len(everything["value"]) == 2000 and "@odata.nextLink" not in everything
    exact = get_json(service, C, query(top="1000", skip="1000", select="Id"))
    assert len(exact["value"]) == 1000 and "@odata.nextLink" not in exact
    assert "@odata.nextLink" not in get_json(service, C, query(top="0"))
    service.next_links = False  # flipped at runtime, like the admin endpoint does
    page = get_json(service, C, query(top="10"))
    assert len(page["value"]) == 10 and "@odata.nextLink" not in page
    service.next_links = True
    assert "@odata.nextLink" in get_json(service, C, query(top="10"))


def test_skiptoken_positions_after_the_token_even_if_it_is_not_in_the_result(
    service: DomainService, dataset: Dataset
) -> None:
    token = dataset.id_at(C, 99)
    page = get_json(service, C, query(top="3", select="Id", skiptoken=token.upper()))
    assert [r["Id"] for r in page["value"]] == [dataset.id_at(C, i) for i in (100, 101, 102)]
    between = token[:-1] + ("0" if token[-1] != "0" else "1")  # a GUID no row has, just around row 99
    expected_start = 99 if between < token else 100
    page = get_json(service, C, query(top="1", select="Id", skiptoken=between))
    assert page["value"][0]["Id"] == dataset.id_at(C, expected_start)
    assert call(service, C, query(skiptoken="not-a-guid")).status == 400
    refused = call(service, C, query(skiptoken=token, orderby="Number"))
    assert refused.status == 400 and "$skip" in decode(refused)["error"]["message"]


def test_paging_100k_rows_by_next_links() -> None:
    dataset = Dataset(100_000)
    service = DomainService(dataset)
    pages = follow(service, C, query(top="1000", select="Id,AggregateLastUpdateTimeUtc"))
    assert len(pages) == 100
    rows = records(pages)
    assert [r["Id"] for r in rows] == [dataset.id_at(C, i) for i in range(100_000)]
    stamps = dataset.values(C, "AggregateLastUpdateTimeUtc")
    assert [r["AggregateLastUpdateTimeUtc"] for r in rows] == list(stamps)
    count = call(service, f"{C}/$count", query(filter="AggregateLastUpdateTimeUtc ge 2026-06-24T00:00:00Z"))
    assert int(count.body) == sum(
        1 for r in rows if r["AggregateLastUpdateTimeUtc"] >= "2026-06-24T00:00:00Z"
    )


def test_a_tiny_row_cache_evicts_but_serves_the_same_bytes(dataset: Dataset) -> None:
    roomy, tiny = DomainService(dataset), DomainService(dataset, cache_bytes=20_000)
    raw = query(top="250", select="default,Id")
    for _ in range(2):  # the second round reads what the first left in (or evicted from) the cache
        assert follow(tiny, C, raw) == follow(roomy, C, raw)
