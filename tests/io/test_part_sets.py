"""Part files are committed as a set: new names per run, and the manifest file that lists them last.

A run's parts carry its run id (``orders-<run>-00000.jsonl``), so moving them into place never
overwrites a file an earlier manifest lists; ``_orders.jsonl.manifest.json`` is replaced after them,
in one step. A reader of either manifest (the XCom of the last good run, or the published file)
sees one whole run, also after a kill in the middle of a commit.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from upath import UPath

from airflow_provider_erpnet.client.errors import ErpNetError
from airflow_provider_erpnet.io import Column, Manifest, OutputWriter, iter_records

COLUMNS = [Column("DocumentNo", "string"), Column("ObjectVersion", "int32")]

KILLED_MID_COMMIT = """
import os, signal, sys
from pathlib import Path
from airflow_provider_erpnet.io import Column, OutputWriter

real_replace, moves = os.replace, []

def replace(source, destination, **options):
    moves.append(destination)
    if len(moves) == 2:  # the first part is in place, the second not yet
        os.kill(os.getpid(), signal.SIGKILL)
    return real_replace(source, destination, **options)

os.replace = replace
columns = [Column("DocumentNo", "string"), Column("ObjectVersion", "int32")]
with OutputWriter(Path(sys.argv[1]), None, columns, max_rows_per_file=3) as out:
    out.write_page([{"DocumentNo": f"{n:06d}", "ObjectVersion": n} for n in range(100, 106)])
"""


def rows(start: int, count: int) -> list[dict[str, Any]]:
    return [{"DocumentNo": f"{n:06d}", "ObjectVersion": n} for n in range(start, start + count)]


def listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def versions(manifest: Any) -> list[int]:
    return [record["ObjectVersion"] for record in iter_records(manifest)]


def test_a_run_killed_between_part_moves_leaves_the_previous_set_whole(tmp_path: Path) -> None:
    target = tmp_path / "orders.jsonl"
    with OutputWriter(target, None, COLUMNS, max_rows_per_file=3) as out:
        out.write_page(rows(0, 9))
    previous = Manifest("S", "jsonl", out.files, out.rows, 0, COLUMNS)

    killed = subprocess.run(
        [sys.executable, "-c", KILLED_MID_COMMIT, str(target)], capture_output=True, text=True, timeout=60
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr

    assert versions(previous) == list(range(9)), "the previous run's parts were overwritten by the killed one"
    published = json.loads((tmp_path / "_orders.jsonl.manifest.json").read_text())
    assert [f["path"] for f in published["files"]] == [f.path for f in previous.files]
    assert versions(published) == list(range(9))

    with OutputWriter(target, None, COLUMNS, max_rows_per_file=3) as out:
        out.write_page(rows(200, 4))
    names = [Path(f.path).name for f in out.files]
    assert listing(tmp_path) == sorted([*names, "_orders.jsonl.manifest.json"])  # killed run swept
    published = json.loads((tmp_path / "_orders.jsonl.manifest.json").read_text())
    assert versions(published) == list(range(200, 204))


def test_part_names_carry_the_run_and_the_manifest_file_is_published_last(tmp_path: Path) -> None:
    from airflow_provider_erpnet.io import read_published_manifest

    target = tmp_path / "orders.csv.gz"
    assert read_published_manifest(target) is None
    with OutputWriter(target, None, COLUMNS, max_rows_per_file=2) as out:
        out.write_page(rows(0, 3))
        assert not (tmp_path / "_orders.csv.gz.manifest.json").exists()
    assert [Path(f.path).name for f in out.files] == [
        f"orders-{out.run}-00000.csv.gz",
        f"orders-{out.run}-00001.csv.gz",
    ]
    published = read_published_manifest(str(target))
    assert published is not None and published.files == out.files and published.rows == 3
    assert published.columns == COLUMNS and published.format == "csv"
    assert versions(published) == [0, 1, 2]


def test_a_single_file_gets_its_manifest_file_too(tmp_path: Path) -> None:
    from airflow_provider_erpnet.io import read_published_manifest

    target = tmp_path / "orders.parquet"
    for start in (0, 10):
        with OutputWriter(target, None, COLUMNS) as out:
            out.write_page(rows(start, 2))
    assert listing(tmp_path) == ["_orders.parquet.manifest.json", "orders.parquet"]
    published = read_published_manifest(target)
    assert published is not None and published.files == out.files
    assert versions(published) == [10, 11]


def test_the_extraction_describes_the_published_manifest(tmp_path: Path) -> None:
    from airflow_provider_erpnet.io import read_published_manifest

    target = tmp_path / "orders.jsonl"
    with OutputWriter(target, None, COLUMNS) as out:
        out.write_page(rows(0, 2))
        out.commit(
            lambda files: Manifest("Crm_Sales_SalesOrders", out.format, files, 2, 0, COLUMNS, server_count=2)
        )
    published = read_published_manifest(target)
    assert published is not None
    assert (published.entity_set, published.server_count, published.files) == (
        "Crm_Sales_SalesOrders",
        2,
        out.files,
    )


def test_a_temporary_file_removed_by_someone_else_is_a_clear_error(tmp_path: Path) -> None:
    target = tmp_path / "orders.jsonl"
    with (
        pytest.raises(ErpNetError, match="same target") as caught,
        OutputWriter(target, None, COLUMNS) as out,
    ):
        out.write_page(rows(0, 2))
        (temp,) = [p for p in tmp_path.iterdir() if ".tmp-" in p.name]
        temp.unlink()
    assert "output_path" in str(caught.value)
    assert not target.exists()
    assert listing(tmp_path) == []


def test_a_live_writers_temporary_files_are_not_swept(tmp_path: Path) -> None:
    from airflow_provider_erpnet.operators.extraction import remove_stale_temps

    target = tmp_path / "orders.csv"
    with OutputWriter(target, None, COLUMNS, max_rows_per_file=2) as live:
        live.write_page(rows(0, 3))
        before = listing(tmp_path)
        assert remove_stale_temps(target, None, before=time.time() + 60) == 0
        assert listing(tmp_path) == before
    assert versions(Manifest("S", "csv", live.files, 3, 0, COLUMNS)) == [0, 1, 2]


# Object storage: fsspec's in-memory filesystem stands in for a bucket (no cloud here). It lives in
# this process only, so a killed run is a writer abandoned without commit or abort.


@pytest.fixture
def bucket() -> Any:
    root = UPath("memory://erpnet-part-sets/exports")
    yield root
    if root.exists():
        root.fs.rm(root.path, recursive=True)


def test_object_storage_sweeps_the_finished_parts_of_a_killed_run(bucket: Any) -> None:
    target = bucket / "orders.csv"
    with OutputWriter(target, None, COLUMNS, max_rows_per_file=2) as out:
        out.write_page(rows(0, 4))
    killed = OutputWriter(target, None, COLUMNS, max_rows_per_file=2)
    killed.write_page(rows(100, 5))  # two finished parts uploaded under temporary names, a third open
    assert len([p for p in bucket.iterdir() if ".tmp-" in p.name]) >= 2

    with OutputWriter(target, None, COLUMNS, max_rows_per_file=2) as out:
        out.write_page(rows(200, 3))
    names = sorted(p.name for p in bucket.iterdir())
    assert names == sorted([*(f.path.rsplit("/", 1)[1] for f in out.files), "_orders.csv.manifest.json"])
    published = json.loads((bucket / "_orders.csv.manifest.json").read_text())
    assert versions(published) == [200, 201, 202]
