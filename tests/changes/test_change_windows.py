"""Parse-time wiring of extractions under an Asset watcher, and which triggering events count.

The whole path (triggerer, scheduler, task) runs in test_asset_watcher.py; here the DAG is built
in process and the triggering events are the objects Airflow hands a task (``.extra``)."""

from __future__ import annotations

import datetime as dt
import logging
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


COLUMN = "AggregateLastUpdateTimeUtc"
RUN_AFTER = dt.datetime(2026, 7, 1, 9, 0, tzinfo=dt.timezone.utc)


class StateStore:
    """The watched Asset's state store as a task sees it (``context["asset_state_store"][asset]``)."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    def __getitem__(self, asset: Asset) -> StateStore:
        assert asset.uri == WATCHED.uri, asset
        return self

    def get(self, key: str, default: object = None) -> object:
        return self.values.get(key, default)

    def set(self, key: str, value: str) -> None:
        self.values[key] = value


def run_context(schedule: object, store: StateStore | None, *events: object) -> dict[str, object]:
    """What a task of a DAG scheduled on ``schedule`` gets in a run that ``events`` triggered."""
    with DAG("pending", schedule=schedule, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
        pass
    context: dict[str, object] = {
        "dag": dag,
        "dag_run": SimpleNamespace(run_after=RUN_AFTER),
        "triggering_asset_events": {WATCHED: list(events)} if events else {},
    }
    if store is not None:
        context["asset_state_store"] = store
    return context


def test_a_run_no_change_event_triggered_reads_what_the_watcher_would_report_next() -> None:
    """A manual run, or one another task's event triggered: from the stored starting point on."""
    store = StateStore({"erpnet.changes.since.AggregateLastUpdateTimeUtc": "2026-07-01T08:20:00Z"})
    for events in ((), (SimpleNamespace(extra={"rows": 10, "entity_set": SO}),)):
        changes = TriggeringChanges(run_context([WATCHED], store, *events), SO, COLUMN)
        assert changes.pending
        window = changes.window()
        assert (window.column, window.start, window.end) == (
            COLUMN,
            dt.datetime(2026, 7, 1, 8, 15, tzinfo=dt.timezone.utc),  # the watcher's 5 minutes of overlap
            RUN_AFTER,
        )
    changes.acknowledge(run_context([WATCHED], store), logging.getLogger(__name__))
    assert store.values["erpnet.changes.since.AggregateLastUpdateTimeUtc"] == "2026-07-01T09:00:00.0000001Z"


def test_before_the_watcher_first_ran_a_run_reads_the_overlap_before_it_was_triggered() -> None:
    for store in (StateStore({}), None):
        window = TriggeringChanges(run_context([WATCHED], store), SO, COLUMN).window()
        assert (window.start, window.end) == (RUN_AFTER - dt.timedelta(minutes=5), RUN_AFTER)


def test_a_stored_point_after_run_after_gives_no_inverted_window() -> None:
    store = StateStore({"erpnet.changes.since.AggregateLastUpdateTimeUtc": "2026-07-01T10:00:00Z"})
    window = TriggeringChanges(run_context([WATCHED], store), SO, COLUMN).window()
    assert (window.start, window.end) == (RUN_AFTER - dt.timedelta(minutes=5), RUN_AFTER)


def test_only_a_dag_watching_the_set_on_the_column_reads_pending_changes() -> None:
    store = StateStore({"erpnet.changes.since.AggregateLastUpdateTimeUtc": "2026-07-01T08:20:00Z"})
    assert not TriggeringChanges(run_context(None, store), SO, COLUMN)  # the timetable decides
    assert not TriggeringChanges(run_context([WATCHED], store), "Crm_Sales_Customers", COLUMN)
    assert not TriggeringChanges(run_context([WATCHED], store), SO, "CreationTime")
    assert not TriggeringChanges(run_context([WATCHED], store), SO, None)  # a full extraction
