"""Test DAG: the deferrable change sensor and a task that writes its result where the test reads it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pendulum
from airflow.sdk import dag, task

from airflow_provider_erpnet.sensors.erpnet import ErpNetChangeSensor


@dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False)
def erpnet_test_change_sensor():
    changed = ErpNetChangeSensor(
        task_id="wait_for_orders",
        entity_set="Crm_Sales_SalesOrders",
        since=os.environ.get("ERPNET_TEST_SINCE", "2030-01-01T00:00:00Z"),
        poke_interval=0.2,
        timeout=300,
    )

    @task
    def record(event: dict) -> None:
        Path(os.environ["ERPNET_TEST_OUT"]).write_text(json.dumps(event))

    record(changed.output)


erpnet_test_change_sensor()
