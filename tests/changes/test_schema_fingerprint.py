"""Fingerprints of entity types from the sandbox's real $metadata, and what changed between two."""

from __future__ import annotations

import pytest

from airflow_provider_erpnet.changes.schema import compare, fingerprint, schema_change_mode
from airflow_provider_erpnet.client.errors import ErpNetConfigError
from airflow_provider_erpnet.client.metadata import parse_metadata
from airflow_provider_erpnet.sandbox.data import Dataset
from airflow_provider_erpnet.sandbox.edmx import metadata_xml

C = "Crm_Sales_Customers"


def test_a_fingerprint_describes_every_property_and_is_stable() -> None:
    metadata = parse_metadata(metadata_xml())
    first = fingerprint(metadata, C)
    assert first == fingerprint(parse_metadata(metadata_xml()), C)
    assert first["entity_type"] == "Erp.Crm_Sales_Customer" and len(first["sha256"]) == 64
    properties = first["properties"]
    assert properties["Id"] == {"type": "Edm.Guid", "nullable": False}
    assert properties["CreditLimit"]["members"]["Value"] == {
        "type": "Edm.Decimal",
        "nullable": False,
        "precision": 18,
        "scale": 2,
    }
    assert properties["Party"] == {
        "type": "Erp.General_Contacts_Party",
        "collection": False,
        "navigation": True,
    }
    assert fingerprint(metadata, "Crm_Sales_SalesOrders")["properties"]["Lines"]["collection"] is True


def test_a_custom_property_added_at_runtime_is_reported_by_name() -> None:
    dataset = Dataset(10)
    before = fingerprint(parse_metadata(metadata_xml(dataset.entities())), C)
    dataset.add_custom_property(C, "Color")
    after = fingerprint(parse_metadata(metadata_xml(dataset.entities())), C)
    change = compare(before, after)
    assert change and change.added == ("CustomProperty_Color",) and not change.removed and not change.retyped
    assert change.describe() == "added CustomProperty_Color"
    assert before["sha256"] != after["sha256"]
    back = compare(after, before)
    assert back.removed == ("CustomProperty_Color",) and back.to_dict() == {
        "added": [],
        "removed": ["CustomProperty_Color"],
        "retyped": [],
    }
    assert not compare(after, after)


def test_a_retyped_property_is_described_before_and_after() -> None:
    metadata = parse_metadata(metadata_xml())
    before = fingerprint(metadata, C)
    after = {**before, "properties": dict(before["properties"])}
    after["properties"]["Number"] = {**before["properties"]["Number"], "max_length": 32}
    change = compare(before, after)
    assert [name for name, _, _ in change.retyped] == ["Number"]
    assert change.describe() == "retyped Number (Edm.String max 16 not null -> Edm.String max 32 not null)"


def test_the_default_mode_depends_on_the_format() -> None:
    assert schema_change_mode(None, "parquet") == "fail"
    assert schema_change_mode(None, "jsonl") == schema_change_mode(None, "csv") == "warn"
    assert schema_change_mode("evolve", "parquet") == "evolve"
    with pytest.raises(ErpNetConfigError, match="on_schema_change must be one of fail, warn, evolve"):
        schema_change_mode("ignore", "csv")
