"""The example DAGs as Airflow parses them, and what unpausing each one would queue."""

from __future__ import annotations

import datetime as dt
from typing import Any

from tests.conftest import REPO

EXAMPLES = REPO / "dags_examples"


def example_dags() -> dict[str, Any]:
    """Every DAG in dags_examples/ by id, parsed the way the dag-processor parses them."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(EXAMPLES))
    assert not bag.import_errors, bag.import_errors
    return dict(bag.dags)


def runs_on_unpause(dag: Any, *, cap: int = 100) -> int:
    """How many runs the scheduler creates for ``dag`` unpaused now (counted up to ``cap``).

    Walks the DAG's timetable the way the scheduler does (Airflow's core timetable, with the DAG's
    start_date, end_date and catchup; without catchup it reads the clock itself), so a catch-up
    storm shows as ``cap``.
    """
    now = dt.datetime.now(dt.timezone.utc)
    from airflow.serialization.encoders import coerce_to_core_timetable
    from airflow.timetables.base import TimeRestriction

    timetable = coerce_to_core_timetable(dag.timetable)
    restriction = TimeRestriction(earliest=dag.start_date, latest=dag.end_date, catchup=dag.catchup)
    last = None
    for count in range(cap):
        info = timetable.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)
        if info is None or info.run_after is None or info.run_after > now:
            return count
        last = info.data_interval
    return cap
