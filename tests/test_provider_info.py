"""get_provider_info() must satisfy the schemas that ship with Airflow, and Airflow must find it."""

from __future__ import annotations

import json
from importlib.metadata import entry_points
from pathlib import Path

import airflow
import jsonschema

from airflow_provider_erpnet.get_provider_info import get_provider_info

AIRFLOW_DIR = Path(airflow.__file__).parent


def test_validates_against_airflows_provider_info_schema() -> None:
    schema = json.loads((AIRFLOW_DIR / "provider_info.schema.json").read_text())
    jsonschema.validate(get_provider_info(), schema)


def test_connection_type_validates_against_the_declarative_form_schema() -> None:
    yaml_schema = json.loads((AIRFLOW_DIR / "provider.yaml.schema.json").read_text())
    item_schema = yaml_schema["properties"]["connection-types"]["items"]
    (conn_type,) = get_provider_info()["connection-types"]
    jsonschema.validate(conn_type, item_schema)
    assert conn_type["connection-type"] == "erpnet"
    assert set(conn_type["ui-field-behaviour"]["hidden-fields"]) >= {"port", "schema"}


def test_no_non_secret_extra_is_named_like_a_secret() -> None:
    """Airflow masks extras whose key contains a sensitive word; ours are not secrets."""
    from airflow.sdk._shared.secrets_masker.secrets_masker import should_hide_value_for_key

    (conn_type,) = get_provider_info()["connection-types"]
    masked = [key for key in conn_type["conn-fields"] if should_hide_value_for_key(key)]
    assert masked == []


def test_entry_point_is_registered_with_the_distribution_name() -> None:
    (entry,) = [
        ep
        for ep in entry_points(group="apache_airflow_provider")
        if ep.value.startswith("airflow_provider_erpnet")
    ]
    assert entry.load()() == get_provider_info()
    assert entry.dist is not None and entry.dist.name == get_provider_info()["package-name"]


def test_providers_manager_discovers_the_connection_form() -> None:
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    assert "airflow-provider-erpnet" in manager.providers
    behaviour = manager.field_behaviours["erpnet"]
    assert behaviour["relabeling"]["host"] == "ERP.net instance URL"
    assert "extra__erpnet__scope" in manager.connection_form_widgets
