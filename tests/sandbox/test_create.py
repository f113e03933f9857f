"""Creating rows: `Dataset.create`, answers that include the new rows, `POST /admin/create`.

New rows get Ids among the existing ones (as random GUIDs would), so the tests check that keyset
paging, Id ranges, `$count` and single-entity reads all meet them where they sort, and that a
request running while rows are created sees the set either before or after, never a mix.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
import requests

from airflow_provider_erpnet.sandbox import Sandbox
from airflow_provider_erpnet.sandbox import model as m
from airflow_provider_erpnet.sandbox.data import CreateError, Dataset, TouchError
from airflow_provider_erpnet.sandbox.domain import DomainService
from tests.sandbox.conftest import TokenFor
from tests.sandbox.domain_support import follow, get_json, query, strip_annotations

C, P, SO = m.CUSTOMERS, m.PRODUCTS, m.SALES_ORDERS
UTC = dt.timezone.utc
AT = dt.datetime(2026, 7, 2, 9, 0, 0, 500_000, tzinfo=dt.timezone(dt.timedelta(hours=3)))
AT_TEXT = "2026-07-02T06:00:00Z"
STAMPS = ("CreationTime", "UpdateTime", "AggregateLastUpdateTimeUtc")


def test_created_rows_sort_among_the_others_and_change_nothing_else() -> None:
    dataset = Dataset(300)
    before = {name: list(dataset.rows(name)) for name in dataset.entity_sets}

    ids = dataset.create(C, 40, AT)

    assert len(ids) == len(set(ids)) == 40
    rows = list(dataset.rows(C))
    assert len(rows) == dataset.count(C) == 340
    assert [row["Id"] for row in rows] == sorted(row["Id"] for row in rows)  # still in Id order
    positions = [pos for pos, row in enumerate(rows) if row["Id"] in ids]
    assert positions[0] < 100 and positions[-1] > 200, "new Ids must land among the old ones"
    assert [row for row in rows if row["Id"] not in ids] == before[C]
    for pos in positions:
        row = rows[pos]
        assert [row[name] for name in STAMPS] == [AT_TEXT] * 3 and row["ObjectVersion"] == 1
        assert set(row) == set(before[C][0]) and row["Number"] not in {r["Number"] for r in before[C]}
    assert {name: list(dataset.rows(name)) for name in dataset.entity_sets if name != C} == {
        name: rows for name, rows in before.items() if name != C
    }
    assert dataset.revision(C) == 1
    assert list(dataset.values(C, "CreationTime")) == [row["CreationTime"] for row in rows]

    more = dataset.create(P, 1, AT)
    assert dataset.count(P) == len(before[P]) + 1 and more[0] in {r["Id"] for r in dataset.rows(P)}


def test_a_created_row_can_be_touched_and_keeps_its_creation_time() -> None:
    dataset = Dataset(100)
    (ident,) = dataset.create(C, 1, AT)
    old = dataset.rows(C)[50]["Id"]
    later = dt.datetime(2026, 7, 3, tzinfo=UTC)
    assert dataset.touch(C, [ident.upper(), old], later) == 2
    (row,) = [row for row in dataset.rows(C) if row["Id"] == ident]
    assert row["CreationTime"] == AT_TEXT and row["ObjectVersion"] == 2
    assert row["UpdateTime"] == row["AggregateLastUpdateTimeUtc"] == "2026-07-03T00:00:00Z"


@pytest.mark.parametrize(
    ("entity_set", "count", "at", "field", "needle"),
    [
        (SO, 1, AT, "entity_set", "Crm_Sales_Customers and General_Products_Products only"),
        ("Nope", 1, AT, "entity_set", "'Nope'"),
        (C, 0, AT, "count", ">= 1"),
        (C, True, AT, "count", ">= 1"),
        (C, "3", AT, "count", ">= 1"),
        (C, 1, dt.datetime(2026, 7, 1), "at", "aware"),
    ],
)
def test_bad_creations_are_refused_and_change_nothing(
    entity_set: str, count: Any, at: dt.datetime, field: str, needle: str
) -> None:
    dataset = Dataset(100)
    with pytest.raises(CreateError, match=needle) as raised:
        dataset.create(entity_set, count, at)
    assert isinstance(raised.value, TouchError) and raised.value.field == field
    assert dataset.count(C) == 100 and dataset.revision(C) == 0


def test_every_domain_answer_includes_created_rows() -> None:
    dataset = Dataset(3000)
    service = DomainService(dataset, read_ahead=True)
    select = "Id,Number,CreationTime"

    def keyset_ids() -> list[str]:
        pages = follow(service, C, query(select=select, top="700"))
        return [record["Id"] for page in pages for record in page["value"]]

    assert keyset_ids() == [row["Id"] for row in dataset.rows(C)]  # warms pages and read-ahead
    low, high = dataset.rows(C)[1000]["Id"], dataset.rows(C)[1500]["Id"]
    in_range = f"Id ge {low} and Id le {high}"
    assert get_json(service, f"{C}/$count", query(filter=in_range)) == 501

    ids = dataset.create(C, 30, AT)

    current = [row["Id"] for row in dataset.rows(C)]
    assert keyset_ids() == current and len(current) == 3030
    assert get_json(service, f"{C}/$count") == 3030
    now_in_range = sum(1 for ident in current if low <= ident <= high)
    assert now_in_range > 501, "some new Ids should sort inside the range"
    assert get_json(service, f"{C}/$count", query(filter=in_range)) == now_in_range
    recent = get_json(service, C, query(select=select, filter=f"CreationTime ge {AT_TEXT}"))["value"]
    assert sorted(record["Id"] for record in recent) == sorted(ids)
    single = get_json(service, f"{C}({ids[0]})", query(select="*"))
    assert strip_annotations(single) == next(row for row in dataset.rows(C) if row["Id"] == ids[0])
    service.close()


def test_a_request_sees_the_set_before_or_after_a_creation_never_a_mix() -> None:
    dataset = Dataset(4000)
    service = DomainService(dataset, read_ahead=True)
    stop = threading.Event()
    created: list[str] = []
    grew = 0

    def create() -> None:
        while len(created) < 400 and not stop.wait(0.002):
            created.extend(dataset.create(C, 5, AT))

    writer = threading.Thread(target=create)
    writer.start()
    try:
        for _ in range(2):
            before = {row["Id"] for row in dataset.rows(C)}
            pages = follow(service, C, query(select="Id", top="500"))
            seen = [record["Id"] for page in pages for record in page["value"]]
            assert seen == sorted(set(seen)), "a page repeated or reordered a row"
            assert before <= set(seen), "a row that existed before the pass was skipped"
            grew += len(seen) > len(before)
    finally:
        stop.set()
        writer.join()
        service.close()
    assert grew, "no row was created while a pass was paging"


def test_admin_create_over_http(erpnet_sandbox: Sandbox, http: requests.Session, token_for: TokenFor) -> None:
    headers = {"Authorization": f"Bearer {token_for(erpnet_sandbox)}"}
    count_url = f"{erpnet_sandbox.api_url}{C}/$count"
    assert http.get(count_url, headers=headers).text == "1000"

    answer = http.post(
        f"{erpnet_sandbox.base_url}/admin/create",
        json={"entity_set": C, "count": 3, "at": "2026-07-02T09:00:00+03:00"},
        timeout=10,
    )
    assert answer.status_code == 200
    ids = answer.json()["created"]
    assert len(ids) == 3 and http.get(count_url, headers=headers).text == "1003"
    one = http.get(f"{erpnet_sandbox.api_url}{C}({ids[1]})?$select=Id,CreationTime", headers=headers).json()
    assert one["CreationTime"] == AT_TEXT

    began = dt.datetime.now(UTC).replace(microsecond=0)
    (ident,) = erpnet_sandbox.create(P)  # in process: one row, at = now
    (row,) = [row for row in erpnet_sandbox.dataset.rows(P) if row["Id"] == ident]
    stamp = dt.datetime.fromisoformat(row["CreationTime"].replace("Z", "+00:00"))
    assert began <= stamp <= dt.datetime.now(UTC)
    assert erpnet_sandbox.stats()["rows_created"] == 4
    assert http.get(f"{erpnet_sandbox.base_url}/admin/stats").json()["rows_created"] == 4


@pytest.mark.parametrize(
    ("body", "field", "needle"),
    [
        (b"[1]", "body", '"count": 3'),
        ({"count": 2}, "entity_set", "name of an entity set"),
        ({"entity_set": SO}, "entity_set", "creates rows of"),
        ({"entity_set": C, "count": -1}, "count", ">= 1"),
        ({"entity_set": C, "at": "2026-07-02T09:00:00"}, "at", "time zone"),
    ],
)
def test_admin_create_refuses_bad_input(
    erpnet_sandbox: Sandbox, http: requests.Session, body: Any, field: str, needle: str
) -> None:
    url = f"{erpnet_sandbox.base_url}/admin/create"
    answer = http.post(url, data=body, timeout=10) if isinstance(body, bytes) else http.post(url, json=body)
    assert answer.status_code == 400
    error = answer.json()
    assert error["error"] == "invalid_request" and error["field"] == field
    assert needle in error["error_description"]
    assert erpnet_sandbox.dataset.count(C) == 1000 and erpnet_sandbox.stats()["rows_created"] == 0
