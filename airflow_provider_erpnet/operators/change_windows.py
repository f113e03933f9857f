"""Windows taken from the change events that triggered a run, and their acknowledgement.

A DAG scheduled on an Asset watched by ``ErpNetChangesTrigger`` runs without a data interval; its
extraction reads the window the triggering events carry instead (``changes.events.window_of``:
from the earliest ``from`` to the latest ``to``; events of one watcher are contiguous, so every
change after the first event's ``since`` is inside). After the output is committed, the operator
moves the watcher's starting point in the Asset's state store to just after the window's newest
row: a watcher that restarts later resumes from there, so a window is never skipped, whatever
happened to the events in between (see ``triggers.erpnet``).

Wiring happens when the DAG is parsed: an extraction of the watched entity set gets the watched
Asset as an inlet (which is what lets its task write that Asset's state) and never as an outlet
(an extraction that updated the Asset it is scheduled on would trigger itself forever).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator, Mapping
from typing import Any

from airflow.sdk import Asset, BaseOperator

from airflow_provider_erpnet.changes.events import ChangeEvent, is_change_payload, window_of
from airflow_provider_erpnet.changes.instants import format_instant, from_datetime, parse_instant
from airflow_provider_erpnet.operators.windows import Window
from airflow_provider_erpnet.triggers.erpnet import ErpNetChangesTrigger, state_key

log = logging.getLogger(__name__)


def watched_assets(dag: Any, entity_set: str) -> list[Asset]:
    """Assets the DAG is scheduled on whose watchers poll ``entity_set`` with ``ErpNetChangesTrigger``."""
    condition = getattr(getattr(dag, "timetable", None), "asset_condition", None)
    return [asset for asset in _assets_in(condition) if _change_triggers(asset, entity_set)]


def _change_triggers(asset: Asset, entity_set: str) -> list[ErpNetChangesTrigger]:
    """The ``ErpNetChangesTrigger`` watchers of ``asset`` that poll ``entity_set``."""
    triggers = [watcher.trigger for watcher in asset.watchers]
    return [t for t in triggers if isinstance(t, ErpNetChangesTrigger) and t.entity_set == entity_set]


def _assets_in(condition: Any) -> Iterator[Asset]:
    """The Assets of a schedule condition, through any nesting of ``&`` and ``|``."""
    if isinstance(condition, Asset):
        yield condition
    for inner in getattr(condition, "objects", None) or ():
        yield from _assets_in(inner)


def wire_change_assets(task: BaseOperator, entity_set: str) -> None:
    """Make each watched Asset of ``entity_set`` an inlet of ``task`` and drop it from its outlets."""
    if not task.has_dag():  # an operator made outside a DAG has no schedule to look at
        return
    for asset in watched_assets(task.dag, entity_set):
        task.outlets = [o for o in task.outlets if not (isinstance(o, Asset) and o.uri == asset.uri)]
        if not any(isinstance(i, Asset) and i.uri == asset.uri for i in task.inlets):
            task.inlets = [*task.inlets, asset]


class TriggeringChanges:
    """The change events of ``entity_set`` (on ``column``, or any) among the run's triggering events.

    A run of a DAG watching ``entity_set`` on ``column`` that no change event triggered (triggered
    by hand, with or without a logical date, or by another task's event on the watched Asset) gets
    the event the watcher would send next instead: its changes from the watcher's starting point
    to the moment the run was triggered (``pending``).
    """

    def __init__(self, context: Mapping[str, Any], entity_set: str, column: str | None) -> None:
        self.by_asset: list[tuple[Any, ChangeEvent]] = list(_events(context, entity_set, column))
        self.pending = False
        if not self.by_asset and column is not None:
            self.by_asset = list(_pending(context, entity_set, column))
            self.pending = bool(self.by_asset)

    def __bool__(self) -> bool:
        return bool(self.by_asset)

    def window(self) -> Window:
        return window_of(event for _, event in self.by_asset)

    def acknowledge(self, context: Mapping[str, Any], logger: logging.Logger | logging.LoggerAdapter) -> None:
        """Move each watched Asset's starting point past the newest row of the committed window."""
        stores = context.get("asset_state_store")
        newest: dict[tuple[str, str], tuple[Any, int]] = {}
        for asset, event in self.by_asset:
            current = newest.get((asset.uri, event.column))
            if current is None or event.next_since > current[1]:
                newest[asset.uri, event.column] = (asset, event.next_since)
        for (_, column), (asset, next_since) in newest.items():
            key = state_key(column)
            try:
                store = stores[Asset(name=asset.name, uri=asset.uri)]
            except (KeyError, TypeError):
                logger.warning(
                    "Cannot record that the window up to %s is extracted: the Asset %s is not an inlet of "
                    "this task (needs Airflow 3.3+). After a triggerer restart its watcher replays "
                    "windows since its first start.",
                    format_instant(next_since - 1),
                    asset.uri,
                )
                continue
            stored = store.get(key)
            if isinstance(stored, str) and parse_instant(stored, what=key) >= next_since:
                continue
            store.set(key, format_instant(next_since))
            logger.info(
                "%s: watcher of %s resumes from %s after a restart.",
                key,
                asset.uri,
                format_instant(next_since),
            )


def _events(
    context: Mapping[str, Any], entity_set: str, column: str | None
) -> Iterator[tuple[Any, ChangeEvent]]:
    triggering = context.get("triggering_asset_events") or {}
    for asset, events in triggering.items():
        for event in events:
            payload = (getattr(event, "extra", None) or {}).get("payload")
            if not is_change_payload(payload) or payload["entity_set"] != entity_set:
                continue
            if column is None or payload["column"] == column:
                yield asset, ChangeEvent.from_payload(payload)


def _pending(context: Mapping[str, Any], entity_set: str, column: str) -> Iterator[tuple[Any, ChangeEvent]]:
    """Per watched Asset, the event covering its changes from the watcher's starting point to run_after.

    The starting point is the one a restarted watcher resumes from (the Asset's state store).
    Without one (the watcher has not run yet, or Airflow before 3.3) nothing is pending: the
    window is the watcher's overlap before run_after.
    """
    run_after = getattr(context.get("dag_run"), "run_after", None)
    if run_after is None:
        return
    newest = from_datetime(run_after)
    for asset in watched_assets(context.get("dag"), entity_set):
        for trigger in _change_triggers(asset, entity_set):
            if trigger.column != column:
                continue
            stored = _stored_since(context, asset, column)
            since = newest if stored is None else min(stored, newest)
            yield (
                asset,
                ChangeEvent(
                    erpnet_conn_id=trigger.erpnet_conn_id,
                    entity_set=entity_set,
                    column=column,
                    since=since,
                    newest=newest,
                    count=0,
                    overlap=dt.timedelta(seconds=trigger.overlap_seconds),
                ),
            )
            break


def _stored_since(context: Mapping[str, Any], asset: Asset, column: str) -> int | None:
    key = state_key(column)
    try:
        stored = context["asset_state_store"][Asset(name=asset.name, uri=asset.uri)].get(key)
    except (KeyError, TypeError):
        return None
    return parse_instant(stored, what=key) if isinstance(stored, str) else None
