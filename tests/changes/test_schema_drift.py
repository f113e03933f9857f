"""Schema drift against the sandbox over HTTP: a custom property added between two runs stops a
Parquet extraction, warns for JSON Lines, or becomes a new column; old and new files read together."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from airflow_provider_erpnet.changes.schema import ErpNetSchemaChangeError
from airflow_provider_erpnet.client import ErpNetClient, ErpNetSettings
from airflow_provider_erpnet.io import iter_records, read_table
from airflow_provider_erpnet.io.output import read_published_manifest
from airflow_provider_erpnet.operators.extraction import ExtractionRequest, run_extraction
from airflow_provider_erpnet.sandbox import DEFAULT_CLIENT_ID, DEFAULT_SECRET, Sandbox

C = "Crm_Sales_Customers"
COLOR = "CustomProperty_Color"
SELECT = "Id,Number,DisplayText"


@pytest.fixture
def sandbox(erpnet_sandbox_factory) -> Sandbox:
    return erpnet_sandbox_factory(scale=300)


def extract(sandbox: Sandbox, target: Path, **options) -> dict:
    settings = ErpNetSettings(sandbox.base_url, DEFAULT_CLIENT_ID, DEFAULT_SECRET, disk_cache=False)
    with ErpNetClient(settings) as client:
        return run_extraction(client, ExtractionRequest(C, select=SELECT), target, **options).to_dict()


def test_a_custom_property_added_between_two_runs_fails_warns_or_evolves(
    sandbox: Sandbox, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    day1, day1_jsonl, day2 = tmp_path / "day1.parquet", tmp_path / "day1.jsonl", tmp_path / "day2.parquet"
    first = extract(sandbox, day1)
    extract(sandbox, day1_jsonl)
    assert first["schema"]["entity_type"] == "Erp.Crm_Sales_Customer"
    assert COLOR not in first["schema"]["properties"]
    assert first["schema"]["on_schema_change"] == "fail"  # Parquet's default

    sandbox.add_custom_property(C, "Color")

    # fail (Parquet's default): nothing read, the previous output and its manifest stay.
    with pytest.raises(ErpNetSchemaChangeError, match="added CustomProperty_Color") as raised:
        extract(sandbox, day1)
    assert raised.value.change.added == (COLOR,)
    assert "on_schema_change='evolve'" in str(raised.value)
    assert read_published_manifest(day1).to_dict() == first
    assert read_table(first).num_rows == 300

    # warn (the default for JSON Lines): the warning names the property, the columns stay.
    with caplog.at_level(logging.WARNING):
        warned = extract(sandbox, day1_jsonl)
    assert "added CustomProperty_Color" in caplog.text and "on_schema_change='warn'" in caplog.text
    assert [c["name"] for c in warned["columns"]] == ["Id", "Number", "DisplayText"]
    assert warned["schema"]["changes"] == {"added": [COLOR], "removed": [], "retyped": []}

    # evolve, for a file named per run: compared with the manifest the previous day published.
    evolved = extract(
        sandbox, day2, on_schema_change="evolve", schema_baseline=tmp_path / "_day1.parquet.manifest.json"
    )
    assert [c["name"] for c in evolved["columns"]] == ["Id", "Number", "DisplayText", COLOR]
    assert evolved["schema"]["changes"]["added"] == [COLOR]
    expected = {row["Id"]: row[COLOR] for row in sandbox.dataset.rows(C)}
    written = {record["Id"]: record[COLOR] for record in iter_records(evolved)}
    assert written == expected and any(value is None for value in written.values())

    # Old and new Parquet files read together, with the union of their columns.
    both = read_table([first, evolved])
    assert both.column_names == ["Id", "Number", "DisplayText", COLOR]
    assert both.num_rows == 600
    assert both.column(COLOR).to_pylist()[:300] == [None] * 300
    records = list(iter_records([first, evolved]))
    assert [r[COLOR] for r in records[300:]] == [expected[r["Id"]] for r in records[300:]]

    # The next evolve at the same place finds no change and keeps the column it added.
    again = extract(sandbox, day2, on_schema_change="evolve")
    assert "changes" not in again["schema"] and again["schema"]["sha256"] == evolved["schema"]["sha256"]
    assert [c["name"] for c in again["columns"]][-1] == COLOR


def test_an_unknown_mode_fails_when_the_dag_is_parsed() -> None:
    from airflow_provider_erpnet.client.errors import ErpNetConfigError
    from airflow_provider_erpnet.operators.odata import ErpNetODataOperator

    with pytest.raises(ErpNetConfigError, match="on_schema_change must be one of fail, warn, evolve"):
        ErpNetODataOperator(task_id="x", entity_set=C, output_path="/tmp/x.parquet", on_schema_change="sync")


@pytest.mark.parametrize("rendered", ["", "  \n"])
def test_an_empty_schema_baseline_compares_with_nothing(
    sandbox: Sandbox, tmp_path: Path, rendered: str
) -> None:
    """A per-run baseline template renders empty on a DAG's first run (docs/change-detection.md).

    With a drifted model and Parquet's ``fail``, an empty baseline must neither be read as a path
    nor fall back to the manifest an earlier run left at the same output.
    """
    target = tmp_path / "orders.parquet"
    extract(sandbox, target)
    sandbox.add_custom_property(C, "Color")
    with pytest.raises(ErpNetSchemaChangeError):
        extract(sandbox, target)  # no baseline named: the manifest at the output is compared
    manifest = extract(sandbox, target, schema_baseline=rendered)
    assert "changes" not in manifest["schema"] and "baseline_sha256" not in manifest["schema"]
    assert COLOR in manifest["schema"]["properties"] and manifest["rows"] == 300
