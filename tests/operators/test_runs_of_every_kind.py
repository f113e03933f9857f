"""Runs of every kind: without a logical date, with a template the run cannot fill, with no rows.

Scheduled runs, backfills and the UI's Trigger dialog give a run a logical date and a data
interval; ``airflow dags trigger`` and the REST API by default do not. The real deployment test
(tests/deployment) triggers every example each way; these tests pin the operator's behaviour.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pendulum
import pytest
from airflow.sdk import (
    DAG,
    Asset,
    CronDataIntervalTimetable,
    CronTriggerTimetable,
    DeltaDataIntervalTimetable,
)
from airflow.sdk.execution_time.context import OutletEventAccessors
from airflow.serialization.encoders import coerce_to_core_timetable

from airflow_provider_erpnet.client import ErpNetClient, ErpNetSettings
from airflow_provider_erpnet.client.errors import ErpNetConfigError
from airflow_provider_erpnet.io import iter_records
from airflow_provider_erpnet.io.convert import parse_timestamp
from airflow_provider_erpnet.io.progress import Progress
from airflow_provider_erpnet.operators.extraction import ExtractionRequest, run_extraction
from airflow_provider_erpnet.operators.odata import ErpNetODataOperator, erpnet_asset
from airflow_provider_erpnet.operators.windows import interval_at, window_from_context
from airflow_provider_erpnet.sandbox import DEFAULT_CLIENT_ID, DEFAULT_SECRET

ORDERS = "Crm_Sales_SalesOrders"
CUSTOMERS = "Crm_Sales_Customers"
STAMP = "AggregateLastUpdateTimeUtc"
UTC = dt.timezone.utc
HOURLY = CronDataIntervalTimetable("@hourly", timezone="UTC")


@pytest.fixture
def connect(monkeypatch):
    def use(sandbox) -> None:
        monkeypatch.setenv("AIRFLOW_CONN_ERPNET_DEFAULT", sandbox.connection_json())

    return use


def _run_without_logical_date(dag: DAG, run_after: dt.datetime) -> dict[str, Any]:
    """The context a task of a run triggered without a logical date gets: no interval keys at all."""
    return {
        "dag": dag,
        "dag_run": SimpleNamespace(run_after=run_after),
        "outlet_events": OutletEventAccessors(),
    }


@pytest.mark.parametrize(
    "timetable",
    [
        HOURLY,
        CronDataIntervalTimetable("*/15 * * * *", timezone="UTC"),
        CronDataIntervalTimetable("0 2 * * *", timezone="Europe/Sofia"),
        DeltaDataIntervalTimetable(dt.timedelta(hours=6)),
    ],
    ids=["hourly", "quarter-hourly", "nightly-sofia", "six-hours"],
)
@pytest.mark.parametrize(
    "run_after",
    [dt.datetime(2026, 12, 1, 17, 14, 32, 497388, tzinfo=UTC), dt.datetime(2026, 12, 1, 0, 0, tzinfo=UTC)],
    ids=["between-ticks", "on-a-tick"],
)
def test_the_inferred_interval_is_the_one_airflow_gives_a_manual_run(
    timetable: Any, run_after: dt.datetime
) -> None:
    expected = coerce_to_core_timetable(timetable).infer_manual_data_interval(
        run_after=pendulum.instance(run_after)
    )
    assert interval_at(timetable, run_after) == (expected.start, expected.end)


@pytest.mark.parametrize(
    "timetable", [CronTriggerTimetable("@hourly", timezone="UTC"), None], ids=["trigger-timetable", "none"]
)
def test_schedules_without_data_intervals_infer_none(timetable: Any) -> None:
    assert interval_at(timetable, dt.datetime(2026, 12, 1, 17, tzinfo=UTC)) is None


def test_an_unscheduled_dag_run_without_a_date_is_refused_naming_the_fixes() -> None:
    dag = DAG("orders", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"))
    context = _run_without_logical_date(dag, dt.datetime(2026, 12, 1, 17, tzinfo=UTC))
    with pytest.raises(ErpNetConfigError) as raised:
        window_from_context(context, STAMP, dt.timedelta(minutes=5))
    message = str(raised.value)
    assert "triggered without a logical date" in message
    assert "CronDataIntervalTimetable" in message and "remove incremental_column" in message


def test_a_run_without_a_logical_date_reads_the_last_complete_interval(
    erpnet_sandbox_factory, connect, tmp_path: Path, capsys
) -> None:
    sandbox = erpnet_sandbox_factory(scale=10_000)
    connect(sandbox)
    latest = max(parse_timestamp(row[STAMP]) for row in sandbox.dataset.rows(ORDERS))
    hour = latest.replace(minute=0, second=0, microsecond=0)
    run_after = hour + dt.timedelta(hours=1, minutes=23, seconds=45)  # triggered 23 min into the next hour
    dag = DAG("orders", schedule=HOURLY, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"))
    operator = ErpNetODataOperator(
        task_id="orders", entity_set=ORDERS, incremental_column=STAMP, output_path=str(tmp_path / "o.jsonl")
    )
    manifest = operator.execute(_run_without_logical_date(dag, run_after))
    start, end = hour - dt.timedelta(minutes=5), hour + dt.timedelta(hours=1)
    expected = [
        row["Id"] for row in sandbox.dataset.rows(ORDERS) if start <= parse_timestamp(row[STAMP]) <= end
    ]
    assert manifest["window"]["start"] == start.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert manifest["window"]["end"] == end.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert [record["Id"] for record in iter_records(manifest)] == expected
    assert manifest["rows"] == manifest["server_count"] == len(expected) > 0
    logged = capsys.readouterr().out  # the operator's log (structlog, as in a task) goes to stdout here
    assert f"No data interval (run triggered without a logical date): reading [{hour.isoformat()}" in logged


def test_a_template_the_run_cannot_fill_fails_in_execute_with_the_fix() -> None:
    """The error is raised where the task's log shows it; the deployment test checks the log itself."""
    with DAG("nightly", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
        operator = ErpNetODataOperator(task_id="t", entity_set=CUSTOMERS, output_path="/tmp/{{ ds }}/c.jsonl")
    context = {"dag_run": SimpleNamespace(run_after=dt.datetime(2026, 12, 1, tzinfo=UTC))}
    operator.render_template_fields(context, dag.get_template_env())  # as Airflow calls it: no raise
    with pytest.raises(ErpNetConfigError) as raised:
        operator.execute(context)
    message = str(raised.value)
    assert "'ds' is undefined" in message
    assert "{{ (dag_run.logical_date or dag_run.run_after) | ds }}" in message


@pytest.mark.parametrize("emit", [False, True], ids=["default", "asset_event_if_empty"])
def test_an_empty_window_writes_its_file_and_emits_an_event_only_if_asked(
    erpnet_sandbox, connect, tmp_path: Path, capsys, emit: bool
) -> None:
    connect(erpnet_sandbox)
    target = tmp_path / "orders.jsonl"
    operator = ErpNetODataOperator(
        task_id="orders",
        entity_set=ORDERS,
        incremental_column=STAMP,
        output_path=str(target),
        asset_event_if_empty=emit,
    )
    events = OutletEventAccessors()
    context = {
        "data_interval_start": dt.datetime(2020, 1, 1, tzinfo=UTC),
        "data_interval_end": dt.datetime(2020, 1, 1, 1, tzinfo=UTC),
        "outlet_events": events,
    }
    manifest = operator.execute(context)
    logged = capsys.readouterr().out
    assert (manifest["rows"], manifest["server_count"]) == (0, 0)
    assert target.exists() and target.read_bytes() == b""
    assert f"{ORDERS}: 0 rows in window [2019-12-31T23:55:00Z, 2020-01-01T01:00:00Z], 1 page," in logged
    asset = erpnet_asset("erpnet_default", ORDERS)
    if emit:
        assert operator.outlets == [asset]
        assert events[asset].extra["rows"] == 0
    else:
        assert operator.outlets == []  # Airflow emits events for the outlets left when the task succeeds
        assert "No Asset event for erpnet://erpnet_default/Crm_Sales_SalesOrders" in logged
        assert not events._dict


def test_rows_keep_their_event(erpnet_sandbox, connect, tmp_path: Path) -> None:
    connect(erpnet_sandbox)
    mine = Asset("file:///lake/customers")
    operator = ErpNetODataOperator(
        task_id="c", entity_set=CUSTOMERS, output_path=str(tmp_path / "c.jsonl"), outlets=[mine]
    )
    manifest = operator.execute({"outlet_events": OutletEventAccessors()})
    assert manifest["rows"] > 0 and operator.outlets == [mine]


def test_progress_lines_fit_the_task_log_panel() -> None:
    lines: list[str] = []
    log = logging.getLogger("progress-width")
    log.setLevel(logging.INFO)
    log.addFilter(lambda record: lines.append(record.getMessage()) and False)
    now = [0.0]
    progress = Progress(
        log,
        "Logistics_Inventory_StoreTransactionLines",
        expected=9_999_999,
        every_pages=1,
        clock=lambda: now[0],
    )
    for _ in range(3):
        now[0] += 12.5
        progress.page(411_522)
    without_total = Progress(
        log, "Logistics_Inventory_StoreTransactionLines", every_pages=1, clock=lambda: now[0]
    )
    now[0] += 1
    without_total.page(1000)
    assert len(lines) == 4, lines
    assert max(len(line) for line in lines) < 100, lines
    assert (
        lines[2]
        == "Logistics_Inventory_StoreTransactionLines: 1234566/9999999 rows (12%), 32922 rows/s, ETA 266 s"
    )


def test_the_default_selection_note_is_logged_once_per_set_and_connection(
    erpnet_sandbox, tmp_path: Path, caplog
) -> None:
    settings = ErpNetSettings(
        instance_url=erpnet_sandbox.base_url,
        client_id=DEFAULT_CLIENT_ID,
        client_secret=DEFAULT_SECRET,
        disk_cache=False,
    )
    with ErpNetClient(settings) as client, caplog.at_level(logging.DEBUG):
        for attempt in range(2):
            run_extraction(client, ExtractionRequest(CUSTOMERS), tmp_path / f"c{attempt}.jsonl")
    notes = [
        record.levelno
        for record in caplog.records
        if "default selection does not include" in record.getMessage()
    ]
    assert notes == [logging.INFO, logging.DEBUG]
