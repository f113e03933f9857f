"""Incremental windows: an Airflow data interval -> an ERP.net ``$filter``.

ERP.net filters only with ``ge``/``le`` (no ``gt``/``lt``), so a window is closed on both ends:
``<column> ge <start - overlap> and <column> le <end>``. Consecutive runs therefore overlap by
``overlap`` (plus the boundary instant); the overlap is what catches rows committed late, as the
vendor recommends, and a downstream upsert by ``Id`` absorbs the repeated rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from airflow_provider_erpnet.client.errors import ErpNetConfigError
from airflow_provider_erpnet.client.literals import literal


@dataclass(frozen=True)
class Window:
    """A closed range ``[start, end]`` of ``column``; ``start`` already includes the overlap."""

    column: str
    start: dt.datetime
    end: dt.datetime
    overlap: dt.timedelta

    def filter(self) -> str:
        """The ``$filter`` selecting the window; ``literal()`` writes UTC with ``Z``."""
        return f"{self.column} ge {literal(self.start)} and {self.column} le {literal(self.end)}"

    def to_dict(self) -> dict[str, str | int | float]:
        """JSON-safe form for the manifest; ``overlap_seconds`` is a number (an int when whole)."""
        seconds = self.overlap.total_seconds()
        return {
            "column": self.column,
            "start": literal(self.start),
            "end": literal(self.end),
            "overlap_seconds": int(seconds) if seconds.is_integer() else seconds,
        }


def window_for(
    column: str, interval_start: dt.datetime, interval_end: dt.datetime, overlap: dt.timedelta
) -> Window:
    """The window for one data interval, widened backwards by ``overlap``."""
    check_overlap(overlap)
    if interval_end < interval_start:
        raise ErpNetConfigError(
            f"The data interval ends ({interval_end.isoformat()}) before it starts "
            f"({interval_start.isoformat()}); check the DAG's timetable."
        )
    return Window(column=column, start=interval_start - overlap, end=interval_end, overlap=overlap)


def check_overlap(overlap: Any) -> dt.timedelta:
    """``overlap`` if it is a ``timedelta`` >= 0; raises otherwise."""
    if not isinstance(overlap, dt.timedelta) or overlap < dt.timedelta(0):
        raise ErpNetConfigError(f"overlap must be a datetime.timedelta >= 0, got {overlap!r}.")
    return overlap


def window_from_context(context: Mapping[str, Any], column: str, overlap: dt.timedelta) -> Window:
    """The window of the running task's data interval.

    A run without a data interval (triggered without a logical date: ``airflow dags trigger``, the
    REST API) reads the interval its DAG's data-interval timetable gives a manual run at the moment
    it was triggered, as Airflow does for a run triggered with that logical date: for an hourly
    ``CronDataIntervalTimetable``, the last complete hour (see ``interval_at``). A DAG without such
    a timetable gets an error rather than a silent full export: an incremental task that suddenly
    reads the whole entity set can be very large, and its output would not be an interval's slice.
    An empty interval (start == end) is an error too: Airflow 3 turns a cron string or a timedelta
    into a trigger timetable, whose runs are instants, and consecutive instant windows would skip
    every row changed between them.
    """
    start = context.get("data_interval_start")
    end = context.get("data_interval_end")
    timetable = getattr(context.get("dag"), "timetable", None)
    if start is None or end is None:
        run_after = getattr(context.get("dag_run"), "run_after", None)
        inferred = interval_at(timetable, run_after) if run_after is not None else None
        if inferred is None:
            raise ErpNetConfigError(
                f"incremental_column={column!r} needs the run's data interval, but this run has none "
                "(it was triggered without a logical date) and the DAG's schedule has no data "
                "intervals to infer one from. Give the DAG a data-interval schedule (e.g. "
                "CronDataIntervalTimetable), trigger it with a logical date, or remove "
                "incremental_column to export the whole entity set."
            )
        start, end = inferred
    if start == end:
        timetable_name, schedule = _data_interval_schedule(timetable)
        raise ErpNetConfigError(
            f"incremental_column={column!r} needs a data interval, but this run's is empty (it starts "
            f"and ends at {start.isoformat()}): Airflow 3 makes runs of zero width for a cron string "
            "such as '@hourly', a timedelta, and manual runs of an unscheduled DAG, and consecutive "
            "empty windows would skip every change between them. Give the DAG data intervals: "
            f"`from airflow.sdk import {timetable_name}` and `schedule={schedule}`, or set [scheduler] "
            "create_cron_data_intervals = True (create_delta_data_intervals for a timedelta)."
        )
    return window_for(column, start, end, overlap)


def interval_at(timetable: Any, run_after: dt.datetime) -> tuple[dt.datetime, dt.datetime] | None:
    """The data interval ``timetable`` gives a run triggered at ``run_after`` with that logical date.

    Mirrors Airflow's ``infer_manual_data_interval``: a ``CronDataIntervalTimetable`` gives the last
    complete interval that ends at or before ``run_after``, a ``DeltaDataIntervalTimetable`` the
    delta that ends at ``run_after``. Any other timetable has no intervals to give (None). The
    timetable is read by its class name and attributes, so this module needs no Airflow import.
    """
    kind = type(timetable).__name__
    if kind == "DeltaDataIntervalTimetable":
        return run_after - timetable.delta, run_after
    if kind != "CronDataIntervalTimetable":
        return None
    from croniter import croniter  # installed with Airflow, which is what reads cron here

    zone = timetable.timezone
    zone = zone if isinstance(zone, dt.tzinfo) else ZoneInfo(str(zone))
    local = run_after.astimezone(zone).replace(tzinfo=None)  # croniter works on naive local times
    previous = croniter(timetable.expression, local).get_prev(dt.datetime)
    on_tick = croniter(timetable.expression, previous).get_next(dt.datetime) == local
    end = local if on_tick else previous
    start = croniter(timetable.expression, end).get_prev(dt.datetime)
    return start.replace(tzinfo=zone), end.replace(tzinfo=zone)


def _data_interval_schedule(timetable: Any) -> tuple[str, str]:
    """The data-interval timetable that runs when ``timetable`` does: its class name and a call.

    Airflow's trigger timetables are read by their attributes (``expression`` and ``timezone`` of
    a ``CronTriggerTimetable``, ``delta`` of a ``DeltaTriggerTimetable``) so this module needs no
    Airflow import; anything else gets the hourly example.
    """
    expression = getattr(timetable, "expression", None)
    if isinstance(expression, str):
        zone = getattr(getattr(timetable, "timezone", None), "name", "UTC")
        return "CronDataIntervalTimetable", f'CronDataIntervalTimetable("{expression}", timezone="{zone}")'
    delta = getattr(timetable, "delta", None)
    if isinstance(delta, dt.timedelta):
        return "DeltaDataIntervalTimetable", f"DeltaDataIntervalTimetable({delta!r})"
    return "CronDataIntervalTimetable", 'CronDataIntervalTimetable("@hourly", timezone="UTC")'


def and_filters(*filters: str | None) -> str | None:
    """AND the non-empty filters, each in parentheses so an inner ``and``/``in`` cannot regroup."""
    parts = [item.strip() for item in filters if item and item.strip()]
    if len(parts) <= 1:
        return parts[0] if parts else None
    return " and ".join(f"({part})" for part in parts)
