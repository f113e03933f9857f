"""ERP.net's forms ($select=default, 2020-01-01Z) and the standard forms used where a server refuses them."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping

import pytest

from airflow_provider_erpnet.client import ErpNetApiError, ErpNetClient, ErpNetSettings, literal
from airflow_provider_erpnet.client.dialect import Dialect, standard_dates
from airflow_provider_erpnet.sandbox import Sandbox
from airflow_provider_erpnet.sandbox.model import entity_set

CUSTOMERS = "Crm_Sales_Customers"
both_modes = pytest.mark.parametrize("strict", [False, True], ids=["erpnet", "strict"])


def test_standard_dates_leave_string_literals_and_date_times_alone() -> None:
    text = "FromDate ge 2020-01-01Z and Notes eq 'due 2020-01-02Z' and CreationTime le 2020-01-03T00:00:00Z"
    assert standard_dates(text) == (
        "FromDate ge 2020-01-01 and Notes eq 'due 2020-01-02Z' and CreationTime le 2020-01-03T00:00:00Z"
    )
    assert standard_dates("D in (2020-01-01Z,2021-12-31Z)") == "D in (2020-01-01,2021-12-31)"


def _refusal(message: str | None, status: int = 400) -> ErpNetApiError:
    return ErpNetApiError(f"{status}: {message}", status=status, server_message=message)


def test_a_fallback_that_does_not_help_is_not_remembered() -> None:
    dialect = Dialect()
    sent: list[Mapping[str, str] | None] = []

    def refuse(options: Mapping[str, str] | None) -> None:
        sent.append(options)
        raise _refusal("Property 'default' is not allowed here" if len(sent) == 1 else "Unknown property Foo")

    with pytest.raises(ErpNetApiError, match="Unknown property Foo"):
        dialect.send(refuse, {"$select": "default,Id,Foo", "$filter": "FromDate ge 2020-01-01Z"})
    assert sent == [
        {"$select": "default,Id,Foo", "$filter": "FromDate ge 2020-01-01Z"},
        {"$filter": "FromDate ge 2020-01-01Z"},
        {"$filter": "FromDate ge 2020-01-01"},
    ]
    assert (dialect.default_select, dialect.zoned_dates) == (True, True)


@pytest.mark.parametrize(
    "error",
    [_refusal("Property 'default' does not exist", status=500), _refusal("The filter is invalid: Foo")],
    ids=["not-a-400", "blames-something-else"],
)
def test_other_errors_are_raised_as_they_are(error: ErpNetApiError) -> None:
    dialect = Dialect()
    calls = []

    def refuse(options: Mapping[str, str] | None) -> None:
        calls.append(options)
        raise error

    with pytest.raises(ErpNetApiError) as raised:
        dialect.send(refuse, {"$select": "default,Id"})
    assert raised.value is error and len(calls) == 1
    assert dialect.send(lambda options: options, None) is None  # next links pass untouched


@both_modes
def test_default_select_falls_back_once_to_every_structural_property(
    erpnet_sandbox: Sandbox, sandbox_settings: ErpNetSettings, strict: bool, caplog: pytest.LogCaptureFixture
) -> None:
    erpnet_sandbox.set_faults(strict=strict)
    caplog.set_level(logging.INFO, logger="airflow_provider_erpnet.client.dialect")
    with ErpNetClient(sandbox_settings) as client:
        first = list(client.iter_records(CUSTOMERS, select="default,Id", page_size=300))
        again = list(client.iter_records(CUSTOMERS, select="default,Id", page_size=300))
        one = client.get(CUSTOMERS, first[0]["Id"], select="default,Id")
    rows = erpnet_sandbox.dataset.rows(CUSTOMERS)
    entity = entity_set(CUSTOMERS)
    expected = entity.all_structural if strict else (*entity.default_select, "Id")
    assert [{k: v for k, v in r.items() if not k.startswith("@")} for r in first] == [
        {name: row[name] for name in expected} for row in rows
    ]
    assert again == first
    assert one.keys() == first[0].keys()
    statuses = erpnet_sandbox.stats()["api_by_status"]
    assert statuses.get("400", 0) == (1 if strict else 0)  # refused once, then remembered
    fallbacks = [r for r in caplog.records if "$select=default" in r.getMessage()]
    assert len(fallbacks) == (1 if strict else 0)
    if strict:
        assert "every structural property" in fallbacks[0].getMessage()
        assert "Could not find a property named 'default'" in fallbacks[0].getMessage()


@both_modes
def test_dates_fall_back_to_the_standard_form_and_the_choice_is_kept(
    erpnet_sandbox: Sandbox, sandbox_settings: ErpNetSettings, strict: bool, caplog: pytest.LogCaptureFixture
) -> None:
    erpnet_sandbox.set_faults(strict=strict)
    caplog.set_level(logging.INFO, logger="airflow_provider_erpnet.client.dialect")
    since = literal(dt.date(2024, 1, 1))
    assert since == "2024-01-01Z"
    text = f"FromDate ge {since} and Active eq true"
    expected = [
        r["Id"]
        for r in erpnet_sandbox.dataset.rows(CUSTOMERS)
        if r["FromDate"] >= "2024-01-01" and r["Active"]
    ]
    assert 0 < len(expected) < 1000
    with ErpNetClient(sandbox_settings) as client:
        total = client.count(CUSTOMERS, filter=text)
        ids = [r["Id"] for r in client.iter_records(CUSTOMERS, filter=text, select="Id")]
        assert client.dialect.zoned_dates is not strict
    assert ids == expected and total == len(expected)
    assert erpnet_sandbox.stats()["api_by_status"].get("400", 0) == (1 if strict else 0)
    assert len([r for r in caplog.records if "date literals" in r.getMessage()]) == (1 if strict else 0)
