"""DomainService: documents, $select, $orderby, $top/$skip, $count, $expand, single entities, errors."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from decimal import Decimal

import pytest

from airflow_provider_erpnet.sandbox import model as m
from airflow_provider_erpnet.sandbox.data import Dataset
from airflow_provider_erpnet.sandbox.domain import JSON_CONTENT_TYPE, DomainService
from tests.sandbox.domain_support import BASE, call, decode, get_json, query, strip_annotations

C, SO, P = m.CUSTOMERS, m.SALES_ORDERS, m.PRODUCTS
EDM = "{http://docs.oasis-open.org/odata/ns/edm}"
DEFAULT_CUSTOMER = [
    "ObjectVersion", "DisplayText", "Active", "Number", "CreditLimit", "FromDate", "ThruDate",
    "GracePeriodDays", "DefaultPaymentTermDays", "CreationTime", "UpdateTime", "Party", "EnterpriseCompany",
    "DefaultCurrency", "SalesPerson",
]  # fmt: skip


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return Dataset(500)


@pytest.fixture
def service(dataset: Dataset) -> DomainService:
    return DomainService(dataset)


def test_service_document_lists_every_entity_set(service: DomainService, dataset: Dataset) -> None:
    response = call(service, "")
    assert response.status == 200 and response.headers["Content-Type"] == JSON_CONTENT_TYPE
    document = decode(response)
    assert document["@odata.context"] == f"{BASE}$metadata"
    assert [s["name"] for s in document["value"]] == list(dataset.entity_sets)
    assert {s["kind"] for s in document["value"]} == {"EntitySet"}


def test_metadata_describes_the_model(service: DomainService) -> None:
    response = call(service, "$metadata")
    assert response.status == 200 and response.headers["Content-Type"] == "application/xml"
    schema = ET.fromstring(response.body).find(f".//{EDM}Schema")
    assert schema is not None and schema.get("Namespace") == "Erp"

    def props(element: ET.Element) -> dict[str, dict[str, str]]:
        return {p.get("Name", ""): dict(p.attrib) for p in element.findall(f"{EDM}Property")}

    complex_types = {c.get("Name"): c for c in schema.findall(f"{EDM}ComplexType")}
    assert props(complex_types["Amount"])["Value"] == {
        "Name": "Value", "Type": "Edm.Decimal", "Nullable": "false", "Precision": "18", "Scale": "2"
    }  # fmt: skip
    assert props(complex_types["Quantity"])["Value"]["Scale"] == "3"
    assert complex_types["MultilanguageString"].get("OpenType") == "true"
    state = schema.find(f"{EDM}EnumType[@Name='DocumentState']")
    assert state is not None
    assert [e.get("Name") for e in state] == [
        "New", "Adjustment", "Planned", "FirmPlanned", "Released", "Completed", "Closed"
    ]  # fmt: skip

    customer = schema.find(f"{EDM}EntityType[@Name='Crm_Sales_Customer']")
    assert customer is not None
    assert customer.find(f"{EDM}Key/{EDM}PropertyRef").get("Name") == "Id"  # type: ignore[union-attr]
    customer_props = props(customer)
    assert customer_props["Id"]["Type"] == "Edm.Guid"
    assert customer_props["Number"]["MaxLength"] == "16"
    assert customer_props["CreditLimit"]["Type"] == "Erp.Amount"
    assert customer_props["ThruDate"]["Type"] == "Edm.Date" and "Nullable" not in customer_props["ThruDate"]
    assert customer_props["AggregateLastUpdateTimeUtc"]["Type"] == "Edm.DateTimeOffset"
    assert {"Type": "Edm.Decimal", "Precision": "18", "Scale": "2"}.items() <= customer_props[
        "Turnover"
    ].items()
    navigations = {n.get("Name"): n.get("Type") for n in customer.findall(f"{EDM}NavigationProperty")}
    assert navigations["Party"] == "Erp.General_Contacts_Party"
    order = schema.find(f"{EDM}EntityType[@Name='Crm_Sales_SalesOrder']")
    assert order is not None
    lines = order.find(f"{EDM}NavigationProperty[@Name='Lines']")
    assert lines is not None and lines.get("Type") == "Collection(Erp.Crm_Sales_SalesOrderLine)"
    assert props(order)["State"]["Type"] == "Erp.DocumentState"
    sets = {s.get("Name"): s.get("EntityType") for s in schema.iter(f"{EDM}EntitySet")}
    assert sets[C] == "Erp.Crm_Sales_Customer" and sets[m.SALES_ORDER_LINES] == "Erp.Crm_Sales_SalesOrderLine"


def test_collection_envelope_headers_and_exact_decimals(service: DomainService, dataset: Dataset) -> None:
    response = call(service, C, query(top="50", select="Number,CreditLimit"))
    assert response.headers == {"Content-Type": JSON_CONTENT_TYPE, "OData-Version": "4.0"}
    page = decode(response)
    assert list(page) == ["@odata.context", "value", "@odata.nextLink"]
    assert page["@odata.context"] == f"{BASE}$metadata#{C}"
    first = page["value"][0]
    assert first["@odata.id"] == f"{C}({dataset.id_at(C, 0)})"
    assert b'"Value":9999999999999999.99,' in response.body  # row 17: never through a float
    assert [r["CreditLimit"] for r in page["value"]] == [r["CreditLimit"] for r in dataset.rows(C)[:50]]


def test_default_select_omits_id_watermark_custom_properties_and_children(service: DomainService) -> None:
    for raw in ("", query(select="default")):
        record = get_json(service, C, raw + "&%24top=1" if raw else "%24top=1")["value"][0]
        assert list(record) == ["@odata.id", *DEFAULT_CUSTOMER]
    order = get_json(service, SO, query(top="1"))["value"][0]
    assert "Lines" not in order and "Id" not in order and "AggregateLastUpdateTimeUtc" not in order


def test_explicit_select_adds_to_default_in_model_order(service: DomainService, dataset: Dataset) -> None:
    page = get_json(service, C, query(top="3", select="default,Turnover,AggregateLastUpdateTimeUtc,Id"))
    assert list(page["value"][0]) == ["@odata.id", "Id", *DEFAULT_CUSTOMER[:11], "AggregateLastUpdateTimeUtc",
                                      "Turnover", *DEFAULT_CUSTOMER[11:]]  # fmt: skip
    assert [strip_annotations(r) for r in page["value"]] == [
        {k: v for k, v in row.items() if k in page["value"][0]} for row in dataset.rows(C)[:3]
    ]
    narrow = get_json(service, C, query(top="2", select="Number, Id"))["value"]
    assert [list(r) for r in narrow] == [["@odata.id", "Id", "Number"]] * 2
    everything = get_json(service, SO, query(top="2", select="*"))["value"]
    assert [strip_annotations(r) for r in everything] == [
        {k: v for k, v in row.items() if k != "Lines"} for row in dataset.rows(SO)[:2]
    ]


@pytest.mark.parametrize("envelope", [True, False])
def test_unknown_property_in_select_is_a_400_naming_it(dataset: Dataset, envelope: bool) -> None:
    service = DomainService(dataset, error_envelope=envelope)
    response = call(service, C, query(select="Number,Nonsense"))
    assert response.status == 400 and response.headers["Content-Type"].startswith("application/json")
    body = decode(response)
    error = body["error"] if envelope else body
    assert "'Nonsense'" in error["message"] and "Erp.Crm_Sales_Customer" in error["message"]
    assert set(error) == ({"code", "message", "type"} if envelope else {"code", "message", "type", "info"})
    assert call(service, C, query(select="Number,")).status == 400


def test_orderby_single_and_multiple_keys_with_ties_in_id_order(
    service: DomainService, dataset: Dataset
) -> None:
    rows = list(dataset.rows(C))
    page = get_json(service, C, query(orderby="DefaultPaymentTermDays desc,Number", select="Id"))
    expected = sorted(rows, key=lambda r: r["Number"])
    expected.sort(key=lambda r: r["DefaultPaymentTermDays"], reverse=True)
    assert [r["Id"] for r in page["value"]] == [r["Id"] for r in expected]

    page = get_json(service, C, query(orderby="ThruDate asc", select="Id,ThruDate"))
    values = [r["ThruDate"] for r in page["value"]]
    nulls = values.count(None)
    assert 0 < nulls < len(values) and values[:nulls] == [None] * nulls  # nulls sort first
    assert values[nulls:] == sorted(values[nulls:])
    tied = [r["Id"] for r in page["value"][:nulls]]
    assert tied == sorted(tied)

    by_amount = get_json(service, C, query(orderby="CreditLimitValue desc", top="3", select="CreditLimit"))
    assert by_amount["value"][0]["CreditLimit"]["Value"] == Decimal("9999999999999999.99")


@pytest.mark.parametrize("orderby", ["Name", "CreationTime", "Nope", "Number sideways", "CreditLimit"])
def test_orderby_refuses_what_cannot_be_sorted(service: DomainService, orderby: str) -> None:
    entity_set = P if orderby == "Name" else C
    response = call(service, entity_set, query(orderby=orderby))
    assert response.status == 400
    assert orderby.split()[0] in decode(response)["error"]["message"]


def test_top_skip_and_the_page_size_limit(service: DomainService, dataset: Dataset) -> None:
    ids = [dataset.id_at(C, i) for i in range(dataset.count(C))]
    page = get_json(service, C, query(top="7", skip="10", select="Id"))
    assert [r["Id"] for r in page["value"]] == ids[10:17]
    assert get_json(service, C, query(skip="495", select="Id"))["value"] == [
        {"@odata.id": f"{C}({i})", "Id": i} for i in ids[495:]
    ]
    assert len(get_json(service, C, query(top="1000"))["value"]) == 500
    assert get_json(service, C, query(top="0"))["value"] == []
    too_many = call(service, C, query(top="1001"))
    assert too_many.status == 400 and "1000" in decode(too_many)["error"]["message"]
    for bad in ("-1", "ten", ""):
        assert call(service, C, query(top=bad)).status == 400
    assert call(service, C, query(skip="x")).status == 400


def test_count_inline_and_as_a_path(service: DomainService, dataset: Dataset) -> None:
    active = sum(1 for r in dataset.rows(C) if r["Active"])
    page = get_json(service, C, query(filter="Active eq true", count="true", top="5"))
    assert list(page)[:2] == ["@odata.context", "@odata.count"] and page["@odata.count"] == active
    assert "@odata.count" not in get_json(service, C, query(count="false", top="1"))
    response = call(service, f"{C}/$count", query(filter="Active eq true"))
    assert response.status == 200 and response.body == str(active).encode()
    assert response.headers["Content-Type"].startswith("text/plain")
    assert call(service, f"{C}/$count").body == b"500"
    assert call(service, C, query(count="yes")).status == 400


def test_expand_lines_gives_full_line_records(service: DomainService, dataset: Dataset) -> None:
    page = get_json(service, SO, query(top="20", expand="Lines", select="DocumentNo"))
    for record, row in zip(page["value"], dataset.rows(SO)[:20], strict=True):
        assert list(record) == ["@odata.id", "DocumentNo", "Lines"]
        assert [line["@odata.id"] for line in record["Lines"]] == [
            f"{m.SALES_ORDER_LINES}({line['Id']})" for line in row["Lines"]
        ]
        assert strip_annotations(record)["Lines"] == row["Lines"]
    full = get_json(service, SO, query(top="3", select="*", expand="Lines"))
    assert [strip_annotations(r) for r in full["value"]] == list(dataset.rows(SO)[:3])


@pytest.mark.parametrize(
    ("expand", "status"), [("Nope", 400), ("Number", 400), ("Customer", 501), ("Lines($top=1)", 501)]
)
def test_expand_refusals(service: DomainService, expand: str, status: int) -> None:
    entity_set = C if expand == "Number" else SO
    assert call(service, entity_set, query(expand=expand)).status == status


def test_single_entity_by_key(service: DomainService, dataset: Dataset) -> None:
    guid = dataset.id_at(SO, 42)
    response = call(service, f"{SO}({guid})", query(select="*", expand="Lines"))
    record = decode(response)
    assert response.status == 200 and record["@odata.context"] == f"{BASE}$metadata#{SO}/$entity"
    assert record["@odata.id"] == f"{SO}({guid})"
    assert strip_annotations(record) == dataset.rows(SO)[42]
    assert list(get_json(service, f"{SO}({guid.upper()})", query(select="Notes"))) == [
        "@odata.context", "@odata.id", "Notes"
    ]  # fmt: skip
    missing = call(service, f"{SO}(ffffffff-0000-4000-8000-000000000000)")
    assert (
        missing.status == 404
        and "ffffffff-0000-4000-8000-000000000000" in decode(missing)["error"]["message"]
    )
    assert call(service, f"{SO}(42)").status == 400


def test_scope_method_and_path_errors(dataset: Dataset) -> None:
    service = DomainService(dataset)
    forbidden = call(service, C, scopes=frozenset({"update", "openid"}))
    assert forbidden.status == 403 and "read" in decode(forbidden)["error"]["message"]
    assert call(service, "$metadata", scopes=frozenset()).status == 403
    post = service.handle("POST", C, "", base_url=BASE, scopes=frozenset({"read", "update"}))
    assert post.status == 405 and post.headers["Allow"] == "GET"
    unknown = call(service, "Crm_Sales_Customerz")
    assert unknown.status == 404 and "Crm_Sales_Customerz" in decode(unknown)["error"]["message"]
    assert call(service, f"{C}/Nope").status == 404
    assert call(service, C, "%24unknown=1").status == 400
    assert call(service, C, "%24top=1&%24top=2").status == 400
    assert call(service, C, "%24search=x").status == 501
    assert call(service, C, "custom=1&%24format=json").status == 200


def test_both_error_shapes_for_the_domain_error(dataset: Dataset) -> None:
    service = DomainService(dataset)
    wrapped = call(service, C, query(filter="Active eq true or Active eq false"))
    assert wrapped.status == 500
    assert decode(wrapped) == {
        "error": {
            "code": m.DOMAIN_ERROR_TYPE,
            "message": "The operator 'or' is not supported in $filter by the ERP.net Domain API.",
            "type": m.DOMAIN_ERROR_TYPE,
        }
    }
    service.error_envelope = False  # flipped at runtime, like the admin endpoint does
    top_level = decode(call(service, C, query(filter="Number ne 'x'")))
    assert set(top_level) == {"message", "code", "type", "info"}
    assert "'ne'" in top_level["message"] and top_level["type"] == m.DOMAIN_ERROR_TYPE
    assert isinstance(top_level["info"], str)


def test_filter_errors_reach_the_client_with_their_status(service: DomainService) -> None:
    response = call(service, C, query(filter="Nonsense eq 1"))
    assert response.status == 400 and "'Nonsense'" in json.loads(response.body)["error"]["message"]
