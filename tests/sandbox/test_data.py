"""The sandbox dataset: deterministic, model-shaped, referentially sound, and awkward on purpose."""

from __future__ import annotations

import re
from collections import Counter
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest

from airflow_provider_erpnet.sandbox import model as m
from airflow_provider_erpnet.sandbox.data import Dataset

GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
INSTANT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
REFERENCE = re.compile(r"(\w+)\(([0-9a-f-]{36})\)")


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return Dataset(1000)


@pytest.fixture(scope="module")
def rows(dataset: Dataset) -> dict[str, list[dict[str, Any]]]:
    return {name: list(dataset.rows(name)) for name in dataset.entity_sets}


def all_values(rows: list[dict[str, Any]], name: str) -> list[Any]:
    return [row[name] for row in rows]


def test_same_seed_gives_identical_rows_and_another_seed_does_not() -> None:
    first, second, other = Dataset(200, seed=7), Dataset(200, seed=7), Dataset(200, seed=8)
    for name in first.entity_sets:
        assert list(first.rows(name)) == list(second.rows(name)), name
    assert first.rows(m.CUSTOMERS)[0]["Id"] != other.rows(m.CUSTOMERS)[0]["Id"]


def test_counts_follow_the_scale_with_minimums() -> None:
    big, tiny = Dataset(1000), Dataset(1)
    assert [big.count(n) for n in (m.CUSTOMERS, m.PRODUCTS, m.SALES_ORDERS, m.PERSONS, m.COMPANIES)] == [
        1000,
        100,
        500,
        200,
        50,
    ]
    assert [tiny.count(n) for n in (m.CUSTOMERS, m.PRODUCTS, m.SALES_ORDERS, m.PERSONS)] == [1, 20, 10, 10]
    assert big.count(m.PARTIES) == 250
    assert set(big.entity_sets) == set(m.ENTITY_SETS)
    with pytest.raises(KeyError, match="Nope"):
        big.count("Nope")
    with pytest.raises(ValueError, match="scale"):
        Dataset(0)


def test_ids_are_lowercase_guids_sorted_in_row_order(dataset: Dataset, rows: dict[str, list]) -> None:
    seen: Counter[str] = Counter()
    for name, records in rows.items():
        ids = all_values(records, "Id")
        assert all(GUID.fullmatch(i) for i in ids), name
        assert ids == sorted(ids) and len(set(ids)) == len(ids), name
        assert ids == [dataset.id_at(name, pos) for pos in range(len(ids))]
        if name not in (m.PERSONS, m.COMPANIES):  # these share their Id with their party
            seen.update(ids)
    assert max(seen.values()) == 1


def test_persons_and_companies_are_the_parties(rows: dict[str, list]) -> None:
    parties = rows[m.PARTIES]
    persons, companies = rows[m.PERSONS], rows[m.COMPANIES]
    assert all_values(parties, "Id") == all_values(persons, "Id") + all_values(companies, "Id")
    assert {p["PartyType"] for p in parties[: len(persons)]} == {"Person"}
    assert {p["PartyType"] for p in parties[len(persons) :]} == {"Company"}
    for person, party in zip(persons, parties[: len(persons)], strict=True):
        assert person["Party"] == {"@odata.id": f"{m.PARTIES}({person['Id']})"}
        assert party["DisplayText"] == person["DisplayText"] == party["PartyName"]["EN"]
        assert party["AggregateLastUpdateTimeUtc"] == person["AggregateLastUpdateTimeUtc"]


