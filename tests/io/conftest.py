"""A real-looking ERP.net model and records with every value shape the Domain API sends."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from airflow_provider_erpnet.client.metadata import ServiceMetadata, parse_metadata
from airflow_provider_erpnet.io import Column, columns_for

EDMX = b"""<?xml version="1.0" encoding="utf-8"?>
<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx">
  <edmx:DataServices>
    <Schema Namespace="Erp" xmlns="http://docs.oasis-open.org/odata/ns/edm">
      <EnumType Name="DocumentState">
        <Member Name="New" Value="0"/><Member Name="Planned" Value="10"/>
        <Member Name="Released" Value="30"/><Member Name="Closed" Value="60"/>
      </EnumType>
      <ComplexType Name="Amount">
        <Property Name="Value" Type="Edm.Decimal" Nullable="false" Precision="18" Scale="2"/>
        <Property Name="Currency" Type="Edm.String"/>
      </ComplexType>
      <ComplexType Name="Quantity">
        <Property Name="Value" Type="Edm.Decimal" Nullable="false" Precision="18" Scale="3"/>
        <Property Name="Unit" Type="Edm.String"/>
      </ComplexType>
      <ComplexType Name="MultilanguageString" OpenType="true"/>
      <ComplexType Name="CustomPropertyValue">
        <Property Name="Value" Type="Edm.String"/>
        <Property Name="ValueId" Type="Edm.Guid"/>
        <Property Name="Description" Type="Erp.MultilanguageString"/>
      </ComplexType>
      <EntityType Name="EntityResource" Abstract="true">
        <Key><PropertyRef Name="Id"/></Key>
        <Property Name="Id" Type="Edm.Guid" Nullable="false"/>
        <Property Name="ObjectVersion" Type="Edm.Int32" Nullable="false"/>
        <Property Name="DisplayText" Type="Edm.String"/>
      </EntityType>
      <EntityType Name="Crm_Sales_SalesOrder" BaseType="Erp.EntityResource">
        <Property Name="DocumentNo" Type="Edm.String" Nullable="false" MaxLength="20"/>
        <Property Name="DocumentDate" Type="Edm.Date" Nullable="false"/>
        <Property Name="State" Type="Erp.DocumentState" Nullable="false"/>
        <Property Name="Void" Type="Edm.Boolean" Nullable="false"/>
        <Property Name="Sequence" Type="Edm.Int64"/>
        <Property Name="ExchangeRate" Type="Edm.Decimal"/>
        <Property Name="Weight" Type="Edm.Decimal" Precision="18" Scale="3"/>
        <Property Name="TotalAmount" Type="Erp.Amount"/>
        <Property Name="TotalQuantity" Type="Erp.Quantity"/>
        <Property Name="Description" Type="Erp.MultilanguageString"/>
        <Property Name="Notes" Type="Edm.String"/>
        <Property Name="CreationTime" Type="Edm.DateTimeOffset"/>
        <Property Name="AggregateLastUpdateTimeUtc" Type="Edm.DateTimeOffset"/>
        <Property Name="Tags" Type="Collection(Edm.String)"/>
        <Property Name="CustomProperty_Priority" Type="Erp.CustomPropertyValue"/>
        <NavigationProperty Name="Customer" Type="Erp.Crm_Sales_Customer" Nullable="false"/>
        <NavigationProperty Name="DocumentCurrency" Type="Erp.General_Currencies_Currency"/>
        <NavigationProperty Name="Lines" Type="Collection(Erp.Crm_Sales_SalesOrderLine)"/>
      </EntityType>
      <EntityType Name="Crm_Sales_SalesOrderLine" BaseType="Erp.EntityResource">
        <Property Name="LineNo" Type="Edm.Int32" Nullable="false"/>
        <Property Name="Quantity" Type="Erp.Quantity"/>
        <Property Name="UnitPrice" Type="Erp.Amount"/>
        <NavigationProperty Name="SalesOrder" Type="Erp.Crm_Sales_SalesOrder" Nullable="false"/>
      </EntityType>
      <EntityType Name="Crm_Sales_Customer" BaseType="Erp.EntityResource"/>
      <EntityType Name="General_Currencies_Currency" BaseType="Erp.EntityResource"/>
      <EntityContainer Name="Container">
        <EntitySet Name="Crm_Sales_SalesOrders" EntityType="Erp.Crm_Sales_SalesOrder"/>
        <EntitySet Name="Crm_Sales_SalesOrderLines" EntityType="Erp.Crm_Sales_SalesOrderLine"/>
        <EntitySet Name="Crm_Sales_Customers" EntityType="Erp.Crm_Sales_Customer"/>
      </EntityContainer>
    </Schema>
  </edmx:DataServices>
