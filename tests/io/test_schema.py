"""Columns from $metadata: default attributes, explicit select, expand, type mapping, errors."""

from __future__ import annotations

import pytest

from airflow_provider_erpnet.client.errors import ErpNetConfigError
from airflow_provider_erpnet.client.metadata import (
    PropertyInfo,
    ServiceMetadata,
    StructuredType,
)
from airflow_provider_erpnet.io import Column, columns_for

ORDER = "Crm_Sales_SalesOrders"


def names(columns: list[Column]) -> list[str]:
    return [c.name for c in columns]


def test_default_select_follows_the_server_rule(metadata: ServiceMetadata) -> None:
    columns = columns_for(metadata, ORDER, None)
    assert names(columns) == [
        "ObjectVersion",
        "DisplayText",
        "DocumentNo",
        "DocumentDate",
        "State",
        "Void",
        "Sequence",
        "ExchangeRate",
        "Weight",
        "TotalAmount",
        "TotalQuantity",
        "Description",
        "Notes",
        "CreationTime",
        "Customer",
        "DocumentCurrency",
    ]


def test_default_expands_in_place_and_explicit_names_keep_their_position(metadata: ServiceMetadata) -> None:
    columns = columns_for(metadata, ORDER, ["Id", "default", "AggregateLastUpdateTimeUtc", "Notes", "Id"])
    assert names(columns)[0] == "Id"
    assert names(columns)[-1] == "AggregateLastUpdateTimeUtc"
    assert names(columns).count("Notes") == 1
    assert names(columns).count("Id") == 1


def test_select_as_text_equals_select_as_list(metadata: ServiceMetadata) -> None:
    as_text = columns_for(metadata, ORDER, "DocumentNo, Customer,CustomProperty_Priority")
    as_list = columns_for(metadata, ORDER, ["DocumentNo", "Customer", "CustomProperty_Priority"])
    assert as_text == as_list
    assert names(as_text) == ["DocumentNo", "Customer", "CustomProperty_Priority"]


def test_every_type_maps_to_its_kind_with_facets(metadata: ServiceMetadata) -> None:
    select = ["Id", "default", "AggregateLastUpdateTimeUtc", "Tags", "CustomProperty_Priority"]
    by_name = {c.name: c for c in columns_for(metadata, ORDER, select)}
    kinds = {name: column.kind for name, column in by_name.items()}
    assert kinds == {
        "Id": "string",
        "ObjectVersion": "int32",
        "DisplayText": "string",
        "DocumentNo": "string",
        "DocumentDate": "date",
        "State": "enum",
        "Void": "bool",
        "Sequence": "int64",
        "ExchangeRate": "decimal",
        "Weight": "decimal",
        "TotalAmount": "amount",
        "TotalQuantity": "quantity",
        "Description": "multilang",
        "Notes": "string",
        "CreationTime": "timestamp",
        "Customer": "reference",
        "DocumentCurrency": "reference",
        "AggregateLastUpdateTimeUtc": "timestamp",
        "Tags": "json",
        "CustomProperty_Priority": "json",
    }
    assert (by_name["Weight"].precision, by_name["Weight"].scale) == (18, 3)
    assert (by_name["ExchangeRate"].precision, by_name["ExchangeRate"].scale) == (38, 10)  # no facets
    assert (by_name["TotalAmount"].precision, by_name["TotalAmount"].scale) == (18, 2)
    assert (by_name["TotalQuantity"].precision, by_name["TotalQuantity"].scale) == (18, 3)
    assert by_name["Id"].nullable is False and by_name["Notes"].nullable is True
    assert by_name["State"].source_type == "Erp.DocumentState"
    assert by_name["Customer"].source_type == "Erp.Crm_Sales_Customer"
    assert by_name["Tags"].source_type == "Collection(Edm.String)"


def test_expanded_navigation_becomes_json(metadata: ServiceMetadata) -> None:
    columns = columns_for(
        metadata, ORDER, ["DocumentNo", "Customer"], "Lines($select=LineNo;$top=5),Customer"
    )
    assert [(c.name, c.kind) for c in columns] == [
        ("DocumentNo", "string"),
        ("Customer", "json"),  # an expanded reference holds the entity, not its id
        ("Lines", "json"),
    ]
    assert columns[2].source_type == "Collection(Erp.Crm_Sales_SalesOrderLine)"


