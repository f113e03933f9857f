"""Test harness: an isolated Airflow home (SQLite, migrated once), the sandbox fixtures, and a
runner for ``airflow dags test``.

The environment is set at import time, before anything imports Airflow, because Airflow reads
its configuration when it is first imported.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="erpnet-airflow-home-"))

os.environ.update(
    {
        "AIRFLOW_HOME": str(AIRFLOW_HOME),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{AIRFLOW_HOME}/airflow.db",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags_examples"),
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        # Token file cache of the client: keep tests away from the user's ~/.cache.
        "XDG_CACHE_HOME": str(AIRFLOW_HOME / "cache"),
    }
)
os.environ.pop("AIRFLOW_CONN_ERPNET_DEFAULT", None)

pytest_plugins = (
    ["airflow_provider_erpnet.sandbox.pytest_plugin"]
    if (REPO / "airflow_provider_erpnet/sandbox/pytest_plugin.py").exists()
    else []
) + ["tests.hostile.summary"]

AIRFLOW_BIN = str(Path(sys.executable).with_name("airflow"))


def run_airflow(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    """Run the ``airflow`` CLI of this venv with the test home plus ``env``; output captured."""
    return subprocess.run(
        [AIRFLOW_BIN, *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(AIRFLOW_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Migrate the SQLite metadata DB once per test session.

    A copy of the freshly migrated DB stays beside it as ``pristine.db``, for tests that start a
    fresh Airflow deployment of their own (no runs of other tests in it) without migrating again.
    """
    result = run_airflow("db", "migrate")
    if result.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    shutil.copyfile(AIRFLOW_HOME / "airflow.db", AIRFLOW_HOME / "pristine.db")
    return AIRFLOW_HOME


@pytest.fixture
def airflow_cli(airflow_db: Path) -> Callable[..., subprocess.CompletedProcess]:
    """``airflow_cli(*args, env=...)`` runs this venv's ``airflow`` with the migrated test home."""
    return run_airflow


DagTest = Callable[..., subprocess.CompletedProcess]


@pytest.fixture
def dag_test(airflow_db: Path) -> Iterator[DagTest]:
    """``dag_test(dag_id, env=..., logical_date=None)`` runs ``airflow dags test`` and checks it passed."""

    def run(
        dag_id: str, *, env: dict[str, str], logical_date: str | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess:
        args = ["dags", "test", dag_id] + ([logical_date] if logical_date else [])
        result = run_airflow(*args, env=env, timeout=timeout)
        if result.returncode != 0:
            output = result.stdout + result.stderr
            raise AssertionError(
                f"airflow dags test {dag_id} failed (exit {result.returncode}):\n{output[-6000:]}"
            )
        return result

    yield run
