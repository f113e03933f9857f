"""EDMX parsing: a handwritten document covering the CSDL features we rely on, and the sandbox's."""

from __future__ import annotations

import pytest

from airflow_provider_erpnet.client import (
    ErpNetClient,
    ErpNetConfigError,
    ErpNetSettings,
    ErpNetTransportError,
    NavigationInfo,
    PropertyInfo,
    parse_metadata,
)

EDMX = b"""<?xml version="1.0" encoding="utf-8"?>
<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx">
  <edmx:DataServices>
    <Schema Namespace="Erp" Alias="self" xmlns="http://docs.oasis-open.org/odata/ns/edm">
      <EnumType Name="DocumentState">
        <Member Name="New" Value="0"/>
        <Member Name="Released" Value="30"/>
        <Member Name="Closed" Value="50"/>
      </EnumType>
      <ComplexType Name="Amount">
        <Property Name="Value" Type="Edm.Decimal" Precision="18" Scale="2"/>
        <Property Name="Currency" Type="Edm.String"/>
      </ComplexType>
      <ComplexType Name="MultilanguageString" OpenType="true"/>
      <EntityType Name="EntityBase" Abstract="true">
        <Key><PropertyRef Name="Id"/></Key>
        <Property Name="Id" Type="Edm.Guid" Nullable="false"/>
      </EntityType>
      <EntityType Name="Crm_Sales_Customer" BaseType="self.EntityBase">
        <Property Name="Number" Type="Edm.String" MaxLength="16" Nullable="false"/>
        <Property Name="Notes" Type="Edm.String" MaxLength="max"/>
        <Property Name="CreditLimit" Type="self.Amount"/>
        <Property Name="Tags" Type="Collection(Edm.String)"/>
        <Property Name="AggregateLastUpdateTimeUtc" Type="Edm.DateTimeOffset" Precision="3"/>
        <NavigationProperty Name="Party" Type="Erp.General_Contacts_Party" Nullable="false"/>
      </EntityType>
      <EntityType Name="Crm_Sales_SalesOrder" OpenType="true">
        <Key><PropertyRef Name="Id"/></Key>
        <Property Name="Id" Type="Edm.Guid" Nullable="false"/>
        <Property Name="State" Type="Erp.DocumentState" Nullable="false"/>
        <NavigationProperty Name="Customer" Type="self.Crm_Sales_Customer"/>
        <NavigationProperty Name="Lines" Type="Collection(self.Crm_Sales_SalesOrderLine)"/>
      </EntityType>
      <EntityType Name="Crm_Sales_SalesOrderLine">
        <Key><PropertyRef Name="Id"/></Key>
        <Property Name="Id" Type="Edm.Guid" Nullable="false"/>
      </EntityType>
      <EntityType Name="General_Contacts_Party">
        <Key><PropertyRef Name="Id"/></Key>
        <Property Name="Id" Type="Edm.Guid" Nullable="false"/>
      </EntityType>
      <EntityContainer Name="Container">
        <EntitySet Name="Crm_Sales_Customers" EntityType="self.Crm_Sales_Customer"/>
        <EntitySet Name="Crm_Sales_SalesOrders" EntityType="Erp.Crm_Sales_SalesOrder"/>
        <EntitySet Name="Crm_Sales_SalesOrderLines" EntityType="Erp.Crm_Sales_SalesOrderLine"/>
        <EntitySet Name="General_Contacts_Parties" EntityType="Erp.General_Contacts_Party"/>
      </EntityContainer>
    </Schema>
  </edmx:DataServices>
</edmx:Edmx>
"""


def test_entity_type_with_base_type_aliases_facets_and_collections() -> None:
    metadata = parse_metadata(EDMX)
    assert metadata.namespace == "Erp"
    customer = metadata.entity_type("Crm_Sales_Customers")
    assert customer.name == "Erp.Crm_Sales_Customer"
    assert customer.key == ("Id",)
    assert not customer.open_type
    by_name = {p.name: p for p in customer.properties}
    assert customer.properties[0].name == "Id"  # base type members come first
    assert by_name["Id"] == PropertyInfo("Id", "Edm.Guid", False, False, None, None, None)
    assert by_name["Number"] == PropertyInfo("Number", "Edm.String", False, False, None, None, 16)
    assert by_name["Notes"].max_length is None and by_name["Notes"].nullable
    assert by_name["CreditLimit"].type == "Erp.Amount"
    assert by_name["Tags"].type == "Edm.String" and by_name["Tags"].collection
    assert by_name["AggregateLastUpdateTimeUtc"].precision == 3
    assert customer.navigations == (NavigationInfo("Party", "Erp.General_Contacts_Party", False),)


def test_complex_enum_open_types_and_collection_navigations() -> None:
    metadata = parse_metadata(EDMX)
    amount = metadata.complex_types["Erp.Amount"]
    assert amount.key == ()
    assert amount.properties[0] == PropertyInfo("Value", "Edm.Decimal", False, True, 18, 2, None)
    assert metadata.complex_types["Erp.MultilanguageString"].open_type
    assert metadata.enum_types["Erp.DocumentState"].members == ("New", "Released", "Closed")
    order = metadata.entity_type("Crm_Sales_SalesOrders")
    assert order.open_type
    assert {n.name: (n.type, n.collection) for n in order.navigations} == {
        "Customer": ("Erp.Crm_Sales_Customer", False),
        "Lines": ("Erp.Crm_Sales_SalesOrderLine", True),
    }
    assert metadata.entity_sets["Crm_Sales_Customers"] == "Erp.Crm_Sales_Customer"
    assert "Erp.EntityBase" in metadata.entity_types


def test_unknown_entity_set_names_the_closest_ones() -> None:
    metadata = parse_metadata(EDMX)
    assert metadata.closest_entity_sets("crm_sales_customer")[0] == "Crm_Sales_Customers"
    with pytest.raises(ErpNetConfigError, match="did you mean Crm_Sales_SalesOrders"):
        metadata.entity_type("Crm_Sales_SalesOrder")
    with pytest.raises(ErpNetConfigError, match="no entity set has a similar name"):
        metadata.entity_type("Zzz")


@pytest.mark.parametrize(
    "document",
    [b"<html><body>Login</body></html>", b"not xml at all", b"<edmx:Edmx xmlns:edmx='x'/>"],
)
def test_documents_that_are_not_edmx_are_refused(document: bytes) -> None:
    with pytest.raises(ErpNetTransportError, match=r"\$metadata"):
        parse_metadata(document)


def test_sandbox_metadata(sandbox_settings: ErpNetSettings) -> None:
    with ErpNetClient(sandbox_settings) as client:
        metadata = client.metadata()
        assert client.metadata() is metadata  # cached per client
    assert metadata.namespace == "Erp"
    customer = metadata.entity_type("Crm_Sales_Customers")
    assert customer.key == ("Id",)
    properties = {p.name: p for p in customer.properties}
    assert properties["Id"].type == "Edm.Guid" and not properties["Id"].nullable
    assert properties["CreditLimit"].type == "Erp.Amount"
    assert "Party" in {n.name for n in customer.navigations}
    assert {"Value", "Currency"} <= {p.name for p in metadata.complex_types["Erp.Amount"].properties}
    assert metadata.complex_types["Erp.MultilanguageString"].open_type
    lines = {n.name: n for n in metadata.entity_type("Crm_Sales_SalesOrders").navigations}["Lines"]
    assert lines.collection
    assert "Released" in metadata.enum_types["Erp.DocumentState"].members
    for entity_set, type_name in metadata.entity_sets.items():
        assert metadata.entity_type(entity_set).name == type_name
