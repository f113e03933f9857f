"""OpenLineage facets of ErpNetODataOperator: the entity set in (schema from $metadata), files out.

The first tests call ``get_openlineage_facets_on_complete`` after a real run against the sandbox;
the last one runs a DAG under ``airflow dags test`` with the OpenLineage provider writing its
events to a file, so the listener itself is what asks the operator.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from airflow.sdk.execution_time.context import OutletEventAccessors

from airflow_provider_erpnet.client import ErpNetClient, ErpNetSettings
from airflow_provider_erpnet.io.schema import type_label
from airflow_provider_erpnet.operators.lineage import output_dataset_name
from airflow_provider_erpnet.operators.odata import ErpNetODataOperator
from airflow_provider_erpnet.sandbox import DEFAULT_CLIENT_ID, DEFAULT_SECRET

CUSTOMERS = "Crm_Sales_Customers"


def _context() -> dict[str, Any]:
    return {"data_interval_start": None, "data_interval_end": None, "outlet_events": OutletEventAccessors()}


def _metadata_members(sandbox) -> list[tuple[str, str]]:
    settings = ErpNetSettings(
        instance_url=sandbox.base_url,
        client_id=DEFAULT_CLIENT_ID,
        client_secret=DEFAULT_SECRET,
        disk_cache=False,
    )
    with ErpNetClient(settings) as client:
        entity = client.metadata().entity_type(CUSTOMERS)
    return [(p.name, type_label(p.type, p.collection)) for p in entity.properties] + [
        (n.name, type_label(n.type, n.collection)) for n in entity.navigations
    ]


def test_facets_name_the_entity_set_with_its_schema_and_every_written_file(
    erpnet_sandbox, monkeypatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_ERPNET_DEFAULT", erpnet_sandbox.connection_json())
    operator = ErpNetODataOperator(
        task_id="customers",
        entity_set=CUSTOMERS,
        select="Number,CreditLimit,Turnover",
        output_path=str(tmp_path / "customers.parquet"),
        max_rows_per_file=400,
    )
    assert operator.get_openlineage_facets_on_complete(None) is None  # nothing ran yet
    manifest = operator.execute(_context())
    lineage = operator.get_openlineage_facets_on_complete(None)

    (source,) = lineage.inputs
    assert (source.namespace, source.name) == (f"erpnet://127.0.0.1:{erpnet_sandbox.port}", CUSTOMERS)
    fields = [(f.name, f.type) for f in source.facets["schema"].fields]
    assert fields == _metadata_members(erpnet_sandbox)
    assert ("CreditLimit", "Erp.Amount") in fields and ("Party", "Erp.General_Contacts_Party") in fields

    assert [f["rows"] for f in manifest["files"]] == [400, 400, 200]
    assert len(lineage.outputs) == 3
    for output, written in zip(lineage.outputs, manifest["files"], strict=True):
        assert (output.namespace, output.name) == ("file", written["path"])  # as common.io names files
        statistics = output.outputFacets["outputStatistics"]
        assert (statistics.rowCount, statistics.size, statistics.fileCount) == (
            written["rows"],
            written["bytes"],
            1,
        )
        schema = [(f.name, f.type, f.description) for f in output.facets["schema"].fields]
        assert schema == [
            ("Number", "string", "Edm.String"),
            ("CreditLimit", "amount(18,2)", "Erp.Amount"),
            ("Turnover", "decimal(18,2)", "Edm.Decimal"),
            ("Id", "string", "Edm.Guid"),
        ]
    assert lineage.run_facets == {} and lineage.job_facets == {}


def test_files_are_named_as_airflows_providers_name_them() -> None:
    """common.io: ``file`` + the absolute path (any character kept); amazon: ``s3://bucket`` + key."""
    assert output_dataset_name("/tmp/out #1/a?b.jsonl") == ("file", "/tmp/out #1/a?b.jsonl")
    assert output_dataset_name("file:///tmp/out/a.csv") == ("file", "/tmp/out/a.csv")
    assert output_dataset_name("s3://aws_default@lake/erpnet/a.parquet") == ("s3://lake", "erpnet/a.parquet")


def test_records_to_xcom_report_the_entity_set_and_no_file(erpnet_sandbox, monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_ERPNET_DEFAULT", erpnet_sandbox.connection_json())
    operator = ErpNetODataOperator(
        task_id="lookup", entity_set=CUSTOMERS, filter="Number le 'C0000005'", select="Number"
    )
    assert len(operator.execute(_context())) == 5
    lineage = operator.get_openlineage_facets_on_complete(None)
    assert [(d.namespace, d.name) for d in lineage.inputs] == [
        (f"erpnet://127.0.0.1:{erpnet_sandbox.port}", CUSTOMERS)
    ]
    assert lineage.outputs == []


def test_the_openlineage_listener_reports_the_datasets_of_a_dag_run(
    dag_test, erpnet_sandbox, tmp_path: Path
) -> None:
    events = tmp_path / "openlineage.jsonl"
    env = {
        "AIRFLOW_CONN_ERPNET_DEFAULT": erpnet_sandbox.connection_json(),
        "AIRFLOW_VAR_ERPNET_OUTPUT_DIR": str(tmp_path / "out"),
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
            {"type": "file", "log_file_path": str(events), "append": True}
        ),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "erpnet-tests",
    }
    dag_test("erpnet_nightly_full_export", env=env, logical_date="2026-11-29")
    emitted = [json.loads(line) for line in events.read_text().splitlines() if line.strip()]
    complete = {
        event["job"]["name"]: event
        for event in emitted
        if event.get("eventType") == "COMPLETE" and "." in event["job"]["name"]
    }
    customers = complete["erpnet_nightly_full_export.export_customers"]
    (source,) = customers["inputs"]
    assert (source["namespace"], source["name"]) == (f"erpnet://127.0.0.1:{erpnet_sandbox.port}", CUSTOMERS)
    assert {"Id", "Number", "CreditLimit", "Party"} <= {
        f["name"] for f in source["facets"]["schema"]["fields"]
    }
    (output,) = customers["outputs"]
    written = tmp_path / "out" / "full" / "2026-11-29" / "customers.parquet"
    assert (output["namespace"], output["name"]) == ("file", str(written))
    assert output["outputFacets"]["outputStatistics"]["rowCount"] == erpnet_sandbox.dataset.count(CUSTOMERS)
    assert output["outputFacets"]["outputStatistics"]["size"] == written.stat().st_size