@pytest.mark.parametrize(
    ("select", "expand", "wrong", "suggestion"),
    [
        (["Documentno"], None, "Documentno", "DocumentNo"),
        ("default,CustomerX", None, "CustomerX", "Customer"),
        (None, "Line", "Line", "Lines"),
    ],
)
def test_unknown_names_are_reported_with_the_closest_ones(
    metadata: ServiceMetadata, select: object, expand: str | None, wrong: str, suggestion: str
) -> None:
    with pytest.raises(ErpNetConfigError) as raised:
        columns_for(metadata, ORDER, select, expand)  # type: ignore[arg-type]
    message = str(raised.value)
    assert repr(wrong) in message
    assert suggestion in message
    assert ORDER in message


def test_unknown_entity_set_names_close_matches(metadata: ServiceMetadata) -> None:
    with pytest.raises(ErpNetConfigError, match="Crm_Sales_SalesOrders"):
        columns_for(metadata, "Crm_Sales_SalesOrder", None)


def test_types_outside_the_service_namespace_and_without_facets() -> None:
    """Built from the dataclasses directly: a foreign ``Amount`` is json, a bare Amount type defaults."""
    entity = StructuredType(
        name="Erp.Thing",
        key=("Id",),
        properties=(
            PropertyInfo("Price", "Erp.Amount", False, True, None, None, None),
            PropertyInfo("Other", "Vendor.Amount", False, True, None, None, None),
            PropertyInfo("Rate", "Edm.Double", False, True, None, None, None),
            PropertyInfo("At", "Edm.TimeOfDay", False, True, None, None, None),
            PropertyInfo("Big", "Edm.Decimal", False, True, 60, 20, None),
        ),
        navigations=(),
        open_type=False,
    )
    metadata = ServiceMetadata(
        namespace="Erp",
        entity_types={"Erp.Thing": entity},
        complex_types={},
        enum_types={},
        entity_sets={"Things": "Erp.Thing"},
    )
    columns = {c.name: c for c in columns_for(metadata, "Things", None)}
    assert (columns["Price"].kind, columns["Price"].precision, columns["Price"].scale) == ("amount", 38, 10)
    assert columns["Other"].kind == "json"
    assert columns["Rate"].kind == "json"
    assert columns["At"].kind == "string"
    assert (columns["Big"].precision, columns["Big"].scale) == (60, 20)


def test_column_round_trips_through_its_dict_and_rejects_unknown_kinds() -> None:
    column = Column("Weight", "decimal", False, 18, 3, "Edm.Decimal")
    assert Column.from_dict(column.to_dict()) == column
    with pytest.raises(ErpNetConfigError, match="unknown kind 'float'"):
        Column("X", "float")


def test_every_member_the_server_sent_is_kept(metadata: ServiceMetadata) -> None:
    """Whatever was selected, a key the server sent that $metadata knows becomes a column."""
    sent = {
        "DocumentNo",
        "Id",
        "AggregateLastUpdateTimeUtc",
        "CustomProperty_Priority",
        "Lines",
        "@odata.id",
        "X",
    }
    explicit = columns_for(metadata, ORDER, ["DocumentNo", "Id"], sent=sent)
    assert names(explicit) == [
        "DocumentNo",
        "Id",
        "AggregateLastUpdateTimeUtc",
        "CustomProperty_Priority",
        "Lines",
    ]
    assert explicit[-1].kind == "json"
    default = columns_for(metadata, ORDER, ["default"], sent={"DocumentNo", "AggregateLastUpdateTimeUtc"})
    assert names(default) == ["DocumentNo", "AggregateLastUpdateTimeUtc"]
    expanded = columns_for(metadata, ORDER, ["DocumentNo"], "Lines", sent={"DocumentNo", "Lines", "Id"})
    assert names(expanded) == ["DocumentNo", "Id", "Lines"]


def test_star_is_every_property_and_reference(metadata: ServiceMetadata) -> None:
    """What a standard OData server sends without $select (the fallback from $select=default)."""
    (entity,) = [t for name, t in metadata.entity_types.items() if name.endswith("Crm_Sales_SalesOrder")]
    every = [p.name for p in entity.properties] + [n.name for n in entity.navigations if not n.collection]
    assert names(columns_for(metadata, ORDER, ["*"])) == every
    assert "Lines" not in every and {"Id", "AggregateLastUpdateTimeUtc", "Tags"} <= set(every)
    assert names(columns_for(metadata, ORDER, ["*"], sent={"Id", "DocumentNo"})) == ["Id", "DocumentNo"]
