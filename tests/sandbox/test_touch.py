"""Touching rows: `Dataset.touch`, caches that never serve the old rows, `POST /admin/touch`.

The Domain API tests warm every cache (pages, single rows, filter matches, sort orders, filter
columns) before the touch, because serving cached bytes of the old row is the failure to catch.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
import requests

from airflow_provider_erpnet.sandbox import Sandbox
from airflow_provider_erpnet.sandbox import model as m
from airflow_provider_erpnet.sandbox.data import Dataset, TouchError
from airflow_provider_erpnet.sandbox.domain import DomainService
from airflow_provider_erpnet.sandbox.filters import Columns, resolve
from tests.sandbox.domain_support import call, follow, get_json, query, strip_annotations

C, SO, PERSONS, PARTIES = m.CUSTOMERS, m.SALES_ORDERS, m.PERSONS, m.PARTIES
STAMP = "AggregateLastUpdateTimeUtc"
UTC = dt.timezone.utc
LATER = dt.datetime(2026, 7, 1, 8, 30, tzinfo=UTC)  # after every generated stamp
LATER_TEXT = "2026-07-01T08:30:00Z"
SELECT = "Id,ObjectVersion,AggregateLastUpdateTimeUtc"
TokenFor = Callable[..., str]


def snapshot(dataset: Dataset) -> dict[str, list[dict[str, Any]]]:
    return {name: list(dataset.rows(name)) for name in dataset.entity_sets}


def test_touch_changes_the_stamps_and_version_of_the_named_rows_only() -> None:
    dataset = Dataset(200)
    before = snapshot(dataset)
    ids = [before[C][3]["Id"], before[C][150]["Id"]]

    # Upper case and a repeat are the same two rows; an offset is converted to UTC.
    at = dt.datetime(2026, 7, 1, 10, 30, 0, 999_999, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert dataset.touch(C, [ids[0].upper(), ids[1], ids[0]], at) == 2

    after = snapshot(dataset)
    for pos, row in enumerate(after[C]):
        old = before[C][pos]
        if row["Id"] not in ids:
            assert row == old
            continue
        assert row == {
            **old,
            "UpdateTime": LATER_TEXT,
            STAMP: LATER_TEXT,
            "ObjectVersion": old["ObjectVersion"] + 1,
        }
        assert list(row) == list(old)  # property order kept
    assert {name: rows for name, rows in after.items() if name != C} == {
        name: rows for name, rows in before.items() if name != C
    }

    assert dataset.touch(C, ids[:1], LATER) == 1  # touched again: the version moves on
    assert dataset.rows(C)[3]["ObjectVersion"] == before[C][3]["ObjectVersion"] + 2
    assert dataset.record(C, 3, ["ObjectVersion", "Number"]) == {
        "ObjectVersion": before[C][3]["ObjectVersion"] + 2,
        "Number": before[C][3]["Number"],
    }
    assert list(dataset.values(C, STAMP))[3] == LATER_TEXT
    assert dataset.revision(C) == 2 and dataset.revision(SO) == 0


def test_a_touched_order_keeps_its_lines_and_a_person_its_party() -> None:
    dataset = Dataset(100)
    order, person = dataset.rows(SO)[7], dataset.rows(PERSONS)[2]
    party = dataset.rows(PARTIES)[2]
    assert person["Id"] == party["Id"]
    dataset.touch(SO, [order["Id"]], LATER)
    dataset.touch(PERSONS, [person["Id"]], LATER)

    touched = dataset.rows(SO)[7]
    assert "UpdateTime" not in touched  # orders have none
    assert touched == {**order, STAMP: LATER_TEXT, "ObjectVersion": order["ObjectVersion"] + 1}
    assert touched["Lines"] == order["Lines"]
    assert dataset.rows(PARTIES)[2] == party


@pytest.mark.parametrize(
    ("entity_set", "ids", "at", "field", "needle"),
    [
        (C, ["00000000-0000-4000-8000-000000000000"], LATER, "ids", "00000000-0000-4000-8000-000000000000"),
        ("Nope", [], LATER, "entity_set", "unknown entity set 'Nope'"),
        (m.SALES_ORDER_LINES, [], LATER, "entity_set", "touch its owner"),
        (C, "0000002a-aed5-4770-8b8c-7703e2797f9a", LATER, "ids", "a list of Ids"),
        (C, [], dt.datetime(2026, 7, 1), "at", "aware"),
    ],
)
def test_bad_touches_are_refused_and_change_nothing(
    entity_set: str, ids: Any, at: dt.datetime, field: str, needle: str
) -> None:
    dataset = Dataset(100)
    known = dataset.rows(C)[0]["Id"]
    if isinstance(ids, list) and ids:
        ids = [known, *ids]  # a known Id next to the unknown one is not touched either
    with pytest.raises(ValueError, match=needle) as raised:
        dataset.touch(entity_set, ids, at)
    assert isinstance(raised.value, TouchError) and raised.value.field == field
    assert dataset.rows(C)[0] == Dataset(100).rows(C)[0]
    assert dataset.revision(C) == 0
    assert dataset.touch(C, [], LATER) == 0 and dataset.revision(C) == 0


def stamps_query(**options: str) -> str:
    return query(select=SELECT, **options)


def expected_ids(dataset: Dataset, low: str, high: str) -> list[str]:
    return [row["Id"] for row in dataset.rows(SO) if low <= row[STAMP] <= high]


def test_every_cached_answer_reflects_a_touch() -> None:
    dataset = Dataset(4000)  # 2,000 orders: several 1,000-row cache chunks and pages
    service = DomainService(dataset, read_ahead=True)
    rows = list(dataset.rows(SO))
    chosen = [rows[5], rows[1500], rows[1999]]
    ids = [row["Id"] for row in chosen]
    low, high = "2026-06-28T00:00:00Z", "2026-06-29T23:59:59Z"
    window = f"{STAMP} ge {low} and {STAMP} le {high}"
    late = f"{STAMP} ge 2026-07-01T00:00:00Z"
    at_old = f"{STAMP} le {chosen[0][STAMP]} and {STAMP} ge {chosen[0][STAMP]}"
    newest = stamps_query(orderby=f"{STAMP} desc", top="3")

    def pages() -> list[dict[str, Any]]:
        return [r for page in follow(service, SO, stamps_query(top="700")) for r in page["value"]]

    def filtered(text: str) -> list[str]:
        return [r["Id"] for r in get_json(service, SO, stamps_query(filter=text))["value"]]

    def count(text: str) -> int:
        return get_json(service, f"{SO}/$count", query(filter=text))

    # Warm every cache with the old data (pages twice: the second pass is served from cache).
    assert pages() == pages()
    assert get_json(service, f"{SO}({ids[1]})", stamps_query())[STAMP] == chosen[1][STAMP]
    assert filtered(window) == expected_ids(dataset, low, high)
    assert filtered(late) == [] and count(late) == 0
    assert ids[0] in filtered(at_old)
    assert [r["Id"] for r in get_json(service, SO, newest)["value"]] != ids

    assert dataset.touch(SO, ids, LATER) == 3

    current = {row["Id"]: row for row in dataset.rows(SO)}
    served = pages()
    assert [r["Id"] for r in served] == list(current)
    for record in served:
        row = current[record["Id"]]
        assert (record["ObjectVersion"], record[STAMP]) == (row["ObjectVersion"], row[STAMP])
    assert [current[i]["ObjectVersion"] for i in ids] == [r["ObjectVersion"] + 1 for r in chosen]

    single = get_json(service, f"{SO}({ids[1]})", query(select="*", expand="Lines"))
    assert strip_annotations(single) == dataset.rows(SO)[1500]
    assert filtered(window) == expected_ids(dataset, low, high)
    assert filtered(late) == ids and count(late) == 3
    assert ids[0] not in filtered(at_old)
    assert [r["Id"] for r in get_json(service, SO, newest)["value"]] == ids  # ties in Id order
    oldest = get_json(service, SO, stamps_query(orderby=f"{STAMP} asc", skip=str(len(rows) - 3)))
    assert [r["Id"] for r in oldest["value"]] == ids
    assert call(service, C, stamps_query(filter=late)).body.count(b'"Id"') == 0  # other sets untouched
    service.close()


def test_read_ahead_rows_of_a_page_touched_meanwhile_are_not_served() -> None:
    dataset = Dataset(5000)
    service = DomainService(dataset, read_ahead=True)
    first = get_json(service, C, stamps_query(top="1000"))
    nxt = first["@odata.nextLink"].split("?", 1)[1]
    target = dataset.rows(C)[1200]
    dataset.touch(C, [target["Id"]], LATER)  # page 2 is being (or has been) rendered ahead
    service.close()
    (record,) = [r for r in get_json(service, C, nxt)["value"] if r["Id"] == target["Id"]]
    assert (record[STAMP], record["ObjectVersion"]) == (LATER_TEXT, target["ObjectVersion"] + 1)


def test_filter_columns_are_rebuilt_after_a_touch() -> None:
    dataset = Dataset(100)
    columns = Columns(dataset)
    stamps = resolve(m.entity_set(C), STAMP)
    numbers = resolve(m.entity_set(C), "Number")
    old_stamps, old_numbers = list(columns.get(stamps)), columns.get(numbers)
    dataset.touch(C, [dataset.rows(C)[9]["Id"]], LATER)
    new_stamps = columns.get(stamps)
    assert new_stamps[9] > old_stamps[9] and new_stamps[:9] == old_stamps[:9]
    assert columns.get(numbers) == old_numbers


# Over HTTP: the admin endpoint and Sandbox.touch.


def test_admin_touch_over_http(erpnet_sandbox: Sandbox, http: requests.Session, token_for: TokenFor) -> None:
    headers = {"Authorization": f"Bearer {token_for(erpnet_sandbox)}"}
    page_url = f"{erpnet_sandbox.api_url}{C}?$top=5&$select={SELECT}"
    before = http.get(page_url, headers=headers).json()["value"]
    assert erpnet_sandbox.stats()["rows_touched"] == 0

    ids = [before[1]["Id"], before[3]["Id"]]
    answer = http.post(
        f"{erpnet_sandbox.base_url}/admin/touch",
        json={"entity_set": C, "ids": ids, "at": "2026-06-30T10:15:00Z"},
        timeout=10,
    )
    assert answer.status_code == 200 and answer.json() == {"touched": 2}

    after = http.get(page_url, headers=headers).json()["value"]
    for old, new in zip(before, after, strict=True):
        if old["Id"] in ids:
            assert new == {**old, STAMP: "2026-06-30T10:15:00Z", "ObjectVersion": old["ObjectVersion"] + 1}
        else:
            assert new == old
    one = http.get(f"{erpnet_sandbox.api_url}{C}({ids[0]})?$select={SELECT}", headers=headers).json()
    assert one[STAMP] == "2026-06-30T10:15:00Z"

    began = dt.datetime.now(UTC).replace(microsecond=0)
    assert erpnet_sandbox.touch(C, ids[:1]) == 1  # in process, at = now
    stamp = dt.datetime.fromisoformat(erpnet_sandbox.dataset.rows(C)[1][STAMP].replace("Z", "+00:00"))
    assert began <= stamp <= dt.datetime.now(UTC)
    answer = http.post(f"{erpnet_sandbox.base_url}/admin/touch", json={"entity_set": C, "ids": ids[1:]})
    assert answer.json() == {"touched": 1}
    assert http.get(f"{erpnet_sandbox.base_url}/admin/stats").json()["rows_touched"] == 4
    assert erpnet_sandbox.stats()["rows_touched"] == 4


@pytest.mark.parametrize(
    ("body", "field", "needle"),
    [
        (b"[1, 2]", "body", "JSON object"),
        (b"{not json", "body", "JSON object"),
        ({"ids": []}, "entity_set", "name of an entity set"),
        ({"entity_set": "Nope", "ids": []}, "entity_set", "unknown entity set"),
        ({"entity_set": m.SALES_ORDER_LINES, "ids": []}, "entity_set", "not an aggregate root"),
        ({"entity_set": C}, "ids", "list of Id strings"),
        ({"entity_set": C, "ids": [1]}, "ids", "list of Id strings"),
        ({"entity_set": C, "ids": ["00000000-aed5-4000-8000-000000000000"]}, "ids", "00000000-aed5"),
        ({"entity_set": C, "ids": [], "at": "yesterday"}, "at", "ISO 8601"),
        ({"entity_set": C, "ids": [], "at": 5}, "at", "ISO 8601"),
        ({"entity_set": C, "ids": [], "at": "2026-06-30T10:15:00"}, "at", "time zone"),
    ],
)
def test_admin_touch_refuses_bad_input(
    erpnet_sandbox: Sandbox, http: requests.Session, body: Any, field: str, needle: str
) -> None:
    url = f"{erpnet_sandbox.base_url}/admin/touch"
    answer = http.post(url, data=body, timeout=10) if isinstance(body, bytes) else http.post(url, json=body)
    assert answer.status_code == 400
    assert answer.headers["Content-Type"].startswith("application/json")
    error = answer.json()
    assert error["error"] == "invalid_request" and error["field"] == field
    assert needle in error["error_description"]
    assert erpnet_sandbox.dataset.revision(C) == 0
    assert http.get(url).status_code == 405
