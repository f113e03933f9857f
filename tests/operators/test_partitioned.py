"""Partitioned extraction in-process: part files, the gather step, and rows created while reading.

Rows are created in the sandbox at chosen moments (after planning, during a part's read, after a
part was read), so each case of docs/partitions.md "Rows created during the run" is reproduced
exactly; tests/dags runs the same through a real ``airflow dags test``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_erpnet.client import ErpNetClient, Page
from airflow_provider_erpnet.client.errors import ErpNetConfigError, ErpNetIncompleteError
from airflow_provider_erpnet.client.partitions import Partition
from airflow_provider_erpnet.io import Manifest, iter_records
from airflow_provider_erpnet.operators.extraction import READ_ATTEMPTS, ExtractionRequest, run_extraction
from airflow_provider_erpnet.operators.odata import ErpNetODataOperator
from airflow_provider_erpnet.operators.partitioned import gather_parts, part_target
from airflow_provider_erpnet.sandbox import Sandbox
from tests.client.conftest import settings_for
from tests.operators.test_odata_operator import _context

CUSTOMERS = "Crm_Sales_Customers"


class _CreatesWhileReading(ErpNetClient):
    """Creates rows in the sandbox after the first page of the first ``reads`` reads (so some land
    behind the keyset position), as users working while the extraction runs would."""

    def __init__(self, sandbox: Sandbox, reads: int) -> None:
        super().__init__(settings_for(sandbox))
        self.sandbox, self.reads, self.created = sandbox, reads, []

    def iter_pages(self, entity_set: str, **options: Any) -> Iterator[Page]:
        pages = super().iter_pages(entity_set, **options)
        if options.get("select") == "Id" or self.reads == 0:  # planning samples read no rows
            return pages
        self.reads -= 1
        return self._creating(pages)

    def _creating(self, pages: Iterator[Page]) -> Iterator[Page]:
        for number, page in enumerate(pages):
            yield page
            if number == 0:
                self.created += self.sandbox.create(CUSTOMERS, 40)


def _ids(manifest: Manifest) -> list[str]:
    return [row["Id"] for row in iter_records(manifest)]


def test_rows_created_behind_the_read_make_it_read_again(
    erpnet_sandbox_factory, tmp_path: Path, caplog
) -> None:
    sandbox = erpnet_sandbox_factory(scale=3000)
    caplog.set_level(logging.WARNING)
    with _CreatesWhileReading(sandbox, reads=1) as client:
        manifest = run_extraction(
            client, ExtractionRequest(CUSTOMERS, select="Id,Number"), tmp_path / "c.jsonl"
        )
    assert "count went from 3000 to 3040 while" in caplog.text and "attempt 2 of 3" in caplog.text
    assert manifest.rows == manifest.server_count == 3040
    assert _ids(manifest) == [row["Id"] for row in sandbox.dataset.rows(CUSTOMERS)]


def test_a_count_that_keeps_moving_fails_after_the_last_read(erpnet_sandbox_factory, tmp_path: Path) -> None:
    sandbox = erpnet_sandbox_factory(scale=3000)
    expected = "but the server counts 3120 for the same filter"
    with (
        _CreatesWhileReading(sandbox, reads=READ_ATTEMPTS) as client,
        pytest.raises(ErpNetIncompleteError, match=expected),
    ):
        run_extraction(client, ExtractionRequest(CUSTOMERS, select="Id"), tmp_path / "c.jsonl")
    assert list(tmp_path.iterdir()) == []


def _plan(sandbox: Sandbox, n: int, **options: Any) -> list[Partition]:
    with ErpNetClient(settings_for(sandbox)) as client:
        return client.plan_partitions(CUSTOMERS, n, **options)


def _extract(sandbox: Sandbox, monkeypatch, partition: Partition, target: Path, **options: Any) -> dict:
    monkeypatch.setenv("AIRFLOW_CONN_ERPNET_DEFAULT", sandbox.connection_json())
    operator = ErpNetODataOperator(
        task_id="extract",
        entity_set=CUSTOMERS,
        output_path=str(target),
        partition=partition.to_dict(),
        **options,
    )
    return operator.execute(_context())


def test_parts_gather_into_one_manifest_of_every_row(
    erpnet_sandbox_factory, monkeypatch, tmp_path: Path
) -> None:
    sandbox = erpnet_sandbox_factory(scale=4000)
    plan = _plan(sandbox, 3, filter="Active eq true")
    parts = [_extract(sandbox, monkeypatch, p, tmp_path / "c.csv", filter="Active eq true") for p in plan]
    assert [Path(part["files"][0]["path"]).name for part in parts] == [
        "c.part-001-of-003.csv",
        "c.part-002-of-003.csv",
        "c.part-003-of-003.csv",
    ]
    assert parts[1]["partition"]["base_filter"] == "Active eq true"
    assert parts[1]["query"]["filter"] == f"(Active eq true) and ({plan[1].filter})"
    with ErpNetClient(settings_for(sandbox)) as client:
        gathered = gather_parts(client.count, reversed(parts))  # any order
    expected = [row["Id"] for row in sandbox.dataset.rows(CUSTOMERS) if row["Active"]]
    assert gathered.rows == gathered.server_count == len(expected)
    assert gathered.query["filter"] == "Active eq true"
    assert _ids(gathered) == expected
    assert [part["index"] for part in gathered.parts] == [0, 1, 2]
    assert all("count_at_gather" not in part for part in gathered.parts)
    assert Manifest.from_dict(gathered.to_dict()) == gathered


def test_rows_created_after_a_part_was_read_are_counted_not_lost(
    erpnet_sandbox_factory, monkeypatch, tmp_path: Path, caplog
) -> None:
    sandbox = erpnet_sandbox_factory(scale=3000)
    plan = _plan(sandbox, 3)
    created_before_reads = set(sandbox.create(CUSTOMERS, 30))  # after planning: read by their part
    parts = [_extract(sandbox, monkeypatch, plan[0], tmp_path / "c.jsonl")]
    created_late = set(sandbox.create(CUSTOMERS, 30))  # some land in part 1, already read
    parts += [_extract(sandbox, monkeypatch, p, tmp_path / "c.jsonl") for p in plan[1:]]
    with ErpNetClient(settings_for(sandbox)) as client:
        gathered = gather_parts(client.count, parts)
    ids = set(_ids(gathered))
    assert created_before_reads <= ids and len(ids) == gathered.rows
    missed = created_late - ids
    assert missed, "some late rows should fall into the part read before they existed"
    assert gathered.server_count == 3060 == gathered.rows + len(missed)
    first = gathered.parts[0]
    assert first["count_at_gather"] - first["rows"] == len(missed)
    assert f"part-001-of-003 +{len(missed)}" in caplog.text and "next run reads the rest" in caplog.text


def test_gather_refuses_incomplete_or_mixed_parts(
    erpnet_sandbox_factory, monkeypatch, tmp_path: Path
) -> None:
    sandbox = erpnet_sandbox_factory(scale=1000)
    plan = _plan(sandbox, 2)
    parts = [_extract(sandbox, monkeypatch, p, tmp_path / "c.jsonl") for p in plan]
    with ErpNetClient(settings_for(sandbox)) as client:
        with pytest.raises(ErpNetIncompleteError, match="the plan has 2 partitions; missing 1"):
            gather_parts(client.count, parts[:1])
        unchecked = {**parts[1], "server_count": None}
        with pytest.raises(
            ErpNetIncompleteError, match="part-002-of-002 wrote 500 rows, the server counted None"
        ):
            gather_parts(client.count, [parts[0], unchecked])
        assert gather_parts(client.count, [parts[0], unchecked], check_count="warn").rows == 1000
        whole = {**parts[0], "partition": None}
        with pytest.raises(ErpNetConfigError, match="without a partition"):
            gather_parts(client.count, [whole, parts[1]])


def test_partition_arguments_are_checked(tmp_path: Path) -> None:
    partition = Partition(CUSTOMERS, "Id", 1, 4, lower="a", upper="b", plan="p")
    with pytest.raises(ErpNetConfigError, match="partition needs output_path"):
        ErpNetODataOperator(task_id="t", entity_set=CUSTOMERS, partition=partition)
    with pytest.raises(ErpNetConfigError, match="planned for Crm_Sales_Customers, not General_Products"):
        ErpNetODataOperator(
            task_id="t", entity_set="General_Products_Products", output_path="p.csv", partition=partition
        )
    operator = ErpNetODataOperator(
        task_id="t", entity_set=CUSTOMERS, output_path="p.csv", partition=partition
    )
    assert operator.outlets == []  # a part is not the whole set: the gather task updates the Asset
    assert (
        part_target("s3://conn@bucket/x/c.jsonl.gz", None, partition)
        == "s3://conn@bucket/x/c.part-002-of-004.jsonl.gz"
    )
    assert part_target(tmp_path / "c.parquet", None, partition) == tmp_path / "c.part-002-of-004.parquet"
    assert part_target("c", "csv", partition) == "c.part-002-of-004"
