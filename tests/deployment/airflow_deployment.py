"""Airflow as a user deploys it: api-server, scheduler, dag-processor and triggerer as processes.

LocalExecutor and SQLite in a temporary ``AIRFLOW_HOME``. SQLite waits up to a minute for a lock
(its default 5 s fails requests on a busy machine) and keeps a write-ahead log, so the api-server's
reads never hold up the scheduler's writes. Every process binds 127.0.0.1 only: the
api-server on a port the OS picks (read back from its log), the scheduler's and triggerer's log
servers are off (the api-server reads task logs from disk). Each process runs in its own process
group, and ``stop()`` ends every group it started, task processes included.

Waits are generous and say what they waited for: the machine that runs this may be slow and busy.

A component that exits on SQLite's "database is locked" is started again, as Airflow's own
systemd units (``Restart=always``) or a Kubernetes pod would be: a session that read and then
writes while another process committed gets that error at once, whatever the lock wait
(SQLITE_BUSY_SNAPSHOT), and the scheduler does not retry it. Any other exit fails the wait.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import psutil
import requests

T = TypeVar("T")

AIRFLOW_BIN = str(Path(sys.executable).with_name("airflow"))
MAX_RESTARTS = 3
SQLITE_LOCKED = "database is locked"
STOP_GRACE_SECONDS = 60.0
SQLITE_LOCK_WAIT = 120
API_ATTEMPTS = 3
POLL_SECONDS = 2.0
_UVICORN_PORT = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")


class DeploymentError(AssertionError):
    """Something the deployment was waiting for did not happen; the message says what and shows logs."""


@dataclass
class Component:
    """One Airflow process of the deployment and the file its output goes to."""

    name: str
    args: tuple[str, ...]
    process: subprocess.Popen[bytes]
    log: Path
    log_start: int  # where this process's output begins in ``log`` (a restart appends)
    replaced: bool = False

    def tail(self, characters: int = 3000) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return text[-characters:]

    def output(self) -> str:
        """What this process (not an earlier one under the same name) wrote."""
        with self.log.open("rb") as log:
            log.seek(self.log_start)
            return log.read().decode(errors="replace")


class AirflowDeployment:
    """A fresh Airflow in ``home`` serving ``dags_folder``, with ``env`` added to every process.

    ``database``: an already migrated SQLite file to start from (copied), or None to migrate.
    """

    def __init__(
        self, home: Path, dags_folder: Path, env: Mapping[str, str], *, database: Path | None = None
    ) -> None:
        self.home = home
        self.database = database
        self.components: list[Component] = []
        self.restarts: list[str] = []  # names of the components started again, once per restart
        self._started = time.monotonic()
        self.api_url = ""
        self.session = requests.Session()
        inherited = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("AIRFLOW_", "AIRFLOW__")) and key != "XDG_CACHE_HOME"
        }
        self.env = {
            **inherited,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db?timeout={SQLITE_LOCK_WAIT}",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            # Two task processes at a time on a 2-core machine: more only makes every lock wait longer.
            "AIRFLOW__CORE__PARALLELISM": "2",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            # The DAG files do not change while the deployment runs: parse each once, not every 30 s.
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "3600",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            "AIRFLOW__API__EXPOSE_STACKTRACE": "True",  # a 500's cause in the answer the test shows
            # A busy machine answers slowly; the default 5 s makes task processes give up.
            "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "180",
            "XDG_CACHE_HOME": str(home / "cache"),
            **env,
        }

    @property
    def log_folder(self) -> Path:
        return self.home / "logs"

    def start(self, *, timeout: float = 300.0) -> AirflowDeployment:
        """Migrate (or copy) the database, start the api-server, then the other components."""
        self._started = time.monotonic()
        self.home.mkdir(parents=True, exist_ok=True)
        if self.database is not None:
            shutil.copyfile(self.database, self.home / "airflow.db")
        else:
            result = self.cli("db", "migrate", timeout=timeout)
            if result.returncode != 0:
                raise DeploymentError(
                    f"airflow db migrate failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
                )
        with closing(sqlite3.connect(self.home / "airflow.db")) as database:
            database.execute("PRAGMA journal_mode=WAL")  # kept in the file for every later connection
        api = self._spawn("api-server", "api-server", "--host", "127.0.0.1", "--port", "0", "--workers", "1")
        port = self.wait_for(
            "the api-server to log the port it listens on",
            lambda: _port_in(api),
            timeout=timeout,
        )
        self.api_url = f"http://127.0.0.1:{port}"
        self.env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] = f"{self.api_url}/execution/"
        self.wait_for("the api-server to answer /api/v2/version", self._api_answers, timeout=timeout)
        self._spawn("scheduler", "scheduler", "--skip-serve-logs")
        self._spawn("dag-processor", "dag-processor")
        self._spawn("triggerer", "triggerer", "--skip-serve-logs")
        return self

    def uptime(self) -> float:
        """Seconds since ``start`` began (database, processes, and everything since)."""
        return time.monotonic() - self._started

    def stop(self) -> list[str]:
        """SIGTERM every process group, SIGKILL what is left after a grace period; the names killed."""
        for component in self.components:
            _signal_group(component.process, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        killed = []
        for component in self.components:
            try:
                component.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                killed.append(component.name)
        for component in self.components:
            _signal_group(component.process, signal.SIGKILL)  # task processes left in the group, too
            component.process.wait()
        deadline = time.monotonic() + STOP_GRACE_SECONDS  # SIGKILLed processes end soon, not at once
        while self.groups_alive() and time.monotonic() < deadline:
            time.sleep(0.2)
        self.session.close()
        return killed

    def groups_alive(self) -> list[str]:
        """Components whose process group still has a running member.

        Zombies do not count: a task process orphaned by the SIGKILL is dead, but stays listed
        until whoever adopted it reaps it (in a container, PID 1 may never do so).
        """
        names = {component.process.pid: component.name for component in self.components}
        alive = set()
        for process in psutil.process_iter(["status"]):
            with suppress(ProcessLookupError):
                group = os.getpgid(process.pid)
                if group in names and process.info["status"] != psutil.STATUS_ZOMBIE:
                    alive.add(names[group])
        return sorted(alive)

    def __enter__(self) -> AirflowDeployment:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def api(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        """Call the REST API (``/api/v2`` + ``path``); a non-2xx answer raises with its body.

        SQLite can refuse a write ("database is locked") while another component holds the lock
        longer than the wait allows, which a slow shared machine makes likely; the request failed
        as a whole (rolled back), so it is sent again, as a user would.
        """
        for _ in range(API_ATTEMPTS):
            response = self.session.request(
                method, f"{self.api_url}/api/v2{path}", json=body, params=params or None, timeout=300
            )
            if not (response.status_code == 500 and "database is locked" in response.text):
                break
        if not response.ok:
            logs = f"\n{self.tails()}" if response.status_code >= 500 else ""
            raise DeploymentError(
                f"{method} {path} answered {response.status_code}: {response.text[:2000]}{logs}"
            )
        return response.json() if response.content else None

    def cli(self, *args: str, timeout: float = 300.0) -> subprocess.CompletedProcess[str]:
        """Run this venv's ``airflow`` CLI against the deployment."""
        return subprocess.run(
            [AIRFLOW_BIN, *args], env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )

    def wait_for(self, what: str, check: Callable[[], T | None], *, timeout: float) -> T:
        """Poll ``check`` until it returns something other than None or False; fail naming ``what``."""
        deadline = time.monotonic() + timeout
        while True:
            for component in self.running():
                if component.process.poll() is not None and self._restarted(component):
                    continue
                if component.process.poll() is not None:
                    raise DeploymentError(
                        f"Waiting for {what}: the {component.name} exited with "
                        f"{component.process.returncode}.\n{component.tail()}"
                    )
            value = check()
            if value is not None and value is not False:
                return value
            if time.monotonic() > deadline:
                raise DeploymentError(f"Gave up after {timeout:.0f} s waiting for {what}.\n{self.tails()}")
            time.sleep(POLL_SECONDS)

    def running(self) -> list[Component]:
        """The components as they run now (not those a restart replaced)."""
        return [component for component in self.components if not component.replaced]

    def _restarted(self, component: Component) -> bool:
        """Start an exited component again if SQLite's lock refusal ended it; whether it did."""
        if (
            component.name == "api-server"  # its port would change under the running tasks
            or len(self.restarts) >= MAX_RESTARTS
            or SQLITE_LOCKED not in component.output()[-5000:]  # the error it exited with
        ):
            return False
        component.replaced = True
        self.restarts.append(component.name)
        self._spawn(component.name, *component.args)
        return True

    def tails(self) -> str:
        return "\n".join(f"--- {c.name} (last lines)\n{c.tail(1500)}" for c in self.components)

    def _spawn(self, name: str, *args: str) -> Component:
        log = self.home / f"{name}.out"
        with log.open("ab") as out:
            start = out.tell()
            process = subprocess.Popen(
                [AIRFLOW_BIN, *args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        component = Component(name, args, process, log, start)
        self.components.append(component)
        return component

    def _api_answers(self) -> bool:
        try:
            return self.session.get(f"{self.api_url}/api/v2/version", timeout=30).ok
        except requests.RequestException:
            return False


def _port_in(component: Component) -> int | None:
    found = _UVICORN_PORT.search(component.tail(20_000))
    return int(found.group(1)) if found else None


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with suppress(ProcessLookupError):  # the whole group is gone already
        os.killpg(process.pid, sig)


@contextmanager
def timed() -> Iterator[Callable[[], float]]:
    """``with timed() as elapsed:`` then ``elapsed()`` seconds since the block began."""
    began = time.monotonic()
    yield lambda: time.monotonic() - began


def json_lines_after(output: str) -> Any:
    """The JSON document a CLI printed last (``-o json``), skipping log lines before it."""
    for line in reversed(output.strip().splitlines()):
        if line.startswith(("[", "{")):
            return json.loads(line)
    raise ValueError(f"no JSON in the CLI output:\n{output[-2000:]}")
