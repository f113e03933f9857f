"""Every example DAG under a real deployment, triggered every way a user triggers it.

api-server, scheduler, dag-processor and triggerer run as processes (LocalExecutor, SQLite, a
temporary AIRFLOW_HOME) against the sandbox. Each example is triggered through the REST API with
and without a logical date and with ``airflow dags trigger`` (no date); the hourly example once
more for an hour without data, and a test-only DAG whose template a run without a logical date
cannot fill; then every DAG is unpaused (the scheduler may queue what an unpause queues). Then: every example
run succeeded, the template error is the last thing its task log shows (after Airflow's
"Pre Execute" group), each extraction wrote as many rows as ``$count`` says (and, where the
data is known, as the sandbox holds), Asset events exist for extractions with rows and not for the
empty window (nor for the change-driven example's, which never updates the Asset it watches; its
runs that no change event triggered, manual ones and those the hourly example's events trigger,
read what the watcher would report next), all runs shared one token, no task log holds the
secret or a token, unpausing queued at most a handful of runs, and every process the test
started is gone.
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from airflow.sdk import Asset

from airflow_provider_erpnet.io.convert import parse_timestamp
from airflow_provider_erpnet.operators.odata import ErpNetODataOperator
from airflow_provider_erpnet.sandbox import DEFAULT_SECRET, Sandbox
from tests.dags.example_dags import EXAMPLES, example_dags
from tests.deployment.airflow_deployment import AirflowDeployment, json_lines_after, timed

HOURLY = "erpnet_hourly_sales_orders"
UNRENDERABLE = "erpnet_test_unrenderable"
UNRENDERABLE_DAG = f"""
import pendulum
from airflow.sdk import dag
from airflow_provider_erpnet.operators.odata import ErpNetODataOperator


@dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False)
def {UNRENDERABLE}() -> None:
    ErpNetODataOperator(
        task_id="customers", entity_set="Crm_Sales_Customers", output_path="/tmp/{{{{ ds }}}}/c.jsonl"
    )


