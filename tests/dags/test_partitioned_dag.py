"""The partitioned example DAG under a real ``airflow dags test``: mapped parts, one gathered manifest.

The output must hold every row the sandbox counts, each Id once, with the sandbox's values, also
while rows are being created during the run (by a thread here, as users would).
"""

from __future__ import annotations

import ast
import re
import threading
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from airflow_provider_erpnet.io import iter_records
from airflow_provider_erpnet.sandbox import Sandbox
from tests.operators.test_odata_operator import _actual, _expected

ENTITY_SET = "Crm_Sales_Customers"
LOGICAL_DATE = "2026-11-29"


def _env(sandbox: Sandbox, out: Path) -> dict[str, str]:
    return {
        "AIRFLOW_CONN_ERPNET_DEFAULT": sandbox.connection_json(),
        "AIRFLOW_VAR_ERPNET_OUTPUT_DIR": str(out),
    }


def _gathered(output: str) -> dict[str, Any]:
    """The gather task's return value, as Airflow logs it."""
    found = re.search(r"Done\. Returned value was: (\{.*'parts'.*\})", output)
    assert found, output[-4000:]
    return ast.literal_eval(found.group(1))


def _check_output(sandbox: Sandbox, run_dir: Path, manifest: dict[str, Any]) -> set[str]:
    """The parts hold what the manifest says, each Id once, every value equal to the sandbox's."""
    parts = sorted(run_dir.glob("customers.part-*-of-004.parquet"))
    assert [p.name for p in parts] == [f"customers.part-{i:03d}-of-004.parquet" for i in range(1, 5)]
    assert [Path(f["path"]).name for f in manifest["files"]] == [p.name for p in parts]
    table = pa.concat_tables(pq.read_table(part) for part in parts)
    ids = table.column("Id").to_pylist()
    assert len(ids) == len(set(ids)) == manifest["rows"], "an Id is missing or repeated"
    assert ids == sorted(ids), "parts in plan order, each in Id order"
    assert sum(1 for _ in iter_records(manifest)) == manifest["rows"]
    source = {row["Id"]: row for row in sandbox.dataset.rows(ENTITY_SET)}
    for field in table.schema:
        written = [_actual(value, field.type) for value in table.column(field.name).to_pylist()]
        expected = [_expected(source[ident].get(field.name), field.type) for ident in ids]
        assert written == expected, f"column {field.name} differs"
    return set(ids)


def test_partitioned_export_maps_one_task_per_partition_and_gathers_them(
    dag_test, erpnet_sandbox_factory, tmp_path: Path
) -> None:
    sandbox = erpnet_sandbox_factory(scale=6000)
    result = dag_test("erpnet_partitioned_export", env=_env(sandbox, tmp_path), logical_date=LOGICAL_DATE)
    output = result.stdout + result.stderr
    manifest = _gathered(output)
    assert [part["index"] for part in manifest["parts"]] == [0, 1, 2, 3]
    assert manifest["rows"] == manifest["server_count"] == sandbox.dataset.count(ENTITY_SET) == 6000
    assert all(1350 <= part["rows"] <= 1650 for part in manifest["parts"]), manifest["parts"]
    assert len(_check_output(sandbox, tmp_path / "partitioned" / LOGICAL_DATE, manifest)) == 6000
    mapped = re.findall(r"\[DAG TEST\] end task task_id=extract map_index=(\d+)", output)
    assert sorted(mapped) == ["0", "1", "2", "3"], "one mapped task instance per partition"


def test_rows_created_during_the_run_are_read_once_or_counted_for_the_next_run(
    dag_test, erpnet_sandbox_factory, tmp_path: Path
) -> None:
    sandbox = erpnet_sandbox_factory(scale=6000)
    before = {row["Id"] for row in sandbox.dataset.rows(ENTITY_SET)}
    stop = threading.Event()
    created: list[str] = []

    def create() -> None:  # two new customers a second, for as long as the DAG runs
        while not stop.wait(1.0):
            created.extend(sandbox.create(ENTITY_SET, 2))

    creator = threading.Thread(target=create)
    creator.start()
    try:
        result = dag_test("erpnet_partitioned_export", env=_env(sandbox, tmp_path), logical_date=LOGICAL_DATE)
    finally:
        stop.set()
        creator.join()
    manifest = _gathered(result.stdout + result.stderr)
    ids = _check_output(sandbox, tmp_path / "partitioned" / LOGICAL_DATE, manifest)
    assert created, "no row was created during the run"
    assert before <= ids, "a row that existed before the run is missing"
    assert ids <= before | set(created)
    # A row the server counts at gather time but the output lacks was created in a partition after
    # its part was read: the gathered manifest counts it in that part (left for the next run).
    late = sum(part.get("count_at_gather", part["rows"]) - part["rows"] for part in manifest["parts"])
    assert manifest["rows"] + late == manifest["server_count"] <= sandbox.dataset.count(ENTITY_SET)
    assert len(ids - before) + late <= len(created)
