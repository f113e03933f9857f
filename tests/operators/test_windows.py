"""Incremental windows -> $filter, and how the request combines them with the user's query."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pendulum
import pytest
from airflow.sdk import DAG, CronTriggerTimetable

from airflow_provider_erpnet.client.errors import ErpNetConfigError
from airflow_provider_erpnet.operators.extraction import ExtractionRequest, required_select
from airflow_provider_erpnet.operators.windows import and_filters, window_for, window_from_context

COLUMN = "AggregateLastUpdateTimeUtc"
UTC = dt.timezone.utc
CRON_DAG = """
import pendulum
from airflow.sdk import dag
from airflow_provider_erpnet.operators.odata import ErpNetODataOperator

@dag(schedule="@hourly", start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False)
def orders_cron():
    ErpNetODataOperator(
        task_id="sync",
        entity_set="Crm_Sales_SalesOrders",
        incremental_column="AggregateLastUpdateTimeUtc",
        output_path=__file__.rsplit("/", 1)[0] + "/out/orders.jsonl",
    )

orders_cron()
"""


def test_window_is_closed_and_reaches_back_by_the_overlap() -> None:
    window = window_for(
        COLUMN,
        dt.datetime(2025, 9, 1, 10, tzinfo=UTC),
        dt.datetime(2025, 9, 1, 11, tzinfo=UTC),
        dt.timedelta(minutes=5),
    )
    assert window.filter() == f"{COLUMN} ge 2025-09-01T09:55:00Z and {COLUMN} le 2025-09-01T11:00:00Z"
    assert window.to_dict() == {
        "column": COLUMN,
        "start": "2025-09-01T09:55:00Z",
        "end": "2025-09-01T11:00:00Z",
        "overlap_seconds": 300,
    }


def test_overlap_seconds_is_a_number_in_the_manifest() -> None:
    start = dt.datetime(2025, 9, 1, 10, tzinfo=UTC)
    whole = window_for(COLUMN, start, start, dt.timedelta(minutes=5)).to_dict()["overlap_seconds"]
    part = window_for(COLUMN, start, start, dt.timedelta(seconds=1.5)).to_dict()["overlap_seconds"]
    assert (type(whole), whole, part) == (int, 300, 1.5)


def test_airflow_interval_in_another_zone_is_written_in_utc() -> None:
    context = {
        "data_interval_start": pendulum.datetime(2025, 9, 1, 12, tz="Europe/Sofia"),
        "data_interval_end": pendulum.datetime(2025, 9, 1, 13, tz="Europe/Sofia"),
    }
    window = window_from_context(context, COLUMN, dt.timedelta(0))
    assert window.filter() == f"{COLUMN} ge 2025-09-01T09:00:00Z and {COLUMN} le 2025-09-01T10:00:00Z"


def test_run_without_data_interval_is_refused_not_turned_into_a_full_export() -> None:
    with pytest.raises(ErpNetConfigError, match=r"data interval.*remove\s+incremental_column"):
        window_from_context({"data_interval_start": None, "data_interval_end": None}, COLUMN, dt.timedelta(0))


@pytest.mark.parametrize(
    ("schedule", "fix"),
    [
        # the DAG's expression as Airflow keeps it: "0 * * * *" from 3.3 on, "@hourly" before
        ("@hourly", 'CronDataIntervalTimetable("{expression}", timezone="Europe/Sofia")'),
        (dt.timedelta(hours=1), "DeltaDataIntervalTimetable(datetime.timedelta(seconds=3600))"),
        (None, 'CronDataIntervalTimetable("@hourly", timezone="UTC")'),
    ],
    ids=["cron", "timedelta", "unscheduled"],
)
def test_empty_interval_is_refused_naming_the_schedule_that_fixes_it(schedule: object, fix: str) -> None:
    """The DAG's own trigger timetable (Airflow 3's default for these schedules) is spelled out."""
    dag = DAG("orders", schedule=schedule, start_date=pendulum.datetime(2025, 9, 1, tz="Europe/Sofia"))
    moment = pendulum.datetime(2025, 9, 1, 10, tz="UTC")
    context = {"data_interval_start": moment, "data_interval_end": moment, "dag": dag}
    with pytest.raises(ErpNetConfigError) as raised:
        window_from_context(context, COLUMN, dt.timedelta(minutes=5))
    message = str(raised.value)
    fix = fix.format(expression=getattr(dag.timetable, "expression", ""))
    assert "this run's is empty" in message
    assert f"`from airflow.sdk import {fix.split('(')[0]}` and `schedule={fix}`" in message
    assert "create_cron_data_intervals = True" in message


def test_a_dag_scheduled_hourly_by_a_cron_string_fails_with_the_fix(
    airflow_cli, erpnet_sandbox, tmp_path: Path
) -> None:
    """A real ``airflow dags test`` of ``schedule="@hourly"``: the task's log names the fix."""
    (tmp_path / "orders_cron.py").write_text(CRON_DAG)
    result = airflow_cli(
        "dags",
        "test",
        "orders_cron",
        "2026-01-01T10:00:00+00:00",
        env={
            "AIRFLOW__CORE__DAGS_FOLDER": str(tmp_path),
            "AIRFLOW_CONN_ERPNET_DEFAULT": erpnet_sandbox.connection_json(),
        },
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-3000:]
    assert (
        "ErpNetConfigError: incremental_column='AggregateLastUpdateTimeUtc' needs a data interval" in output
    )
    hourly = CronTriggerTimetable("@hourly", timezone="UTC").expression  # "0 * * * *" from Airflow 3.3
    assert (
        "`from airflow.sdk import CronDataIntervalTimetable` and "
        f'`schedule=CronDataIntervalTimetable("{hourly}", timezone="UTC")`'
    ) in output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("overlap", [dt.timedelta(minutes=-1), 300])
