"""A task SIGKILLed mid-extraction leaves nothing at its target; the next attempt writes it whole."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from airflow.sdk.execution_time.context import OutletEventAccessors

from airflow_provider_erpnet.operators.odata import ErpNetODataOperator

CUSTOMERS = "Crm_Sales_Customers"
TASK = textwrap.dedent(
    """
    import sys
    from airflow.sdk.execution_time.context import OutletEventAccessors
    from airflow_provider_erpnet.operators.odata import ErpNetODataOperator

    operator = ErpNetODataOperator(task_id="customers", entity_set=sys.argv[1], output_path=sys.argv[2])
    operator.execute({"outlet_events": OutletEventAccessors()})
    """
)


def _temporary_files(directory: Path) -> list[Path]:
    return [path for path in directory.iterdir() if ".tmp-" in path.name]


def test_sigkill_leaves_no_output_and_the_retry_writes_everything(
    erpnet_sandbox_factory, monkeypatch, tmp_path: Path
) -> None:
    sandbox = erpnet_sandbox_factory(scale=20_000, latency_ms=250)
    env = {**os.environ, "AIRFLOW_CONN_ERPNET_DEFAULT": sandbox.connection_json()}
    target = tmp_path / "customers.jsonl"
    task = subprocess.Popen(
        [sys.executable, "-c", TASK, CUSTOMERS, str(target)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not any(path.stat().st_size > 0 for path in _temporary_files(tmp_path)):
            assert task.poll() is None, f"the task ended before it was killed:\n{task.stderr.read()[-3000:]}"
            assert time.monotonic() < deadline, "no rows reached the temporary file within 60 s"
            time.sleep(0.05)
        task.send_signal(signal.SIGKILL)
    finally:
        task.wait(timeout=30)
        task.stderr.close()
    assert task.returncode == -signal.SIGKILL
    assert not target.exists()
    (stale,) = _temporary_files(tmp_path)
    assert stale.stat().st_size > 0

    sandbox.set_faults(latency_ms=0)
    monkeypatch.setenv("AIRFLOW_CONN_ERPNET_DEFAULT", sandbox.connection_json())
    retry = ErpNetODataOperator(task_id="customers", entity_set=CUSTOMERS, output_path=str(target))
    manifest = retry.execute({"outlet_events": OutletEventAccessors()})

    assert manifest["rows"] == manifest["server_count"] == sandbox.dataset.count(CUSTOMERS) == 20_000
    written = [json.loads(line)["Id"] for line in target.read_text().splitlines()]
    assert written == [row["Id"] for row in sandbox.dataset.rows(CUSTOMERS)]
    assert list(tmp_path.iterdir()) == [target], "the killed attempt's temporary file was not cleaned up"