</edmx:Edmx>
"""

ORDER = "Crm_Sales_SalesOrders"
# Every kind appears at least once: Id/Notes string, Void bool, ObjectVersion int32, Sequence int64,
# ExchangeRate/Weight decimal, DocumentDate date, CreationTime timestamp, TotalAmount amount,
# TotalQuantity quantity, Description multilang, Customer reference, State enum, Lines/Tags json.
SELECT = ["Id", "default", "AggregateLastUpdateTimeUtc", "Tags", "CustomProperty_Priority"]
EXPAND = "Lines($select=LineNo,Quantity,UnitPrice)"


@pytest.fixture(scope="session")
def metadata() -> ServiceMetadata:
    return parse_metadata(EDMX)


@pytest.fixture(scope="session")
def columns(metadata: ServiceMetadata) -> list[Column]:
    return columns_for(metadata, ORDER, SELECT, EXPAND)


def order(number: int, **overrides: Any) -> dict[str, Any]:
    """One sales order as the Domain API's JSON decodes (decimals as Decimal, dates as text)."""
    record: dict[str, Any] = {
        "@odata.id": f"Crm_Sales_SalesOrders(00000000-0000-0000-0000-{number:012d})",
        "@odata.etag": 'W/"1"',
        "Id": f"00000000-0000-0000-0000-{number:012d}",
        "ObjectVersion": number,
        "DisplayText": f"SO-{number}",
        "DocumentNo": f"{number:06d}",
        "DocumentDate": "2020-05-08",
        "State": "Released",
        "Void": False,
        "Sequence": 2**40 + number,
        "ExchangeRate": Decimal("1.95583"),
        "Weight": Decimal("12.500"),
        "TotalAmount": {"Value": Decimal("1234567890123456.78"), "Currency": "EUR"},
        "TotalQuantity": {"Value": "3.550", "Unit": "PCS"},
        "Description": {"EN": "Order", "BG": "Поръчка"},
        "Notes": "plain",
        "CreationTime": "2020-05-08T10:11:12.1234567+03:00",
        "AggregateLastUpdateTimeUtc": "2020-05-08T07:11:12Z",
        "Tags": ["a", "b"],
        "CustomProperty_Priority": {"Value": "High", "ValueId": None, "Description": {"EN": "High"}},
        "Customer": {"@odata.id": "Crm_Sales_Customers(11111111-1111-1111-1111-111111111111)"},
        "DocumentCurrency": None,
        "Lines": [
            {
                "@odata.id": "Crm_Sales_SalesOrderLines(22222222-2222-2222-2222-222222222222)",
                "LineNo": 10,
                "Quantity": {"Value": Decimal("2.000"), "Unit": "PCS"},
                "UnitPrice": {"Value": Decimal("0.10"), "Currency": "EUR"},
            }
        ],
    }
    record.update(overrides)
    return record


@pytest.fixture
def make_order() -> Callable[..., dict[str, Any]]:
    return order


@pytest.fixture
def records() -> list[dict[str, Any]]:
    """Three orders with values that break naive writers; returned fresh for every test."""
    return [
        order(1),
        order(
            2,
            Notes='quote " comma , newline \n and CRLF \r\n end',
            DisplayText="",
            Description={"en": "Emoji 😀", "BG": "Кирилица «ё»", "DE": None},
            ExchangeRate=Decimal("123456789012345678.1234567890"),
            Weight=Decimal("-999999999999999.999"),
            TotalAmount={"Value": Decimal("-9999999999999999.99"), "Currency": "BGN"},
            TotalQuantity={"Value": 7, "Unit": ""},
            CreationTime="2021-03-28T00:59:59.999999Z",
            AggregateLastUpdateTimeUtc="2020-12-31T23:59:59.999999-02:00",
            DocumentDate="2020-05-08T00:00:00Z",
            Tags=[],
        ),
        order(
            3,
            Notes=None,
            DisplayText=" padded ",
            Void=True,
            Sequence=-(2**63),
            ExchangeRate=Decimal("0E-10"),
            Weight=None,
            TotalAmount=None,
            TotalQuantity={"Value": None, "Unit": "KG"},
            Description={},
            Customer=None,
            CreationTime="2020-10-25T01:30:00+02:00",
            AggregateLastUpdateTimeUtc="0001-01-01T00:00:00Z",
            Lines=[],
            Tags=None,
            CustomProperty_Priority=None,
        ),
    ]
