"""Tasks in separate processes on one machine share one token through the file cache.

Each worker is a fresh Python process (as Airflow task processes are): it builds a Transport,
waits for a common start signal, then fetches a token and makes one API GET. The sandbox counts
the tokens it issued.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from subprocess import PIPE

from airflow_provider_erpnet.sandbox import DEFAULT_CLIENT_ID, DEFAULT_SECRET, Sandbox

WORKERS = 20

WORKER = """
import json, os, sys, time
from pathlib import Path

from airflow_provider_erpnet.client.settings import ErpNetSettings
from airflow_provider_erpnet.client.transport import Transport

settings = ErpNetSettings(
    instance_url=os.environ["ERPNET_TEST_URL"],
    client_id=os.environ["ERPNET_TEST_CLIENT_ID"],
    client_secret=os.environ["ERPNET_TEST_SECRET"],
    disk_cache=os.environ["ERPNET_TEST_FILE_CACHE"] == "1",
    disk_cache_dir=os.environ["ERPNET_TEST_CACHE_DIR"],
)
go = Path(os.environ["ERPNET_TEST_GO"])
with Transport(settings) as transport:
    transport.auth.token_endpoint  # discovery before the start line, so the race is about tokens
    Path(os.environ["ERPNET_TEST_READY"], str(os.getpid())).touch()
    deadline = time.monotonic() + 60
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.005)
    transport.auth.token()
    transport.get_json("Crm_Sales_Customers", {"$top": "1"}, entity_set="Crm_Sales_Customers")
    print(json.dumps({"tokens_requested": transport.auth.tokens_requested}))
"""


def run_workers(sandbox: Sandbox, tmp_path: Path, *, file_cache: bool) -> list[dict[str, int]]:
    """Start WORKERS processes, release them together, return what each printed."""
    ready, go = tmp_path / "ready", tmp_path / "go"
    ready.mkdir()
    env = {
        **os.environ,
        "ERPNET_TEST_URL": sandbox.base_url,
        "ERPNET_TEST_CLIENT_ID": DEFAULT_CLIENT_ID,
        "ERPNET_TEST_SECRET": DEFAULT_SECRET,
        "ERPNET_TEST_FILE_CACHE": "1" if file_cache else "0",
        "ERPNET_TEST_CACHE_DIR": str(tmp_path / "tokens"),
        "ERPNET_TEST_GO": str(go),
        "ERPNET_TEST_READY": str(ready),
    }
    workers = [
        subprocess.Popen([sys.executable, "-c", WORKER], env=env, stdout=PIPE, stderr=PIPE)
        for _ in range(WORKERS)
    ]
    try:
        wait_for(lambda: len(list(ready.iterdir())) == WORKERS or any(w.poll() is not None for w in workers))
        go.touch()
        outputs = [worker.communicate(timeout=90) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    failures = [err.decode() for (_, err), w in zip(outputs, workers, strict=True) if w.returncode != 0]
    assert failures == []
    return [json.loads(out) for out, _ in outputs]


def wait_for(condition: Callable[[], bool], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "workers did not get ready in time"
        time.sleep(0.02)


def test_twenty_processes_share_one_token(erpnet_sandbox: Sandbox, tmp_path: Path) -> None:
    results = run_workers(erpnet_sandbox, tmp_path, file_cache=True)
    stats = erpnet_sandbox.stats()
    assert stats["tokens_issued"] == 1
    assert stats["api_requests"] == WORKERS
    assert sum(r["tokens_requested"] for r in results) == 1

    directory = tmp_path / "tokens"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    (token_file,) = directory.glob("*.json")
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    content = token_file.read_text()
    assert DEFAULT_SECRET not in content and DEFAULT_SECRET not in token_file.name
    assert json.loads(content)["client_id"] == DEFAULT_CLIENT_ID


def test_without_the_file_cache_each_process_fetches_its_own(erpnet_sandbox: Sandbox, tmp_path: Path) -> None:
    results = run_workers(erpnet_sandbox, tmp_path, file_cache=False)
    assert erpnet_sandbox.stats()["tokens_issued"] == WORKERS
    assert [r["tokens_requested"] for r in results] == [1] * WORKERS
    assert not (tmp_path / "tokens").exists()
