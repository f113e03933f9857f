"""ErpNetChangeSensor under a real ``airflow dags test``: the task defers, Airflow rebuilds the
trigger from its serialised form and runs it, a touch made meanwhile completes the sensor, and the
downstream task receives the count and newest instant."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from airflow_provider_erpnet.client.errors import ErpNetConfigError
from airflow_provider_erpnet.sandbox import Sandbox
from airflow_provider_erpnet.sensors.erpnet import ErpNetChangeSensor
from tests.conftest import AIRFLOW_BIN

SO = "Crm_Sales_SalesOrders"
DAGS = Path(__file__).parent / "dags"
UTC = dt.timezone.utc


def start_dag_test(sandbox: Sandbox, tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    log = tmp_path / "dags-test.log"
    env = {
        **os.environ,
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW_CONN_ERPNET_DEFAULT": sandbox.connection_json(),
        "ERPNET_TEST_OUT": str(tmp_path / "event.json"),
    }
    with log.open("w") as sink:
        process = subprocess.Popen(
            [AIRFLOW_BIN, "dags", "test", "erpnet_test_change_sensor"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    return process, log


def wait_for(condition, what: str, process: subprocess.Popen, log: Path, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"{what} did not happen:\n{log.read_text()[-5000:]}")
        time.sleep(0.2)


def run_until_changed(sandbox: Sandbox, tmp_path: Path, *, marker: str) -> dict:
    """Start the DAG, wait for ``marker`` in its log and two more polls, touch four orders."""
    ids = [row["Id"] for row in sandbox.dataset.rows(SO)[20:24]]
    process, log = start_dag_test(sandbox, tmp_path)
    try:
        wait_for(lambda: marker in log.read_text(), marker, process, log)
        polls = sandbox.stats()["api_requests"]
        wait_for(lambda: sandbox.stats()["api_requests"] >= polls + 2, "two more polls", process, log)
        assert not (tmp_path / "event.json").exists()
        sandbox.touch(SO, ids[:3], dt.datetime(2030, 1, 1, 0, 1, tzinfo=UTC))
        sandbox.touch(SO, ids[3:], dt.datetime(2030, 1, 1, 0, 2, 30, tzinfo=UTC))
        assert process.wait(timeout=240) == 0, log.read_text()[-5000:]
    finally:
        if process.poll() is None:
            process.kill()
    return json.loads((tmp_path / "event.json").read_text())


def test_a_touch_while_the_sensor_is_deferred_completes_it_with_the_count(
    airflow_db: Path, erpnet_sandbox: Sandbox, tmp_path: Path
) -> None:
    event = run_until_changed(erpnet_sandbox, tmp_path, marker="running trigger in line")
    assert event["count"] == 4
    assert (event["since"], event["newest"]) == ("2030-01-01T00:00:00Z", "2030-01-01T00:02:30Z")
    assert (event["from"], event["to"]) == ("2029-12-31T23:55:00Z", "2030-01-01T00:02:30Z")


def test_the_sensor_pokes_in_a_worker_when_not_deferrable(
    erpnet_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_ERPNET_DEFAULT", erpnet_sandbox.connection_json())
    sensor = ErpNetChangeSensor(task_id="wait", entity_set=SO, deferrable=False, min_changes=2)
    context = {"data_interval_start": dt.datetime(2030, 1, 1, tzinfo=UTC)}
    assert not sensor.poke(context)
    ids = [row["Id"] for row in erpnet_sandbox.dataset.rows(SO)[:2]]
    erpnet_sandbox.touch(SO, ids[:1], dt.datetime(2030, 1, 1, 0, 0, 1, tzinfo=UTC))
    assert not sensor.poke(context)  # one row is not enough
    erpnet_sandbox.touch(SO, ids[1:], dt.datetime(2030, 1, 1, 0, 0, 2, tzinfo=UTC))
    done = sensor.poke(context)
    assert done and done.xcom_value["count"] == 2 and done.xcom_value["newest"] == "2030-01-01T00:00:02Z"
    with pytest.raises(ErpNetConfigError, match="pass since="):
        sensor.poke({})