def test_bad_overlap(overlap: object) -> None:
    now = dt.datetime(2025, 9, 1, tzinfo=UTC)
    with pytest.raises(ErpNetConfigError, match="overlap"):
        window_for(COLUMN, now, now, overlap)  # type: ignore[arg-type]


def test_interval_ending_before_it_starts() -> None:
    start = dt.datetime(2025, 9, 1, 11, tzinfo=UTC)
    with pytest.raises(ErpNetConfigError, match=r"ends .* before it starts"):
        window_for(COLUMN, start, start - dt.timedelta(hours=1), dt.timedelta(0))


def test_filters_are_parenthesised_before_and() -> None:
    assert and_filters(None, "  ") is None
    assert and_filters("A eq 1", None) == "A eq 1"
    assert and_filters("A eq 1 and B eq 2", "C ge 3") == "(A eq 1 and B eq 2) and (C ge 3)"


def test_request_combines_user_filter_window_and_required_columns() -> None:
    window = window_for(
        COLUMN, dt.datetime(2025, 9, 1, tzinfo=UTC), dt.datetime(2025, 9, 2, tzinfo=UTC), dt.timedelta(0)
    )
    request = ExtractionRequest(
        "Crm_Sales_SalesOrders",
        filter="State eq 'Released'",
        select="DocumentNo, State",
        incremental_column=COLUMN,
        window=window,
    )
    assert request.full_filter == f"(State eq 'Released') and ({window.filter()})"
    assert request.full_select == ("DocumentNo", "State", "Id", COLUMN)
    assert request.describe() == {
        "filter": request.full_filter,
        "select": f"DocumentNo,State,Id,{COLUMN}",
    }


def test_required_select() -> None:
    assert required_select(None, ["Id", None]) == ("default", "Id")
    assert required_select(["Id", "Number"], ["Id", COLUMN]) == ("Id", "Number", COLUMN)
    assert required_select("default,Id", ["Id"]) == ("default", "Id")


@pytest.mark.parametrize(
    ("orderby", "in_order"),
    [
        (None, True),
        ("Id", True),
        ("Id asc", True),
        ("Id desc", False),
        ("Number,Id", False),
        ("Number", False),
    ],
)
def test_which_orders_keep_ids_increasing(orderby: str | None, in_order: bool) -> None:
    assert ExtractionRequest("Crm_Sales_Customers", orderby=orderby).ids_in_order is in_order


def test_check_count_choices() -> None:
    with pytest.raises(ErpNetConfigError, match="check_count"):
        ExtractionRequest("Crm_Sales_Customers", check_count="yes")  # type: ignore[arg-type]
