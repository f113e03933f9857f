"""The Asset-watcher example DAG end to end, with Airflow's real triggerer and metadata DB.

``airflow dags reserialize`` registers dags_examples/erpnet_sales_orders_on_change.py, which makes
its ``ErpNetChangesTrigger`` a trigger row; ``airflow triggerer`` runs it against the sandbox and
stores its events as Asset events; the scheduler's own code turns them into an asset-triggered
run, and ``airflow tasks test`` runs the extraction in that run. Then the triggerer is stopped,
orders change while none runs, and a new triggerer must report them: the restart guarantee.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_erpnet.changes.instants import format_instant, parse_instant
from airflow_provider_erpnet.io.convert import parse_timestamp
from airflow_provider_erpnet.sandbox import Sandbox
from tests.conftest import AIRFLOW_BIN

DAG_ID = "erpnet_sales_orders_on_change"
TASK_ID = "extract_changed_orders"
ASSET = "erpnet://erpnet_default/Crm_Sales_SalesOrders"
SO = "Crm_Sales_SalesOrders"
STAMP = "AggregateLastUpdateTimeUtc"
STATE_KEY = "erpnet.changes.since.AggregateLastUpdateTimeUtc"
UTC = dt.timezone.utc
RUN_HELPER = Path(__file__).with_name("asset_triggered_run.py")


def _stop_with_parent() -> None:
    """Linux: the triggerer gets SIGTERM when the test process dies, even by SIGKILL."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Triggerer:
    """``airflow triggerer`` in the background (no log server, so it binds no port)."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("a") as sink:
            self.process = subprocess.Popen(
                [AIRFLOW_BIN, "triggerer", "--skip-serve-logs"],
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                preexec_fn=_stop_with_parent,
            )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def alive(self) -> bool:
        return self.process.poll() is None


def wait_until(check: Callable[[], Any], what: str, triggerer: Triggerer, timeout: float = 420) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if not triggerer.alive() or time.monotonic() > deadline:
            triggerer.stop()
            raise AssertionError(
                f"{what} did not happen; triggerer log:\n{triggerer.log.read_text()[-6000:]}"
            )
        time.sleep(1)


# This test's own metadata DB (a copy of the freshly migrated one), set by ``own_home``: events
# and state of other tests' runs in the session's DB would otherwise reach the watched Asset.
DATABASE: list[Path] = []


def database() -> sqlite3.Connection:
    return sqlite3.connect(DATABASE[-1], timeout=30)


@pytest.fixture
def own_home(airflow_db: Path, tmp_path: Path) -> Iterator[dict[str, str]]:
    """Environment of an Airflow home of this test's own, its DB copied from ``pristine.db``."""
    home = tmp_path / "home"
    home.mkdir()
    shutil.copyfile(airflow_db / "pristine.db", home / "airflow.db")
    DATABASE.append(home / "airflow.db")
    yield {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
    }
    DATABASE.pop()


def change_events() -> list[dict[str, Any]]:
    with database() as db:
        rows = db.execute(
            # Watcher events only: extraction tasks of other tests may update the same Asset here.
            "SELECT e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id "
            "WHERE a.uri = ? AND e.source_task_id IS NULL ORDER BY e.id",
            (ASSET,),
        ).fetchall()
    return [json.loads(extra)["payload"] for (extra,) in rows]


def stored_start() -> str | None:
    with database() as db:
        row = db.execute("SELECT value FROM asset_state_store WHERE key = ?", (STATE_KEY,)).fetchone()
    return None if row is None else json.loads(row[0])


