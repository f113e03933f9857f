"""Id reconciliation against the sandbox over HTTP: tombstones equal the rows deleted between
two runs, snapshots replace each other only after the tombstones are committed, any storage."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_erpnet.changes.idsnapshot import read_ids
from airflow_provider_erpnet.changes.reconcile import ReconcileRequest, run_reconciliation
from airflow_provider_erpnet.client import ErpNetClient, ErpNetSettings
from airflow_provider_erpnet.client.errors import ErpNetIncompleteError
from airflow_provider_erpnet.io import iter_records, read_table
from airflow_provider_erpnet.sandbox import DEFAULT_CLIENT_ID, DEFAULT_SECRET, Sandbox
from tests.conftest import AIRFLOW_BIN

C = "Crm_Sales_Customers"
SO = "Crm_Sales_SalesOrders"
UTC = dt.timezone.utc


@pytest.fixture
def sandbox(erpnet_sandbox_factory) -> Sandbox:
    return erpnet_sandbox_factory(scale=5000)


@pytest.fixture
def client(sandbox: Sandbox, tmp_path: Path):
    settings = ErpNetSettings(
        sandbox.base_url, DEFAULT_CLIENT_ID, DEFAULT_SECRET, disk_cache_dir=str(tmp_path / "tokens")
    )
    with ErpNetClient(settings) as client:
        yield client


def reconcile(client: ErpNetClient, entity_set: str, state: Any, output: Any, **options: Any) -> dict:
    return run_reconciliation(client, ReconcileRequest(entity_set), state, output, **options).to_dict()


def test_tombstones_are_exactly_the_rows_deleted_between_two_runs(
    sandbox: Sandbox, client: ErpNetClient, tmp_path: Path
) -> None:
    state = tmp_path / "state" / "customers.ids"
    first = reconcile(client, C, state, tmp_path / "deleted-1.parquet")
    assert first["rows"] == 0 and first["reconciliation"]["first_run"]
    assert first["reconciliation"]["ids_now"] == 5000 == first["server_count"]
    with open(state, "rb") as snapshot:
        assert sum(1 for _ in read_ids(snapshot)) == 5000
    about = json.loads((state.parent / "_customers.ids.manifest.json").read_text())
    assert (about["entity_set"], about["rows"]) == (C, 5000)

    ids = [row["Id"] for row in sandbox.dataset.rows(C)]
    gone = [*random.Random(3).sample(ids[1:-1], 137), ids[0], ids[-1]]
    sandbox.delete(C, gone)
    detected = dt.datetime(2026, 7, 1, 12, tzinfo=UTC)
    second = reconcile(client, C, state, tmp_path / "deleted-2.parquet", detected_at=detected)

    table = read_table(second)
    assert table.column("Id").to_pylist() == sorted(gone)
    assert set(table.column("detected_at").to_pylist()) == {detected}
    assert second["rows"] == 139
    assert second["reconciliation"] | {"previous_taken_at": None} == {
        "snapshot": str(state),
        "first_run": False,
        "ids_before": 5000,
        "ids_now": 4861,
        "deleted": 139,
        "added": 0,
        "repeated_ids": 0,
        "detected_at": "2026-07-01T12:00:00Z",
        "previous_taken_at": None,
    }
    assert second["reconciliation"]["previous_taken_at"] is not None
    published = json.loads((tmp_path / "_deleted-2.parquet.manifest.json").read_text())
    assert published["reconciliation"]["deleted"] == 139

    third = reconcile(client, C, state, tmp_path / "deleted-3.jsonl")
    assert third["rows"] == 0 and third["reconciliation"]["ids_before"] == 4861
    assert list(iter_records(third)) == []


def test_an_order_deleted_with_its_lines_leaves_tombstones_in_both_sets(
    sandbox: Sandbox, client: ErpNetClient, tmp_path: Path
) -> None:
    reconcile(client, SO, tmp_path / "orders.ids", tmp_path / "orders-1.csv")
    reconcile(client, "Crm_Sales_SalesOrderLines", tmp_path / "lines.ids", tmp_path / "lines-1.csv")
    order = sandbox.dataset.rows(SO)[42]
    sandbox.delete(SO, [order["Id"]])
    orders = reconcile(client, SO, tmp_path / "orders.ids", tmp_path / "orders-2.csv")
    lines = reconcile(client, "Crm_Sales_SalesOrderLines", tmp_path / "lines.ids", tmp_path / "lines-2.csv")
    assert [record["Id"] for record in iter_records(orders)] == [order["Id"]]
    assert [record["Id"] for record in iter_records(lines)] == sorted(line["Id"] for line in order["Lines"])


def test_a_count_mismatch_commits_nothing_and_keeps_the_old_snapshot(
    sandbox: Sandbox, client: ErpNetClient, tmp_path: Path
) -> None:
    state = tmp_path / "customers.ids"
    reconcile(client, C, state, tmp_path / "deleted-1.jsonl")
    before = state.read_bytes()
    read_early = sandbox.dataset.rows(C)[9]["Id"]
    sandbox.set_faults(latency_ms=50)

    def delete_once_paging_is_under_way() -> None:
        while sandbox.stats()["api_requests"] < 3:
            time.sleep(0.01)
        sandbox.delete(C, [read_early])  # page 1 already held it: the Ids read and $count disagree

    deleter = threading.Thread(target=delete_once_paging_is_under_way)
    sandbox.reset_stats()
    deleter.start()
    try:
        with pytest.raises(ErpNetIncompleteError, match="Nothing was committed"):
            run_reconciliation(
                client, ReconcileRequest(C, page_size=100), state, tmp_path / "deleted-2.jsonl"
            )
    finally:
        deleter.join()
    assert state.read_bytes() == before
    assert not (tmp_path / "deleted-2.jsonl").exists()


def test_tombstones_are_committed_before_the_snapshot_moves(
    sandbox: Sandbox, client: ErpNetClient, tmp_path: Path
) -> None:
    state = tmp_path / "customers.ids"
    reconcile(client, C, state, tmp_path / "deleted-1.jsonl")
    gone = [row["Id"] for row in sandbox.dataset.rows(C)[100:103]]
    sandbox.delete(C, gone)
    # The snapshot's manifest cannot be replaced (a directory stands in its way): the run fails
    # at its last step, after the tombstones and the snapshot file are in place.
    blocker = tmp_path / "_customers.ids.manifest.json"
    blocker.unlink()
    blocker.mkdir()
    with pytest.raises(OSError):
        reconcile(client, C, state, tmp_path / "deleted-2.jsonl")
    written = json.loads((tmp_path / "_deleted-2.jsonl.manifest.json").read_text())
    assert [record["Id"] for record in iter_records(written)] == sorted(gone)
    blocker.rmdir()
    retry = reconcile(client, C, state, tmp_path / "deleted-3.jsonl")
    assert retry["rows"] == 0  # nothing lost: the deletions are in the committed tombstones


def test_state_and_tombstones_on_object_storage(sandbox: Sandbox, client: ErpNetClient) -> None:
    """fsspec's memory filesystem stands in for a bucket (no cloud here); the code path is the
    object-storage one: temporary objects, then moves."""
    import fsspec

    fs = fsspec.filesystem("memory")
    fs.store.clear()
    reconcile(client, C, "memory://lake/state/customers.ids", "memory://lake/deleted/1.jsonl")
    gone = [row["Id"] for row in sandbox.dataset.rows(C)[10:15]]
    sandbox.delete(C, gone)
    second = reconcile(client, C, "memory://lake/state/customers.ids", "memory://lake/deleted/2.jsonl")
    assert [record["Id"] for record in iter_records(second)] == sorted(gone)
    assert sorted(fs.ls("/lake/state", detail=False)) == [
        "/lake/state/_customers.ids.manifest.json",
        "/lake/state/customers.ids",
    ]
    fs.store.clear()


def test_the_operator_in_a_dag_run_writes_the_deleted_ids(
    airflow_db: Path, sandbox: Sandbox, tmp_path: Path
) -> None:
    gone = [row["Id"] for row in sandbox.dataset.rows(C)[200:205]]
    env = {
        **os.environ,
        "AIRFLOW__CORE__DAGS_FOLDER": str(Path(__file__).parent / "dags"),
        "AIRFLOW_CONN_ERPNET_DEFAULT": sandbox.connection_json(),
        "ERPNET_TEST_OUT": str(tmp_path),
        "ERPNET_TEST_DELETE": json.dumps(gone),
    }
    result = subprocess.run(
        [AIRFLOW_BIN, "dags", "test", "erpnet_test_reconcile"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    second = json.loads((tmp_path / "second.json").read_text())
    assert [record["Id"] for record in iter_records(second)] == sorted(gone)
    assert second["reconciliation"]["ids_before"] == 5000 and second["reconciliation"]["deleted"] == 5
