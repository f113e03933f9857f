"""Custom properties added at runtime: `Dataset.add_custom_property`, `$metadata`, `$select`,
`POST /admin/custom-property`; the client reads them as any ERP.net instance's."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from airflow_provider_erpnet.client.metadata import parse_metadata
from airflow_provider_erpnet.io import columns_for
from airflow_provider_erpnet.sandbox import Sandbox
from airflow_provider_erpnet.sandbox import model as m
from airflow_provider_erpnet.sandbox.data import CustomPropertyError, Dataset
from airflow_provider_erpnet.sandbox.domain import DomainService
from airflow_provider_erpnet.sandbox.edmx import metadata_xml
from tests.sandbox.domain_support import call, get_json, query

C, SO = m.CUSTOMERS, m.SALES_ORDERS
COLOR = "CustomProperty_Color"


def test_a_custom_property_appears_in_metadata_and_in_rows_selected_by_name() -> None:
    dataset = Dataset(100)
    service = DomainService(dataset)
    before_metadata = call(service, "$metadata").body
    default_page = get_json(service, C, query(top="5"))["value"]
    assert call(service, C, query(select=COLOR)).status == 400

    assert dataset.add_custom_property(C, "Color") == COLOR

    metadata = parse_metadata(call(service, "$metadata").body)
    assert metadata != parse_metadata(before_metadata)
    prop = next(p for p in metadata.entity_type(C).properties if p.name == COLOR)
    assert (prop.type, prop.nullable, prop.collection) == ("Erp.CustomPropertyValue", True, False)
    assert [p.name for p in metadata.complex_types["Erp.CustomPropertyValue"].properties] == [
        "Value",
        "ValueId",
        "Description",
    ]
    assert COLOR not in {p.name for p in metadata.entity_type(SO).properties}
    assert metadata_xml() == before_metadata  # the static model is untouched

    assert get_json(service, C, query(top="5"))["value"] == default_page  # not a default attribute
    rows = get_json(service, C, query(select=f"Id,{COLOR}", top="1000"))["value"]
    values: list[Any] = [row[COLOR] for row in rows]
    assert values == [row[COLOR] for row in dataset.rows(C)]
    assert any(value is None for value in values)
    assert {value["Value"] for value in values if value} == {"Red", "Green", "Blue", "Ярко жълто"}
    assert all(set(value) == {"Value", "ValueId", "Description"} for value in values if value)
    assert COLOR in get_json(service, C, query(select="*", top="1"))["value"][0]
    columns = columns_for(metadata, C, ["Id", "default", COLOR])
    assert columns[-1].name == COLOR and columns[-1].kind == "json"
    assert COLOR not in [column.name for column in columns_for(metadata, C, None)]


@pytest.mark.parametrize(
    ("entity_set", "code", "field", "needle"),
    [
        ("Nope", "Color", "entity_set", "unknown entity set"),
        (C, "Two words", "code", "letters, digits"),
        (C, 5, "code", "letters, digits"),
        (C, "Color", "code", "already has CustomProperty_Color"),
    ],
)
def test_bad_custom_properties_are_refused(entity_set: str, code: Any, field: str, needle: str) -> None:
    dataset = Dataset(10)
    dataset.add_custom_property(C, "Color")
    with pytest.raises(CustomPropertyError, match=needle) as raised:
        dataset.add_custom_property(entity_set, code)
    assert raised.value.field == field
    assert [p.name for p in dataset.entity(C).properties].count(COLOR) == 1


def test_admin_custom_property_over_http(erpnet_sandbox: Sandbox, http: requests.Session) -> None:
    url = f"{erpnet_sandbox.base_url}/admin/custom-property"
    answer = http.post(url, json={"entity_set": SO, "code": "Priority"}, timeout=10)
    assert answer.status_code == 200 and answer.json() == {"property": "CustomProperty_Priority"}
    assert erpnet_sandbox.add_custom_property(SO, "Region") == "CustomProperty_Region"
    names = [p.name for p in erpnet_sandbox.dataset.entity(SO).properties]
    assert names[-2:] == ["CustomProperty_Priority", "CustomProperty_Region"]

    refused = http.post(url, json={"entity_set": SO, "code": "Priority"}, timeout=10)
    assert refused.status_code == 400
    assert refused.json()["field"] == "code" and "already has" in refused.json()["error_description"]
    assert http.post(url, data=b"[]", timeout=10).json()["field"] == "body"
    assert http.post(url, json={"code": "X"}, timeout=10).json()["field"] == "entity_set"