{UNRENDERABLE}()
"""
MAX_RUNS_ON_UNPAUSE = 5
RUNS_TIMEOUT = 900.0
# The test needs about 230 CPU seconds, over 9 minutes on a loaded 2-core machine (pytest's
# default 600 s bound); the waits inside name what they waited for and end it before this does.
pytestmark = pytest.mark.timeout(1800)


@dataclass(frozen=True)
class Trigger:
    dag_id: str
    run_id: str
    how: str  # "REST, no date", "REST, <date>", "CLI, no date"


@pytest.fixture
def deployment(airflow_db: Path, erpnet_sandbox: Sandbox, tmp_path: Path) -> Iterator[AirflowDeployment]:
    env = {
        "AIRFLOW_CONN_ERPNET_DEFAULT": erpnet_sandbox.connection_json(),
        "AIRFLOW_VAR_ERPNET_OUTPUT_DIR": str(tmp_path / "out"),
    }
    dags_folder = tmp_path / "dags"
    shutil.copytree(EXAMPLES, dags_folder, ignore=shutil.ignore_patterns("__pycache__"))
    (dags_folder / f"{UNRENDERABLE}.py").write_text(UNRENDERABLE_DAG)
    deployment = AirflowDeployment(tmp_path / "home", dags_folder, env, database=airflow_db / "pristine.db")
    try:
        yield deployment.start()
    finally:
        killed = deployment.stop()
        assert deployment.groups_alive() == [], "a process group of the deployment outlived stop()"
        print(f"deployment stopped; needed SIGKILL: {killed or 'none'}")


def test_every_example_runs_under_a_real_deployment(
    deployment: AirflowDeployment, erpnet_sandbox: Sandbox
) -> None:
    with timed() as elapsed:
        dags = example_dags()
        dag_ids = [*dags, UNRENDERABLE]
        deployment.wait_for(
            f"the dag-processor to parse the {len(dag_ids)} DAGs",
            lambda: set(dag_ids) <= {d["dag_id"] for d in deployment.api("GET", "/dags", limit=100)["dags"]},
            timeout=600,
        )
        assert deployment.api("GET", "/importErrors")["total_entries"] == 0
        # Triggered first, then unpaused: a dated run for the hour the unpause would schedule
        # already exists, and the scheduler skips it (the other way round the trigger gets a 409).
        triggers = _trigger_every_way(deployment, dags, erpnet_sandbox)
        unrenderable = deployment.api("POST", f"/dags/{UNRENDERABLE}/dagRuns", {"logical_date": None})
        triggers.append(Trigger(UNRENDERABLE, unrenderable["dag_run_id"], "REST, no date"))
        for dag_id in dag_ids:
            deployment.api("PATCH", f"/dags/{dag_id}", {"is_paused": False})
        all_runs = deployment.wait_for(
            f"{len(triggers)} triggered runs (and any the unpause queued) to finish",
            lambda: _finished_runs(deployment, dag_ids, triggers),
            timeout=RUNS_TIMEOUT,
        )
        runs = [run for run in all_runs if run["dag_id"] != UNRENDERABLE]
        failed = [
            f"{run['dag_id']} {run['dag_run_id']}: {run['state']}"
            for run in runs
            if run["state"] != "success"
        ]
        assert not failed, "\n".join(failed) + "\n" + _failed_task_logs(deployment)
        _check_the_error_ends_the_log(deployment, all_runs)

        extractions = _check_extractions(deployment, dags, runs, erpnet_sandbox)
        empty = [x for x in extractions if x["run_id"] == _run_of(triggers, HOURLY, "REST, empty hour")]
        assert [(x["rows"], x["events"]) for x in empty] == [(0, 0)], empty

        tokens = erpnet_sandbox.stats()["tokens_issued"]
        assert tokens == 1, f"{tokens} tokens issued for {len(runs)} runs"
        leaks = _leaks(deployment)
        assert leaks == [], leaks
        unpause_runs = [run for run in runs if run["run_type"] in ("scheduled", "backfill")]
        assert len(unpause_runs) <= MAX_RUNS_ON_UNPAUSE, unpause_runs
    rows = sum(x["rows"] for x in extractions)
    triggered = sum(1 for t in triggers if t.dag_id != UNRENDERABLE)
    print(
        f"\nREAL DEPLOYMENT: {len(dags)} example DAGs, {len(runs)} runs ({triggered} triggered, "
        f"{len(unpause_runs)} queued by unpausing), all succeeded; {len(extractions)} extractions, "
        f"{rows} rows, each equal to $count; {sum(1 for x in extractions if x['events'])} Asset events, "
        f"none for the empty window; {tokens} token issued; {len(leaks)} leaks in "
        f"{sum(1 for _ in deployment.log_folder.rglob('*.log'))} log files; {elapsed():.0f} s from the first "
        f"API call, {deployment.uptime():.0f} s since the deployment started; components started again "
        f"after SQLite refused a write: {deployment.restarts or 'none'}"
    )


def _trigger_every_way(
    deployment: AirflowDeployment, dags: dict[str, Any], sandbox: Sandbox
) -> list[Trigger]:
    triggers = []
    for dag_id in dags:
        for how, logical_date in (("REST, no date", None), ("REST, date", _logical_date(dag_id, sandbox))):
            run = deployment.api("POST", f"/dags/{dag_id}/dagRuns", {"logical_date": logical_date})
            label = how if logical_date is None else f"REST, {logical_date}"
            triggers.append(Trigger(dag_id, run["dag_run_id"], label))
    run = deployment.api(
        "POST", f"/dags/{HOURLY}/dagRuns", {"logical_date": _empty_hour_end(dags[HOURLY], sandbox)}
    )
    triggers.append(Trigger(HOURLY, run["dag_run_id"], "REST, empty hour"))
    for dag_id in dags:
        result = deployment.cli("dags", "trigger", dag_id, "--output", "json")
        assert result.returncode == 0, (
            f"airflow dags trigger {dag_id}:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
        )
        (created,) = json_lines_after(result.stdout)
        assert created["logical_date"] is None, created
        triggers.append(Trigger(dag_id, created["dag_run_id"], "CLI, no date"))
    return triggers


def _logical_date(dag_id: str, sandbox: Sandbox) -> str:
    """A date whose run has data: for the hourly example, the end of the hour of the latest order."""
    if dag_id != HOURLY:
        return dt.datetime.now(dt.timezone.utc).isoformat()
    latest = max(
        parse_timestamp(row["AggregateLastUpdateTimeUtc"])
        for row in sandbox.dataset.rows("Crm_Sales_SalesOrders")
    )
    return (latest.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)).isoformat()


def _empty_hour_end(dag: Any, sandbox: Sandbox) -> str:
    """The end of the latest hour after the DAG's start_date whose window holds no sales order.

    (Before start_date Airflow would create the run without its task.)
    """
    stamps = sorted(
        parse_timestamp(row["AggregateLastUpdateTimeUtc"])
        for row in sandbox.dataset.rows("Crm_Sales_SalesOrders")
    )
    end = dt.datetime.now(dt.timezone.utc).replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=2)
    while end - dt.timedelta(hours=1) >= dag.start_date:
        start = end - dt.timedelta(hours=1, minutes=5)
        if bisect.bisect_right(stamps, end) == bisect.bisect_left(stamps, start):
            return end.isoformat()
        end -= dt.timedelta(hours=1)
    raise AssertionError("no hour without sales orders since the example's start_date")


def _run_of(triggers: list[Trigger], dag_id: str, how: str) -> str:
    (run_id,) = [t.run_id for t in triggers if t.dag_id == dag_id and t.how == how]
    return run_id


def _finished_runs(
    deployment: AirflowDeployment, dag_ids: list[str], triggers: list[Trigger]
) -> list[dict[str, Any]] | None:
    page = deployment.api("GET", "/dags/~/dagRuns", limit=100)  # every DAG's runs in one call
    assert page["total_entries"] <= 100, "more runs than one page holds: page through them"
    runs = [run for run in page["dag_runs"] if run["dag_id"] in dag_ids]
    seen = {(run["dag_id"], run["dag_run_id"]) for run in runs}
    if not {(t.dag_id, t.run_id) for t in triggers} <= seen:
        return None
    if any(run["state"] not in ("success", "failed") for run in runs):
        return None
    return runs


def _check_extractions(
    deployment: AirflowDeployment, dags: dict[str, Any], runs: list[dict[str, Any]], sandbox: Sandbox
) -> list[dict[str, Any]]:
    """Each operator task's manifest against $count and the sandbox, and its Asset events."""
    checked = []
    for run in runs:
        dag = dags[run["dag_id"]]
        for task in dag.tasks:
            if not isinstance(task, ErpNetODataOperator) or task.output_path is None:
                continue
            path = (
                f"/dags/{dag.dag_id}/dagRuns/{quote(run['dag_run_id'], safe='')}/taskInstances/{task.task_id}"
            )
            manifest = deployment.api("GET", f"{path}/xcomEntries/return_value")["value"]
            manifest = json.loads(manifest) if isinstance(manifest, str) else manifest
            label = f"{dag.dag_id} {run['dag_run_id']} {task.task_id}"
            assert manifest["rows"] == manifest["server_count"], (label, manifest)
            expected = _expected_rows(manifest, sandbox)
            if expected is not None:
                assert manifest["rows"] == expected, (label, manifest["rows"], expected)
            events = deployment.api(
                "GET",
                "/assets/events",
                source_dag_id=dag.dag_id,
                source_run_id=run["dag_run_id"],
                source_task_id=task.task_id,
            )["total_entries"]
            # An extraction of a set its DAG watches updates no Asset (it would trigger itself).
            updates = any(isinstance(outlet, Asset) for outlet in task.outlets)
            assert events == (1 if manifest["rows"] and updates else 0), (label, manifest["rows"], events)
            checked.append(
                {"run_id": run["dag_run_id"], "task": label, "rows": manifest["rows"], "events": events}
            )
    return checked


