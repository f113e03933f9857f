"""Create the asset-triggered run the scheduler would create for a DAG, and print it as JSON.

Runs the scheduler's own code (``SchedulerJobRunner._create_dag_runs_asset_triggered``) on the
metadata DB named by the environment, so the run consumes exactly the Asset events the scheduler
would give it; the test then runs its task with ``airflow tasks test <dag> <task> <run_id>``.
Usage: ``python asset_triggered_run.py <dag_id>``.
"""

from __future__ import annotations

import json
import sys

from sqlalchemy import select


def main(dag_id: str) -> None:
    from airflow.jobs.job import Job
    from airflow.jobs.scheduler_job_runner import SchedulerJobRunner
    from airflow.models.dag import DagModel
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.types import DagRunType

    runner = SchedulerJobRunner(job=Job())
    with create_session() as session:
        dag_model = session.scalar(select(DagModel).where(DagModel.dag_id == dag_id))
        runner._create_dag_runs_asset_triggered(dag_models=[dag_model], session=session)
        session.flush()
        run = session.scalars(
            select(DagRun)
            .where(DagRun.dag_id == dag_id, DagRun.run_type == DagRunType.ASSET_TRIGGERED)
            .order_by(DagRun.id.desc())
        ).first()
        events = [event.extra for event in run.consumed_asset_events]
        print(json.dumps({"run_id": run.run_id, "events": events}))


if __name__ == "__main__":
    main(sys.argv[1])
