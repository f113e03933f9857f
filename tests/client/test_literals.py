"""OData literal formatting: every supported type, and refusals that explain themselves."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from decimal import Decimal

import pytest

from airflow_provider_erpnet.client import (
    ErpNetClient,
    ErpNetConfigError,
    ErpNetSettings,
    in_list,
    literal,
    reference,
)
from airflow_provider_erpnet.sandbox import Sandbox

GUID = uuid.UUID("edf2bd2a-8b67-4b2c-9d52-1a0f0c7c1e11")


class State(enum.Enum):
    RELEASED = "Released"
    OWNER_S = "Owner's"


class Level(enum.IntEnum):
    HIGH = 3


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Acme", "'Acme'"),
        ("O'Brien's", "'O''Brien''s'"),
        ("", "''"),
        ("Мито", "'Мито'"),
        (GUID, "edf2bd2a-8b67-4b2c-9d52-1a0f0c7c1e11"),
        (dt.date(2020, 1, 1), "2020-01-01Z"),  # the form ERP.net documents
        (dt.datetime(2023, 6, 9, 9, 55, tzinfo=dt.timezone.utc), "2023-06-09T09:55:00Z"),
        (
            dt.datetime(2023, 6, 9, 12, 55, 0, 120000, tzinfo=dt.timezone(dt.timedelta(hours=3))),
            "2023-06-09T09:55:00.120000Z",
        ),
        (
            dt.datetime(2024, 1, 1, 1, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))),
            "2023-12-31T23:30:00Z",
        ),
        (Decimal("123456789012345678"), "123456789012345678"),
        (Decimal("1234567890123456.78"), "1234567890123456.78"),
        (Decimal("1E+3"), "1000"),
        (Decimal("1.50"), "1.50"),
        (Decimal("-0.000001"), "-0.000001"),
        (42, "42"),
        (-7, "-7"),
        (10**20, "100000000000000000000"),
        (5.5, "5.5"),
        (0.1, "0.1"),
        (1e20, "100000000000000000000"),
        (1e-7, "0.0000001"),
        (True, "true"),
        (False, "false"),
        (None, "null"),
        (State.RELEASED, "'Released'"),
        (State.OWNER_S, "'Owner''s'"),
        (Level.HIGH, "'3'"),
    ],
)
def test_literal(value: object, expected: str) -> None:
    assert literal(value) == expected


def test_bool_is_not_formatted_as_int() -> None:
    assert literal(True) != literal(1)
    assert literal(1) == "1"


def test_naive_datetime_is_refused_with_the_fix() -> None:
    with pytest.raises(ErpNetConfigError, match=r"no timezone.*tzinfo"):
        literal(dt.datetime(2023, 6, 9, 9, 55))


@pytest.mark.parametrize("value", [float("nan"), float("inf"), Decimal("NaN"), Decimal("-Infinity")])
def test_non_finite_numbers_are_refused(value: object) -> None:
    with pytest.raises(ErpNetConfigError, match="finite"):
        literal(value)


@pytest.mark.parametrize("value", [b"bytes", ["a"], {"a": 1}, object(), dt.time(12, 0)])
def test_unsupported_type_names_the_type_and_the_supported_ones(value: object) -> None:
    with pytest.raises(ErpNetConfigError) as raised:
        literal(value)
    message = str(raised.value)
    assert type(value).__qualname__ in message
    assert "decimal.Decimal" in message and "uuid.UUID" in message


def test_in_list_formats_every_item() -> None:
    assert in_list(["Released", "Owner's"]) == "('Released','Owner''s')"
    assert in_list((1, Decimal("2.50"), None)) == "(1,2.50,null)"
    assert in_list(x for x in [GUID]) == f"({GUID})"


def test_in_list_refuses_empty_and_bare_strings() -> None:
    with pytest.raises(ErpNetConfigError, match="no values"):
        in_list([])
    with pytest.raises(ErpNetConfigError, match="not a single string"):
        in_list("abc")


def test_in_list_refuses_unsupported_items() -> None:
    with pytest.raises(ErpNetConfigError, match="object"):
        in_list([1, object()])


def test_reference() -> None:
    expected = "'Crm_Sales_Customers(edf2bd2a-8b67-4b2c-9d52-1a0f0c7c1e11)'"
    assert reference("Crm_Sales_Customers", GUID) == expected
    assert reference("Crm_Sales_Customers", str(GUID).upper()) == expected


@pytest.mark.parametrize(("entity_set", "id"), [("Crm_Sales_Customers", "not-a-guid"), ("Bad Set'", GUID)])
def test_reference_refuses_what_would_break_the_filter(entity_set: str, id: object) -> None:
    with pytest.raises(ErpNetConfigError):
        reference(entity_set, id)  # type: ignore[arg-type]


def test_every_literal_kind_selects_on_the_sandbox_what_python_selects(
    erpnet_sandbox: Sandbox, sandbox_settings: ErpNetSettings
) -> None:
    """The helper's output is what the server parses: each kind filters the rows a predicate picks."""
    customers = list(erpnet_sandbox.dataset.rows("Crm_Sales_Customers"))
    orders = list(erpnet_sandbox.dataset.rows("Crm_Sales_SalesOrders"))
    quoted = next(row["Number"] for row in customers if "'" in row["Number"])
    one = customers[7]
    richest = max(row["CreditLimit"]["Value"] for row in customers)
    since = dt.datetime(2026, 6, 24, 2, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))  # 00:00 UTC
    customer_guid = orders[0]["Customer"]["@odata.id"].partition("(")[2].rstrip(")")
    watermark = "AggregateLastUpdateTimeUtc"
    cases = [
        (customers, f"Number eq {literal(quoted)}", lambda r: r["Number"] == quoted),
        (customers, f"Id eq {literal(uuid.UUID(one['Id']))}", lambda r: r["Id"] == one["Id"]),
        (customers, f"FromDate ge {literal(dt.date(2025, 12, 31))}", lambda r: r["FromDate"] >= "2025-12-31"),
        (customers, f"{watermark} ge {literal(since)}", lambda r: r[watermark] >= "2026-06-24T00:00:00Z"),
        (
            customers,
            f"CreditLimitValue eq {literal(richest)}",
            lambda r: r["CreditLimit"]["Value"] == richest,
        ),
        (customers, f"GracePeriodDays ge {literal(10)}", lambda r: (r["GracePeriodDays"] or 0) >= 10),
        (customers, f"Active eq {literal(False)}", lambda r: r["Active"] is False),
        (customers, f"ThruDate eq {literal(None)}", lambda r: r["ThruDate"] is None),
        (orders, f"State eq {literal(State.RELEASED)}", lambda r: r["State"] == "Released"),
        (orders, f"State in {in_list(['New', 'Closed'])}", lambda r: r["State"] in ("New", "Closed")),
        (
            orders,
            f"Customer eq {reference('Crm_Sales_Customers', customer_guid)}",
            lambda r: r["Customer"]["@odata.id"] == f"Crm_Sales_Customers({customer_guid})",
        ),
    ]
    with ErpNetClient(sandbox_settings) as client:
        for rows, text, predicate in cases:
            entity_set = "Crm_Sales_Customers" if rows is customers else "Crm_Sales_SalesOrders"
            expected = sum(1 for row in rows if predicate(row))
            assert expected > 0, f"weak case: nothing matches {text}"
            assert client.count(entity_set, filter=text) == expected, text