def extract(env: dict[str, str], out: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """An asset-triggered run made by the scheduler's code, its extraction run by tasks test."""
    made = subprocess.run(
        [sys.executable, str(RUN_HELPER), DAG_ID], env=env, capture_output=True, text=True, timeout=300
    )
    assert made.returncode == 0, made.stderr[-4000:]
    run = json.loads(made.stdout.strip().splitlines()[-1])
    before = set(out.rglob("*.jsonl"))
    result = subprocess.run(
        [AIRFLOW_BIN, "tasks", "test", DAG_ID, TASK_ID, run["run_id"]],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    (written,) = set(out.rglob("*.jsonl")) - before
    return run, [json.loads(line) for line in written.open()]


def rows_in(sandbox: Sandbox, event: dict[str, Any]) -> list[dict[str, Any]]:
    low = parse_timestamp(event["from"])
    high = parse_timestamp(event["to"])
    return [row for row in sandbox.dataset.rows(SO) if low <= parse_timestamp(row[STAMP]) <= high]


def assert_extracted_exactly(written: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    assert [row["Id"] for row in written] == [row["Id"] for row in expected]
    assert [parse_timestamp(row[STAMP]) for row in written] == [
        parse_timestamp(row[STAMP]) for row in expected
    ]
    assert [len(row["Lines"]) for row in written] == [len(row["Lines"]) for row in expected]


@pytest.mark.timeout(1800)  # five Airflow processes start in turn; slow on a loaded 2-core machine
def test_watcher_events_drive_extractions_and_survive_a_triggerer_restart(
    airflow_cli, own_home: dict[str, str], erpnet_sandbox_factory, tmp_path: Path
) -> None:
    sandbox = erpnet_sandbox_factory(scale=2000)
    out = tmp_path / "out"
    env = {
        **os.environ,
        **own_home,
        "AIRFLOW_CONN_ERPNET_DEFAULT": sandbox.connection_json(),
        "AIRFLOW_VAR_ERPNET_OUTPUT_DIR": str(out),
    }
    registered = airflow_cli("dags", "reserialize", env=env)
    assert registered.returncode == 0, registered.stderr[-3000:]
    assert change_events() == [] and stored_start() is None

    # Orders changed at instants after the watcher's first start (it starts at "now"), made
    # before the triggerer runs so its first poll finds them without waiting a poll interval.
    orders = sandbox.dataset.rows(SO)
    now = dt.datetime.now(UTC).replace(microsecond=0)
    first_batch = [orders[i]["Id"] for i in (3, 50, 700)]
    sandbox.touch(SO, first_batch, now + dt.timedelta(minutes=30))

    triggerer = Triggerer(env, tmp_path / "triggerer-1.log")
    try:
        (first,) = wait_until(change_events, "a first change event", triggerer)
        start = stored_start()
    finally:
        triggerer.stop()
    assert first["count"] == 3
    assert (
        first["newest"]
        == first["to"]
        == format_instant(parse_instant((now + dt.timedelta(minutes=30)).isoformat()))
    )
    assert first["since"] == start  # the watcher's first start, kept in the Asset's state store
    assert parse_instant(first["from"]) == parse_instant(first["since"]) - 300 * 10_000_000

    # While no triggerer runs, more orders change.
    gap_batch = [orders[i]["Id"] for i in (8, 999)]
    sandbox.touch(SO, gap_batch, now + dt.timedelta(minutes=40))

    # The extraction, fed the first event, reads exactly the rows of its window, and records
    # that everything up to the window's newest row is extracted.
    run, written = extract(env, out)
    assert [event["payload"] for event in run["events"]] == [first]
    expected = rows_in(sandbox, first)
    assert set(first_batch) <= {row["Id"] for row in expected}
    assert not set(gap_batch) & {row["Id"] for row in expected}
    assert_extracted_exactly(written, expected)
    assert stored_start() == format_instant(parse_instant(first["to"]) + 1)

    # A new triggerer resumes after the extracted window and reports the gap's changes.
    triggerer = Triggerer(env, tmp_path / "triggerer-2.log")
    try:
        events = wait_until(lambda: change_events()[1:], "a change event after the restart", triggerer)
    finally:
        triggerer.stop()
    (second,) = events
    assert second["since"] == format_instant(parse_instant(first["to"]) + 1)
    assert second["count"] == 2
    assert second["newest"] == format_instant(parse_instant((now + dt.timedelta(minutes=40)).isoformat()))
    # Its window holds the gap's rows (the extraction of a window is the same code as above).
    assert set(gap_batch) <= {row["Id"] for row in rows_in(sandbox, second)}
