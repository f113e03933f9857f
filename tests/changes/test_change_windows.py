"""Parse-time wiring of extractions under an Asset watcher, and which triggering events count.

The whole path (triggerer, scheduler, task) runs in test_asset_watcher.py; here the DAG is built
in process and the triggering events are the objects Airflow hands a task (``.extra``)."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pendulum
from airflow.sdk import DAG, Asset, AssetWatcher

from airflow_provider_erpnet.changes.events import ChangeEvent
from airflow_provider_erpnet.changes.instants import parse_instant
from airflow_provider_erpnet.operators.change_windows import TriggeringChanges
from airflow_provider_erpnet.operators.odata import ErpNetODataOperator, erpnet_asset
from airflow_provider_erpnet.triggers.erpnet import ErpNetChangesTrigger

SO = "Crm_Sales_SalesOrders"
WATCHED = Asset(
    "erpnet://erpnet_default/Crm_Sales_SalesOrders",
    watchers=[AssetWatcher(name="orders", trigger=ErpNetChangesTrigger(entity_set=SO))],
)


def test_an_extraction_of_the_watched_set_reads_the_asset_and_never_updates_it() -> None:
    other = Asset("s3://lake/other")
    with DAG("wiring", schedule=(WATCHED | other), start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
        windowed = ErpNetODataOperator(
            task_id="windowed",
            entity_set=SO,
            incremental_column="AggregateLastUpdateTimeUtc",
            output_path="/x/a.jsonl",
        )
        full = ErpNetODataOperator(task_id="full", entity_set=SO, output_path="/x/b.jsonl")
        customers = ErpNetODataOperator(
            task_id="customers", entity_set="Crm_Sales_Customers", output_path="/x/c.jsonl"
        )
    for task in (windowed, full):
        assert [a.uri for a in task.inlets] == [WATCHED.uri]
        assert task.outlets == []  # its default outlet is the watched Asset: it would trigger itself
    assert customers.inlets == [] and customers.outlets == [
        erpnet_asset("erpnet_default", "Crm_Sales_Customers")
    ]


def event(
    since: str, newest: str, column: str = "AggregateLastUpdateTimeUtc", entity_set: str = SO
) -> object:
    payload = ChangeEvent(
        "erpnet_default",
        entity_set,
        column,
        parse_instant(since),
        parse_instant(newest),
        1,
        dt.timedelta(minutes=5),
    ).to_payload()
    return SimpleNamespace(extra={"from_trigger": True, "payload": payload})


def test_only_change_events_of_the_set_and_column_make_the_window() -> None:
    context = {
        "triggering_asset_events": {
            WATCHED: [
                event("2026-07-01T08:00:00Z", "2026-07-01T08:10:00Z"),
                event("2026-07-01T08:10:00.0000001Z", "2026-07-01T08:20:00Z"),
                event("2026-07-01T07:00:00Z", "2026-07-01T09:00:00Z", column="CreationTime"),
                event("2026-07-01T07:00:00Z", "2026-07-01T09:00:00Z", entity_set="Crm_Sales_Customers"),
                SimpleNamespace(extra={"note": "an event some task emitted"}),
            ]
        }
    }
    changes = TriggeringChanges(context, SO, "AggregateLastUpdateTimeUtc")
    window = changes.window()
    assert (window.start, window.end) == (
        dt.datetime(2026, 7, 1, 7, 55, tzinfo=dt.timezone.utc),
        dt.datetime(2026, 7, 1, 8, 20, tzinfo=dt.timezone.utc),
    )
    assert len(TriggeringChanges(context, SO, None).by_asset) == 3  # any column, for acknowledging
    assert not TriggeringChanges({"triggering_asset_events": {}}, SO, "AggregateLastUpdateTimeUtc")
    assert not TriggeringChanges({}, SO, "AggregateLastUpdateTimeUtc")
