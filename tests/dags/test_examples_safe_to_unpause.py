"""Every example DAG, ours and any added later, is safe to unpause and says what unpausing does."""

from __future__ import annotations

import ast
from pathlib import Path

import pendulum
import pytest
from airflow.sdk import DAG, CronDataIntervalTimetable

from tests.dags.example_dags import example_dags, runs_on_unpause

MAX_RUNS_PER_DAG = 2
MAX_RUNS_IN_ALL = 5
DAGS = example_dags()


@pytest.mark.parametrize("dag_id", sorted(DAGS))
def test_unpausing_queues_at_most_a_couple_of_runs(dag_id: str) -> None:
    dag = DAGS[dag_id]
    assert dag.start_date is not None and dag.start_date.tzinfo is not None, "give an aware start_date"
    if dag.catchup:
        assert dag.end_date is not None, "catchup=True only with an end_date, so the backfill is bounded"
    assert runs_on_unpause(dag) <= MAX_RUNS_PER_DAG


def test_unpausing_every_example_queues_a_handful_of_runs() -> None:
    runs = {dag_id: runs_on_unpause(dag) for dag_id, dag in DAGS.items()}
    assert sum(runs.values()) <= MAX_RUNS_IN_ALL, runs


@pytest.mark.parametrize("dag_id", sorted(DAGS))
def test_the_docstring_says_what_unpausing_does(dag_id: str) -> None:
    source = Path(DAGS[dag_id].fileloc).read_text()
    docstring = ast.get_docstring(ast.parse(source)) or ""
    assert "unpaus" in docstring.lower(), f"{dag_id}: say in the module docstring what unpausing it does"
    if runs_on_unpause(DAGS[dag_id]):
        assert "nothing runs" not in " ".join(docstring.lower().split()), (
            f"{dag_id}: unpausing it queues a run at once (a trigger timetable with catchup=False runs "
            "its latest tick); the docstring says nothing runs"
        )


def test_the_count_sees_a_catch_up_storm() -> None:
    """The hourly example as it was: start date months back with catchup=True."""
    storm = DAG(
        "storm",
        schedule=CronDataIntervalTimetable("@hourly", timezone="UTC"),
        start_date=pendulum.now("UTC").subtract(days=30),
        catchup=True,
    )
    calm = DAG(
        "calm",
        schedule=CronDataIntervalTimetable("@hourly", timezone="UTC"),
        start_date=pendulum.now("UTC").subtract(days=30),
        catchup=False,
    )
    assert runs_on_unpause(storm) == 100
    assert runs_on_unpause(calm) == 1
