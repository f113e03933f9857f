"""Deleting rows: `Dataset.delete`, every cached answer without them, `POST /admin/delete`.

As for touches, the Domain API tests warm every cache first: serving a deleted row from cached
bytes, positions or filter columns is the failure to catch.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
import requests

from airflow_provider_erpnet.sandbox import Sandbox
from airflow_provider_erpnet.sandbox import model as m
from airflow_provider_erpnet.sandbox.data import Dataset, DeleteError
from airflow_provider_erpnet.sandbox.domain import DomainService
from airflow_provider_erpnet.sandbox.filters import Columns, resolve
from tests.sandbox.domain_support import call, follow, get_json, query
from tests.sandbox.test_touch import snapshot

C, SO, LINES = m.CUSTOMERS, m.SALES_ORDERS, m.SALES_ORDER_LINES
PERSONS, COMPANIES, PARTIES = m.PERSONS, m.COMPANIES, m.PARTIES
STAMP = "AggregateLastUpdateTimeUtc"
LATER = dt.datetime(2026, 7, 1, tzinfo=dt.timezone.utc)
TokenFor = Callable[..., str]


def test_delete_removes_the_named_rows_and_leaves_every_other_value_alone() -> None:
    dataset = Dataset(200)
    before = snapshot(dataset)
    ids = [before[C][0]["Id"], before[C][3]["Id"], before[C][199]["Id"]]

    assert dataset.delete(C, [ids[0].upper(), ids[1], ids[2], ids[0]]) == 3

    after = snapshot(dataset)
    assert after[C] == [row for row in before[C] if row["Id"] not in ids]
    assert dataset.count(C) == 197 == len(dataset.rows(C))
    assert [dataset.id_at(C, pos) for pos in range(3)] == [row["Id"] for row in after[C][:3]]
    assert list(dataset.values(C, "Number")) == [row["Number"] for row in after[C]]
    assert {name: rows for name, rows in after.items() if name != C} == {
        name: rows for name, rows in before.items() if name != C
    }  # orders keep referencing deleted customers, as a stale reference would
    assert dataset.revision(C) == 1 and dataset.revision(SO) == 0

    assert dataset.delete(C, [before[C][1]["Id"]]) == 1
    assert dataset.rows(C)[0] == before[C][1 + 1]
    assert dataset.revision(C) == 2


def test_a_deleted_order_takes_its_lines_and_a_person_its_party() -> None:
    dataset = Dataset(100)
    before = snapshot(dataset)
    order = before[SO][7]
    person, company = before[PERSONS][2], before[COMPANIES][1]

    dataset.delete(SO, [order["Id"]])
    dataset.delete(PERSONS, [person["Id"]])
    dataset.delete(PARTIES, [company["Id"]])  # a party goes with its company, either way round

    after = snapshot(dataset)
    gone = {order["Id"], person["Id"], company["Id"], *(line["Id"] for line in order["Lines"])}
    assert after[LINES] == [line for line in before[LINES] if line["Id"] not in gone]
    assert len(after[LINES]) == len(before[LINES]) - len(order["Lines"])
    for name in (SO, PERSONS, COMPANIES, PARTIES):
        assert after[name] == [row for row in before[name] if row["Id"] not in gone], name
    assert after[C] == before[C]


@pytest.mark.parametrize(
    ("entity_set", "ids", "field", "needle"),
    [
        ("Nope", [], "entity_set", "unknown entity set"),
        (LINES, [], "entity_set", "delete its owner"),
        (C, "00000001-aed5-4000-8000-000000000000", "ids", "single string"),
        (C, ["00000000-aed5-4000-8000-000000000000"], "ids", "00000000-aed5"),
    ],
)
def test_bad_deletes_are_refused_and_change_nothing(
    entity_set: str, ids: Any, field: str, needle: str
) -> None:
    dataset = Dataset(100)
    known = dataset.rows(C)[0]["Id"]
    if isinstance(ids, list) and ids:
        ids = [known, *ids]  # a known Id next to the unknown one is not deleted either
    with pytest.raises(DeleteError, match=needle) as raised:
        dataset.delete(entity_set, ids)
    assert raised.value.field == field
    assert dataset.count(C) == 100 and dataset.revision(C) == 0


def test_a_deleted_row_cannot_be_deleted_or_touched_again() -> None:
    dataset = Dataset(100)
    ident = dataset.rows(C)[5]["Id"]
    dataset.delete(C, [ident])
    with pytest.raises(DeleteError, match=ident):
        dataset.delete(C, [ident])
    with pytest.raises(ValueError, match=ident):
        dataset.touch(C, [ident], LATER)
    assert dataset.count(C) == 99


def test_every_cached_answer_leaves_out_deleted_rows() -> None:
    dataset = Dataset(4000)  # 2,000 orders: several 1,000-row cache chunks and pages
    service = DomainService(dataset, read_ahead=True)
    rows = list(dataset.rows(SO))
    chosen = [rows[0], rows[999], rows[1000], rows[1999]]
    ids = [row["Id"] for row in chosen]
    select = f"Id,ObjectVersion,{STAMP}"
    window = f"{STAMP} ge {min(r[STAMP] for r in chosen)} and {STAMP} le {max(r[STAMP] for r in chosen)}"

    def pages() -> list[str]:
        return [
            r["Id"] for page in follow(service, SO, query(select=select, top="700")) for r in page["value"]
        ]

    def filtered(text: str) -> list[str]:
        return [r["Id"] for r in get_json(service, SO, query(select=select, filter=text))["value"]]

    def ordered() -> list[str]:
        body = get_json(service, SO, query(select=select, orderby=f"{STAMP} desc", top="1000"))
        return [r["Id"] for r in body["value"]]

    # Warm every cache with the old data (pages twice: the second pass is served from cache).
    assert pages() == pages() == [row["Id"] for row in rows]
    assert get_json(service, f"{SO}({ids[1]})", query(select=select))["Id"] == ids[1]
    in_window = filtered(window)
    assert set(ids) <= set(in_window)
    assert len(ordered()) == 1000
    assert get_json(service, f"{SO}/$count") == 2000

    assert dataset.delete(SO, ids) == 4

    remaining = [row["Id"] for row in rows if row["Id"] not in ids]
    assert pages() == remaining == [row["Id"] for row in dataset.rows(SO)]
    assert get_json(service, f"{SO}/$count") == 1996
    assert get_json(service, SO, query(select="Id", count="true", top="0"))["@odata.count"] == 1996
    assert get_json(service, f"{SO}/$count", query(filter=window)) == len(in_window) - 4
    assert filtered(window) == [i for i in in_window if i not in ids]
    newest_first = sorted(dataset.rows(SO), key=lambda row: row[STAMP], reverse=True)  # stable: Id order
    assert ordered() == [row["Id"] for row in newest_first][:1000]
    missing = call(service, f"{SO}({ids[1]})", query(select=select))
    assert missing.status == 404 and ids[1].encode() in missing.body
    lines = {line["Id"] for row in chosen for line in row["Lines"]}
    assert not lines & {r["Id"] for page in follow(service, LINES, query(select="Id")) for r in page["value"]}
    service.close()


def test_keyset_paging_resumes_after_a_row_deleted_meanwhile() -> None:
    dataset = Dataset(3000)
    service = DomainService(dataset, read_ahead=True)
    first = get_json(service, C, query(select="Id", top="1000"))
    resume = first["@odata.nextLink"].split("?", 1)[1]
    last_served, next_row = first["value"][-1]["Id"], dataset.rows(C)[1000]["Id"]
    dataset.delete(C, [last_served, next_row])  # the page's own last row and the next page's first
    second = get_json(service, C, resume)
    assert [r["Id"] for r in second["value"]] == [row["Id"] for row in dataset.rows(C)[999:1999]]
    service.close()


def test_filter_columns_are_rebuilt_after_a_delete() -> None:
    dataset = Dataset(100)
    columns = Columns(dataset)
    numbers = resolve(m.entity_set(C), "Number")
    old = list(columns.get(numbers))
    dataset.delete(C, [dataset.rows(C)[9]["Id"]])
    assert list(columns.get(numbers)) == old[:9] + old[10:]


# Over HTTP: the admin endpoint and Sandbox.delete.


def test_admin_delete_over_http(erpnet_sandbox: Sandbox, http: requests.Session, token_for: TokenFor) -> None:
    headers = {"Authorization": f"Bearer {token_for(erpnet_sandbox)}"}
    page_url = f"{erpnet_sandbox.api_url}{C}?$top=5&$select=Id"
    before = [row["Id"] for row in http.get(page_url, headers=headers).json()["value"]]
    assert erpnet_sandbox.stats()["rows_deleted"] == 0

    answer = http.post(
        f"{erpnet_sandbox.base_url}/admin/delete", json={"entity_set": C, "ids": before[1:3]}, timeout=10
    )
    assert answer.status_code == 200 and answer.json() == {"deleted": 2}
    after = [row["Id"] for row in http.get(page_url, headers=headers).json()["value"]]
    assert after[:3] == [before[0], before[3], before[4]]
    count = http.get(f"{erpnet_sandbox.api_url}{C}/$count", headers=headers).text
    assert int(count) == erpnet_sandbox.dataset.count(C) == 998

    assert erpnet_sandbox.delete(C, [before[0]]) == 1  # in process
    assert http.get(f"{erpnet_sandbox.base_url}/admin/stats").json()["rows_deleted"] == 3
    assert erpnet_sandbox.stats()["rows_deleted"] == 3


@pytest.mark.parametrize(
    ("body", "field", "needle"),
    [
        (b"[1, 2]", "body", "JSON object"),
        ({"ids": []}, "entity_set", "name of an entity set"),
        ({"entity_set": LINES, "ids": []}, "entity_set", "not an aggregate root"),
        ({"entity_set": C, "ids": [1]}, "ids", "list of Id strings"),
        ({"entity_set": C, "ids": ["00000000-aed5-4000-8000-000000000000"]}, "ids", "00000000-aed5"),
    ],
)
def test_admin_delete_refuses_bad_input(
    erpnet_sandbox: Sandbox, http: requests.Session, body: Any, field: str, needle: str
) -> None:
    url = f"{erpnet_sandbox.base_url}/admin/delete"
    answer = http.post(url, data=body, timeout=10) if isinstance(body, bytes) else http.post(url, json=body)
    assert answer.status_code == 400
    error = answer.json()
    assert error["error"] == "invalid_request" and error["field"] == field
    assert needle in error["error_description"]
    assert erpnet_sandbox.dataset.count(C) == 1000 and erpnet_sandbox.dataset.revision(C) == 0
    assert http.get(url).status_code == 405


def test_created_rows_can_be_deleted_and_deletions_survive_a_creation() -> None:
    dataset = Dataset(300)
    before = [row["Id"] for row in dataset.rows(C)]
    dataset.delete(C, before[5:7])
    (created,) = dataset.create(C, 1, LATER)
    assert dataset.count(C) == 299
    assert [row["Id"] for row in dataset.rows(C)] == sorted([*before[:5], *before[7:], created])
    assert dataset.delete(C, [created]) == 1
    assert [row["Id"] for row in dataset.rows(C)] == [*before[:5], *before[7:]]