def _expected_rows(manifest: dict[str, Any], sandbox: Sandbox) -> int | None:
    """Rows the sandbox holds for the manifest's query, when it is a full set or a window alone."""
    rows = sandbox.dataset.rows(manifest["entity_set"])
    window = manifest.get("window")
    if window is None:
        return None if "filter" in manifest["query"] else len(rows)
    if (
        manifest["query"]["filter"]
        != f"{window['column']} ge {window['start']} and {window['column']} le {window['end']}"
    ):
        return None
    start, end = parse_timestamp(window["start"]), parse_timestamp(window["end"])
    return sum(1 for row in rows if start <= parse_timestamp(row[window["column"]]) <= end)


def _leaks(deployment: AirflowDeployment) -> list[str]:
    """Log files (task logs and the components' own) that contain the secret or an issued token."""
    tokens = [
        json.loads(path.read_text())["access_token"] for path in (deployment.home / "cache").rglob("*.json")
    ]
    assert tokens, "the token file cache holds no token: the leak check would prove nothing"
    needles = [DEFAULT_SECRET, *tokens]
    files = [*deployment.log_folder.rglob("*.log"), *(c.log for c in deployment.components)]
    return [
        str(path) for path in files if any(needle in path.read_text(errors="replace") for needle in needles)
    ]


def _check_the_error_ends_the_log(deployment: AirflowDeployment, runs: list[dict[str, Any]]) -> None:
    """The unrenderable template fails its task with the operator's message after "Pre Execute"."""
    (run,) = [run for run in runs if run["dag_id"] == UNRENDERABLE]
    assert run["state"] == "failed", run
    (log,) = deployment.log_folder.glob(f"dag_id={UNRENDERABLE}/run_id=*/task_id=customers/attempt=1.log")
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    events = [record.get("event") for record in records]
    message = "A templated argument could not be rendered for this run: 'ds' is undefined"
    failures = [
        i
        for i, record in enumerate(records)
        if record.get("event") == "Task failed with exception" and message in json.dumps(record)
    ]
    assert failures, log.read_text()[-3000:]
    assert events.index("::group::Pre Execute") < events.index("::endgroup::") < failures[0], events


def _failed_task_logs(deployment: AirflowDeployment) -> str:
    logs = sorted(deployment.log_folder.glob("dag_id=*/run_id=*/task_id=*/*.log"))
    failing = [path for path in logs if '"level":"error"' in path.read_text(errors="replace")]
    return "\n".join(f"--- {path}\n{path.read_text(errors='replace')[-3000:]}" for path in failing[:3])
