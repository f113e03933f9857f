"""OData literal formatting: every supported type, and refusals that explain themselves."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from decimal import Decimal

import pytest

from airflow_provider_erpnet.client import ErpNetConfigError, in_list, literal, reference

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
        (dt.date(2020, 1, 1), "2020-01-01"),
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
