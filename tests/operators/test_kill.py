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

import pytest
from airflow.sdk import ObjectStoragePath
from airflow.sdk.execution_time.context import OutletEventAccessors
from upath import UPath

from airflow_provider_erpnet.operators.extraction import remove_stale_temps
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
    assert sorted(tmp_path.iterdir()) == [tmp_path / "_customers.jsonl.manifest.json", target], (
        "the killed attempt's temporary file was not cleaned up"
    )


@pytest.mark.parametrize("form", ["str", "file URL", "Path", "UPath", "ObjectStoragePath"])
def test_stale_temps_are_swept_for_every_local_target_form(tmp_path: Path, form: str) -> None:
    """The sweep and the writer agree on what is local, whatever object names the target."""
    target = tmp_path / "customers.csv"
    targets = {
        "str": str(target),
        "file URL": f"file://{target}",
        "Path": target,
        "UPath": UPath(str(target)),
        "ObjectStoragePath": ObjectStoragePath(f"file://{target}"),
    }
    stale = [tmp_path / f".customers.csv.tmp-{'a' * 32}", tmp_path / f".customers-00001.csv.tmp-{'b' * 32}"]
    for path in stale:
        path.write_text("killed mid-write\n")
    other = tmp_path / f".orders.csv.tmp-{'c' * 32}"
    other.write_text("another target's\n")
    assert remove_stale_temps(targets[form], None, before=time.time() + 1) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [other.name]