def _check_value(prop: m.Property, value: Any, where: str) -> None:
    if value is None:
        assert prop.nullable, f"{where}: null in a non-nullable property"
        return
    kind = prop.kind
    if kind is m.Kind.STRING:
        assert isinstance(value, str)
        assert prop.max_length is None or len(value) <= prop.max_length, where
    elif kind is m.Kind.GUID:
        assert GUID.fullmatch(value), where
    elif kind is m.Kind.BOOLEAN:
        assert isinstance(value, bool), where
    elif kind is m.Kind.INT32:
        assert isinstance(value, int) and not isinstance(value, bool) and -(2**31) <= value < 2**31, where
    elif kind is m.Kind.DECIMAL:
        _check_decimal(value, prop.precision or 18, prop.scale or 0, where)
    elif kind is m.Kind.DATE:
        date.fromisoformat(value)
        assert len(value) == 10, where
    elif kind is m.Kind.DATETIME:
        assert INSTANT.fullmatch(value), where
    elif kind in (m.Kind.AMOUNT, m.Kind.QUANTITY):
        unit = "Currency" if kind is m.Kind.AMOUNT else "Unit"
        assert set(value) == {"Value", unit}, where
        assert isinstance(value[unit], str) and value[unit], where
        _check_decimal(value["Value"], 18, 2 if kind is m.Kind.AMOUNT else 3, where)
    elif kind is m.Kind.MULTILANG:
        assert isinstance(value, dict) and all(isinstance(v, str) for v in value.values()), where
    elif kind is m.Kind.ENUM:
        assert prop.enum is not None and value in prop.enum.names, where
    elif kind is m.Kind.REFERENCE:
        assert set(value) == {"@odata.id"}, where
        match = REFERENCE.fullmatch(value["@odata.id"])
        assert match and match.group(1) == prop.target, where


def _check_decimal(value: Decimal, precision: int, scale: int, where: str) -> None:
    assert isinstance(value, Decimal), where
    _, digits, exponent = value.as_tuple()
    assert exponent == -scale, f"{where}: {value} does not have scale {scale}"
    assert len(digits) <= precision, f"{where}: {value} exceeds precision {precision}"


def test_rows_have_every_model_property_with_its_type(rows: dict[str, list]) -> None:
    for name, records in rows.items():
        entity = m.ENTITY_SETS[name]
        expected = [p.name for p in entity.properties]
        for row in records:
            assert list(row) == expected, name
            for prop in entity.properties:
                if prop.kind is not m.Kind.CHILDREN:
                    _check_value(prop, row[prop.name], f"{name}.{prop.name}")


def test_references_point_at_existing_rows(rows: dict[str, list]) -> None:
    ids = {name: set(all_values(records, "Id")) for name, records in rows.items()}
    checked = 0
    for name, records in rows.items():
        for prop in m.ENTITY_SETS[name].properties:
            if prop.kind is not m.Kind.REFERENCE:
                continue
            for value in all_values(records, prop.name):
                if value is not None:
                    match = REFERENCE.fullmatch(value["@odata.id"])
                    assert match is not None and match.group(2) in ids[prop.target or ""], (name, prop.name)
                    checked += 1
    assert checked > 5000


def test_sales_order_lines_belong_to_their_order(rows: dict[str, list]) -> None:
    orders, lines = rows[m.SALES_ORDERS], rows[m.SALES_ORDER_LINES]
    assert [line for order in orders for line in order["Lines"]] == lines
    for order in orders:
        assert 1 <= len(order["Lines"]) <= 5
        assert [line["LineNo"] for line in order["Lines"]] == [
            10 * (i + 1) for i in range(len(order["Lines"]))
        ]
        for line in order["Lines"]:
            assert line["SalesOrder"] == {"@odata.id": f"{m.SALES_ORDERS}({order['Id']})"}
            amount = (line["Quantity"]["Value"] * line["UnitPrice"]["Value"]).quantize(
                Decimal("0.01"), rounding=ROUND_HALF_UP
            )
            assert line["LineAmount"] == {"Value": amount, "Currency": line["UnitPrice"]["Currency"]}
    assert {len(order["Lines"]) for order in orders} == {1, 2, 3, 4, 5}


