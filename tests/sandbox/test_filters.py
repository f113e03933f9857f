"""$filter: every operator and literal kind ERP.net documents, checked against plain Python over
Dataset.rows(); unsupported operators give ERP.net's 500 domain error, mistakes a 400."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from airflow_provider_erpnet.sandbox import model as m
from airflow_provider_erpnet.sandbox.data import Dataset
from airflow_provider_erpnet.sandbox.filters import Columns, compile_filter

Row = dict[str, Any]


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return Dataset(1000)


@pytest.fixture(scope="module")
def columns(dataset: Dataset) -> Columns:
    return Columns(dataset)


@pytest.fixture(scope="module")
def rows(dataset: Dataset) -> dict[str, list[Row]]:
    return {
        name: list(dataset.rows(name))
        for name in (m.CUSTOMERS, m.SALES_ORDERS, m.SALES_ORDER_LINES, m.PRODUCTS)
    }


def matching_ids(columns: Columns, entity_set: str, text: str) -> list[str]:
    positions = compile_filter(text, m.ENTITY_SETS[entity_set], columns)(None)
    return [columns.dataset.id_at(entity_set, pos) for pos in positions]


def refused(columns: Columns, entity_set: str, text: str) -> m.QueryError:
    with pytest.raises(m.QueryError) as raised:
        compile_filter(text, m.ENTITY_SETS[entity_set], columns)(None)
    return raised.value


def expect(
    columns: Columns, rows: dict[str, list[Row]], entity_set: str, text: str, predicate: Callable[[Row], bool]
) -> list[str]:
    """The filter selects exactly the rows the predicate selects: some, but not all of them."""
    expected = [row["Id"] for row in rows[entity_set] if predicate(row)]
    assert 0 < len(expected) < len(rows[entity_set]), f"weak test: {len(expected)} rows match {text!r}"
    assert matching_ids(columns, entity_set, text) == expected, text
    return expected


C, SO, LINES, P = m.CUSTOMERS, m.SALES_ORDERS, m.SALES_ORDER_LINES, m.PRODUCTS
W = "AggregateLastUpdateTimeUtc"


def equals(name: str, expected: Any) -> Callable[[Row], bool]:
    return lambda row: row[name] == expected


def between(name: str, low: Any, high: Any) -> Callable[[Row], bool]:
    """low <= value <= high for a plain property or the Value of an Amount/Quantity."""

    def check(row: Row) -> bool:
        value = row[name]["Value"] if isinstance(row[name], dict) else row[name]
        return value is not None and low <= value <= high

    return check


HIGH = "9999-12-31T23:59:59Z"
BIG = Decimal("9999999999999999.99")


@pytest.mark.parametrize(
    ("entity_set", "text", "predicate"),
    [
        # strings: '' escaping, quotes, Cyrillic, emoji, empty, backslash, newline
        (C, "Number eq 'O''0000034'", equals("Number", "O'0000034")),
        (C, "DisplayText eq 'O''Brien & Sons'", equals("DisplayText", "O'Brien & Sons")),
        (C, "DisplayText eq 'The \"Quoted\" Company'", equals("DisplayText", 'The "Quoted" Company')),
        (C, "DisplayText eq 'Иванов и синове ООД'", equals("DisplayText", "Иванов и синове ООД")),
        (C, "DisplayText eq ''", equals("DisplayText", "")),
        (C, "contains(DisplayText,'🚀')", lambda r: "🚀" in r["DisplayText"]),
        (C, "contains(DisplayText,'\\')", lambda r: "\\" in r["DisplayText"]),
        (C, "startswith(Number,'CUST-')", lambda r: r["Number"].startswith("CUST-")),
        (C, "endswith(Number,'7')", lambda r: r["Number"].endswith("7")),
        (C, "Number ge 'C0000900' and Number le 'C0000950'", between("Number", "C0000900", "C0000950")),
        (C, "Number eq'C0000001'", equals("Number", "C0000001")),
        (SO, "contains(Notes,'\n')", lambda r: "\n" in (r["Notes"] or "")),
        # null
        (C, "ThruDate eq null", equals("ThruDate", None)),
        (SO, "Notes in ('', null)", lambda r: r["Notes"] in ("", None)),
        # integers, booleans, parentheses, literal on the left
        (C, "GracePeriodDays ge 5 and GracePeriodDays le 10", between("GracePeriodDays", 5, 10)),
        (C, "Active eq false", equals("Active", False)),
        (C, "Active", equals("Active", True)),
        (C, "(Active eq true) and (DefaultPaymentTermDays in (7, 90))",
         lambda r: r["Active"] and r["DefaultPaymentTermDays"] in (7, 90)),
        (C, "30 le DefaultPaymentTermDays", between("DefaultPaymentTermDays", 30, 10**6)),
        # decimals, 18 digits, Amount/Quantity through <Prop>Value
        (C, "CreditLimitValue ge 50000.5", between("CreditLimit", Decimal("50000.5"), BIG)),
        (C, "CreditLimitValue eq 9999999999999999.99", between("CreditLimit", BIG, BIG)),
        (C, "Turnover le -9999999999999999.99", equals("Turnover", -BIG)),
        (C, "Turnover ge 0 and Turnover le 1000000", between("Turnover", 0, 10**6)),
        (LINES, "QuantityValue ge 50.5", between("Quantity", Decimal("50.5"), BIG)),
        (LINES, "LineAmountValue le 100000", between("LineAmount", 0, 100000)),
        (P, "GrossWeight eq 999999999999999.999", equals("GrossWeight", Decimal("999999999999999.999"))),
        # dates: plain, with Z, a date-time against a Date (truncated to the UTC date)
        (C, "FromDate ge 2025-12-31 and FromDate le 2026-01-01Z",
         between("FromDate", "2025-12-31", "2026-01-01")),
        (C, "FromDate eq 2024-02-29T23:00:00Z", equals("FromDate", "2024-02-29")),
        # date-times: exact instants, fractions, offsets, a date against a date-time (midnight UTC)
        (C, f"{W} ge 2026-06-24T00:00:00Z", between(W, "2026-06-24T00:00:00Z", HIGH)),
        (C, f"{W} ge 2026-06-24T02:00:00+02:00", between(W, "2026-06-24T00:00:00Z", HIGH)),
        (C, f"{W} ge 2026-06-24", between(W, "2026-06-24T00:00:00Z", HIGH)),
        (C, f"{W} ge 2026-06-23T23:59:59.001Z", between(W, "2026-06-24T00:00:00Z", HIGH)),
        (C, f"{W} eq 2026-03-29T01:00:00.000Z", equals(W, "2026-03-29T01:00:00Z")),
        (C, f"{W} eq 2026-03-29T03:00:00+02:00", equals(W, "2026-03-29T01:00:00Z")),
        (C, f"{W} le 2025-12-31T23:59:59.9999999Z and {W} ge 2025-12-31T23:00:00Z",
         between(W, "2025-12-31T23:00:00Z", "2025-12-31T23:59:59Z")),
        (C, "CreationTime ge 2025-01-01T00:00:00Z", between("CreationTime", "2025-01-01T00:00:00Z", HIGH)),
        (SO, "RequiredDeliveryDate eq 2025-10-26T01:00:00Z",
         equals("RequiredDeliveryDate", "2025-10-26T01:00:00Z")),
        (SO, "DocumentDate eq datetimeoffset'2026-01-01T00:00:00Z'",
         equals("DocumentDate", "2026-01-01T00:00:00Z")),
        # enums as strings, typed enum literals, ge on the declared member order
        (SO, "State eq 'Released'", equals("State", "Released")),
        (SO, "State in ('New', 'Closed')", lambda r: r["State"] in ("New", "Closed")),
        (SO, "State eq Erp.DocumentState'Completed'", equals("State", "Completed")),
        (SO, "State ge 'Completed'", lambda r: r["State"] in ("Completed", "Closed")),
        # multilanguage strings: contains in any language
        (P, "contains(Name,'болт')", lambda r: any("болт" in v for v in r["Name"].values())),
        (P, "contains(Description,'Stock')",
         lambda r: any("Stock" in v for v in (r["Description"] or {}).values())),
    ],
)  # fmt: skip
def test_filter_matches_python(
    columns: Columns, rows: dict[str, list[Row]], entity_set: str, text: str, predicate: Callable[[Row], bool]
) -> None:
    expect(columns, rows, entity_set, text, predicate)


def test_guid_literals_bare_quoted_and_in_lists(columns: Columns, rows: dict[str, list[Row]]) -> None:
    ids = [row["Id"] for row in rows[C]]
    assert matching_ids(columns, C, f"Id eq {ids[5]}") == [ids[5]]
    assert matching_ids(columns, C, f"Id eq {ids[5].upper()}") == [ids[5]]
    assert matching_ids(columns, C, f"Id eq '{ids[5]}'") == [ids[5]]
    assert matching_ids(columns, C, f"Id in ({ids[9]}, {ids[3]})") == [ids[3], ids[9]]
    assert matching_ids(columns, C, f"Id ge {ids[995]}") == ids[995:]
    assert matching_ids(columns, C, f"Id eq guid'{ids[7]}'") == [ids[7]]


def test_references_filter_by_odata_id(columns: Columns, rows: dict[str, list[Row]]) -> None:
    customer = rows[SO][0]["Customer"]["@odata.id"]
    guid = customer[len(C) + 1 : -1]
    expected = [r["Id"] for r in rows[SO] if r["Customer"]["@odata.id"] == customer]
    assert expected
    assert matching_ids(columns, SO, f"Customer eq '{customer}'") == expected
    assert matching_ids(columns, SO, f"Customer eq {guid}") == expected
    currency = rows[C][0]["DefaultCurrency"] or rows[C][1]["DefaultCurrency"]
    expect(columns, rows, C, f"DefaultCurrency in ('{currency['@odata.id']}', null)",
           lambda r: r["DefaultCurrency"] in (currency, None))  # fmt: skip
    error = refused(columns, SO, f"Customer eq 'General_Contacts_Parties({guid})'")
    assert error.status == 400 and "Crm_Sales_Customers" in error.message
    assert refused(columns, SO, "Customer ge 'x'").status == 400


@pytest.mark.parametrize(
    ("text", "operator"),
    [
        ("Active eq true or Active eq false", "or"),
        ("(Number eq 'a' or Number eq 'b')", "or"),
        ("Number ne 'C0000001'", "ne"),
        ("GracePeriodDays lt 5", "lt"),
        ("GracePeriodDays gt 5", "gt"),
        ("not Active", "not"),
        ("GracePeriodDays add 1 eq 5", "add"),
        ("tolower(Number) eq 'c0000001'", "tolower"),
    ],
)
def test_unsupported_operators_give_the_domain_error(columns: Columns, text: str, operator: str) -> None:
    error = refused(columns, C, text)
    assert error.status == 500
    assert f"'{operator}'" in error.message and "not supported" in error.message
    assert error.code == error.error_type == m.DOMAIN_ERROR_TYPE


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("Number eq 'abc", "unterminated string"),
        ("Number eq", "expected a property or a literal"),
        ("Number eq 'a' Active", "expected 'and'"),
        ("(Active eq true", "expected ')'"),
        ("Nope eq 1", "'Nope'"),
        ("Number eq 5", "Number"),
        ("Active eq 'yes'", "Active"),
        ("GracePeriodDays eq 1.5", "GracePeriodDays"),
        ("FromDate ge 2025-02-30", "not a valid date"),
        ("AggregateLastUpdateTimeUtc ge 2026-01-01T00:00:00", "time zone"),
        ("AggregateLastUpdateTimeUtc ge 2026-01-01T00:00:00.123456789Z", "fractional"),
        ("CreationTime eq 2025-01-01T00:00:00Z", "only with ge, le"),
        ("CreditLimit ge 5", "CreditLimitValue"),
        ("Number ge null", "null"),
        ("contains(Number, 5)", "contains()"),
        ("contains(Active, 'x')", "string properties"),
        ("frobnicate(Number, 'x')", "unknown function"),
        ("true", "condition"),
        ("Number eq Number", "property with a literal"),
        ("Number in ()", "expected a property or a literal"),
        ("State eq 'Shipped'", "Released"),
        ("State eq Erp.Nope'x'", "type prefix"),
        ("Number eq 'a' & 1", "unexpected character"),
    ],
)
def test_mistakes_are_bad_requests_that_say_what_is_wrong(columns: Columns, text: str, fragment: str) -> None:
    error = refused(columns, C if not text.startswith("State") else SO, text)
    assert error.status == 400, error.message
    assert fragment in error.message


def test_multilanguage_strings_support_only_contains(columns: Columns) -> None:
    for text in ("Name eq 'x'", "startswith(Name,'x')", "Name in ('x')"):
        error = refused(columns, P, text)
        assert error.status == 400 and "only contains" in error.message


def test_vendor_functions_are_reported_as_not_implemented(columns: Columns) -> None:
    assert refused(columns, C, "equalnull(ThruDate, null)").status == 501


def test_columns_are_built_once_and_shared(columns: Columns, dataset: Dataset) -> None:
    first = matching_ids(columns, C, "GracePeriodDays ge 14")
    cached = len(columns._columns)
    assert matching_ids(columns, C, "GracePeriodDays le 0") and len(columns._columns) == cached
    assert first == [
        dataset.id_at(C, i) for i, r in enumerate(dataset.rows(C)) if (r["GracePeriodDays"] or 0) >= 14
    ]
