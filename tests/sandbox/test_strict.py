"""The sandbox's strict mode: a standard OData v4 server instead of ERP.net's dialect."""

from __future__ import annotations

import pytest
import requests

from airflow_provider_erpnet.sandbox import Sandbox
from airflow_provider_erpnet.sandbox import model as m
from airflow_provider_erpnet.sandbox.__main__ import build_parser
from airflow_provider_erpnet.sandbox.data import Dataset
from airflow_provider_erpnet.sandbox.domain import DomainService
from tests.sandbox.conftest import TokenFor
from tests.sandbox.domain_support import call, decode, get_json, query

C = m.CUSTOMERS


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return Dataset(300)


@pytest.fixture
def strict(dataset: Dataset) -> DomainService:
    return DomainService(dataset, strict=True)


@pytest.fixture
def erpnet(dataset: Dataset) -> DomainService:
    return DomainService(dataset)


def _error(service: DomainService, raw_query: str) -> tuple[int, str]:
    response = call(service, C, raw_query)
    return response.status, decode(response)["error"]["message"]


def test_plus_is_a_space_for_erpnet_and_a_plus_sign_for_a_standard_server(
    erpnet: DomainService, strict: DomainService, dataset: Dataset
) -> None:
    form_encoded = "%24filter=Active+eq+true&%24select=Id"
    active = [row["Id"] for row in dataset.rows(C) if row["Active"]]
    assert [r["Id"] for r in get_json(erpnet, C, form_encoded)["value"]] == active
    status, message = _error(strict, form_encoded)
    assert status == 400
    assert "unexpected character '+'" in message
    assert [
        r["Id"] for r in get_json(strict, C, query(filter="Active eq true", select="Id"))["value"]
    ] == active


def test_default_is_no_property_of_a_standard_server(strict: DomainService, erpnet: DomainService) -> None:
    assert _error(strict, query(select="default,Id")) == (
        400,
        "Could not find a property named 'default' on type 'Erp.Crm_Sales_Customer'.",
    )
    assert get_json(erpnet, C, query(select="default,Id", top="1"))["value"]


def test_without_select_a_standard_server_sends_every_structural_property(
    strict: DomainService, erpnet: DomainService
) -> None:
    entity = m.entity_set(C)
    (standard,) = get_json(strict, C, query(top="1"))["value"]
    (dialect,) = get_json(erpnet, C, query(top="1"))["value"]
    assert [name for name in standard if not name.startswith("@")] == list(entity.all_structural)
    assert [name for name in dialect if not name.startswith("@")] == list(entity.default_select)
    assert {"Id", "Turnover", "AggregateLastUpdateTimeUtc"} <= standard.keys()


def test_zoned_dates_are_erpnet_only(strict: DomainService, erpnet: DomainService, dataset: Dataset) -> None:
    expected = [row["Id"] for row in dataset.rows(C) if row["FromDate"] >= "2020-01-01"]
    for service, literal in ((erpnet, "2020-01-01Z"), (erpnet, "2020-01-01"), (strict, "2020-01-01")):
        body = get_json(service, C, query(filter=f"FromDate ge {literal}", select="Id"))
        assert [r["Id"] for r in body["value"]] == expected
    status, message = _error(strict, query(filter="FromDate ge 2020-01-01Z"))
    assert status == 400
    assert "'2020-01-01Z' is not a date literal" in message
    # Date-times keep their zone in the standard too.
    body = get_json(strict, C, query(filter="CreationTime ge 2026-01-01T00:00:00Z", select="Id"))
    assert body["value"]


def test_strict_is_an_option_a_runtime_switch_and_a_cli_flag(token_for: TokenFor) -> None:
    assert build_parser().parse_args(["--strict"]).strict is True
    assert build_parser().parse_args([]).strict is False
    with Sandbox(scale=10, strict=True) as sandbox:
        assert sandbox.settings()["strict"] is True
        url = f"{sandbox.api_url}{C}?%24select=default"
        headers = {"Authorization": f"Bearer {token_for(sandbox)}"}
        assert requests.get(url, headers=headers, timeout=10).status_code == 400
        sandbox.set_faults(strict=False)
        assert requests.get(url, headers=headers, timeout=10).status_code == 200
        response = requests.post(f"{sandbox.base_url}/admin/faults", json={"strict": True}, timeout=10)
        assert response.json()["strict"] is True
        assert requests.get(url, headers=headers, timeout=10).status_code == 400