def test_watermarks_span_the_documented_year_with_a_dense_last_week(rows: dict[str, list]) -> None:
    for name, records in rows.items():
        for row in records:
            last = row.get("AggregateLastUpdateTimeUtc")
            if last is None:
                continue
            assert "2025-07-01T00:00:00Z" <= last <= "2026-06-30T23:59:59Z", name
            assert row.get("UpdateTime") is None or row["UpdateTime"] <= last
            assert row.get("CreationTime") is None or row["CreationTime"] <= row.get("UpdateTime", last)
    stamps = all_values(rows[m.CUSTOMERS], "AggregateLastUpdateTimeUtc")
    months = Counter(s[:7] for s in stamps)
    assert len(months) == 12 and min(months.values()) >= 40
    last_week = [s for s in stamps if s >= "2026-06-24T00:00:00Z"]
    assert len(last_week) >= 150
    assert len({s[:13] for s in last_week}) >= 100  # most hours of the last week hold a change


def test_awkward_values_are_present(rows: dict[str, list]) -> None:
    texts = set(all_values(rows[m.CUSTOMERS], "DisplayText"))
    notes = [n for n in all_values(rows[m.SALES_ORDERS], "Notes") if n is not None]
    product_names = [name for row in rows[m.PRODUCTS] for name in row["Name"].values()]
    numbers = all_values(rows[m.CUSTOMERS], "Number")
    assert "O'Brien & Sons" in texts and 'The "Quoted" Company' in texts and "" in texts
    assert any(re.search("[\u0400-\u04ff]", t) for t in texts)  # Cyrillic
    assert any("🚀" in t for t in texts)
    assert any("\\" in t for t in texts)
    assert any("\n" in n for n in notes) and any("\r\n" in n for n in notes) and "" in notes
    assert any("\\" in n for n in notes) and any('"' in n for n in notes)
    assert any('"' in n for n in product_names) and "" in product_names
    assert any("'" in n for n in numbers) and any(len(n) == 16 for n in numbers)
    assert None in all_values(rows[m.CUSTOMERS], "ThruDate")
    assert None in all_values(rows[m.SALES_ORDERS], "Notes")

    limits = [row["CreditLimit"]["Value"] for row in rows[m.CUSTOMERS]]
    assert Decimal("9999999999999999.99") in limits and Decimal("0.00") in limits
    turnovers = all_values(rows[m.CUSTOMERS], "Turnover")
    assert Decimal("-9999999999999999.99") in turnovers
    assert Decimal("999999999999999.999") in all_values(rows[m.PRODUCTS], "GrossWeight")

    instants = set(all_values(rows[m.CUSTOMERS], "AggregateLastUpdateTimeUtc"))
    deliveries = set(all_values(rows[m.SALES_ORDERS], "RequiredDeliveryDate"))
    for boundary in (
        "2025-10-26T01:00:00Z",
        "2026-03-29T01:00:00Z",
        "2025-12-31T23:59:59Z",
        "2026-01-01T00:00:00Z",
    ):
        assert boundary in instants and boundary in deliveries
    assert {"2025-12-31", "2026-01-01", "2024-02-29"} <= set(all_values(rows[m.CUSTOMERS], "FromDate"))
    assert "2000-02-29" in all_values(rows[m.PERSONS], "BirthDate")

    descriptions = [d for d in all_values(rows[m.PRODUCTS], "Description") if d is not None]
    assert (
        {} in descriptions and any("en" in d for d in descriptions) and any("EN" in d for d in descriptions)
    )


def test_rows_is_a_lazy_sequence() -> None:
    dataset = Dataset(1_000_000)  # constructing it generates nothing
    customers = dataset.rows(m.CUSTOMERS)
    assert len(customers) == 1_000_000
    assert customers[-1] == customers[999_999]
    assert customers[-1]["Id"].startswith(f"{999_999:08x}-")
    assert [r["Id"] for r in customers[2:4]] == [dataset.id_at(m.CUSTOMERS, 2), dataset.id_at(m.CUSTOMERS, 3)]
    with pytest.raises(IndexError):
        customers[1_000_000]
