"""Test DAG: reconcile customers, delete some through the sandbox's admin endpoint, reconcile
again, and write the second run's manifest where the test reads it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pendulum
import requests
from airflow.sdk import BaseHook, dag, task

from airflow_provider_erpnet.operators.reconcile import ErpNetReconcileOperator

OUT = os.environ.get("ERPNET_TEST_OUT", "/tmp/erpnet-test-reconcile")


@dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False)
def erpnet_test_reconcile():
    def reconcile(task_id: str) -> ErpNetReconcileOperator:
        return ErpNetReconcileOperator(
            task_id=task_id,
            entity_set="Crm_Sales_Customers",
            snapshot_path=f"{OUT}/state/customers.ids",
            output_path=f"{OUT}/deleted/{task_id}.parquet",
        )

    @task
    def delete_in_erpnet() -> None:
        host = BaseHook.get_connection("erpnet_default").host
        ids = json.loads(os.environ["ERPNET_TEST_DELETE"])
        answer = requests.post(f"{host}/admin/delete", json={"entity_set": "Crm_Sales_Customers", "ids": ids})
        answer.raise_for_status()

    @task
    def record(manifest: dict) -> None:
        Path(OUT, "second.json").write_text(json.dumps(manifest))

    second = reconcile("second")
    reconcile("first") >> delete_in_erpnet() >> second
    record(second.output)


erpnet_test_reconcile()
