"""Atomic output: temp files, commit, abort, part files, object storage, and the manifest."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from upath import UPath

from airflow_provider_erpnet.client.errors import ErpNetConfigError, ErpNetError
from airflow_provider_erpnet.io import Column, FileInfo, Manifest, OutputWriter, iter_records

FORMATS = ["jsonl", "csv.gz", "parquet"]
COLUMNS = [Column("DocumentNo", "string"), Column("ObjectVersion", "int32")]


def rows(start: int, count: int) -> list[dict[str, Any]]:
    return [
        {"DocumentNo": f"{n:06d}", "ObjectVersion": n, "@odata.id": f"X({n})"}
        for n in range(start, start + count)
    ]


def listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


class Boom(RuntimeError):
    """Stands for anything that can go wrong mid-extraction."""


@pytest.mark.parametrize("suffix", FORMATS)
def test_file_appears_only_on_commit_and_temp_sits_beside_it(tmp_path: Path, suffix: str) -> None:
    target = tmp_path / "out" / f"orders.{suffix}"
    with OutputWriter(target, None, COLUMNS) as out:
        out.write_page(rows(0, 5))
        assert not target.exists()
        temps = [n for n in listing(target.parent) if n != f".orders.{suffix}.lock-{out.run}"]
        assert len(temps) == 1 and temps[0].startswith(f".orders.{suffix}.tmp-")
        files = out.commit()
    assert listing(target.parent) == [f"_{target.name}.manifest.json", target.name]
    assert files == [FileInfo(str(target), 5, target.stat().st_size)]
    assert out.rows == 5


@pytest.mark.parametrize("suffix", FORMATS)
def test_exception_inside_the_block_leaves_nothing_behind(tmp_path: Path, suffix: str) -> None:
    with (
        pytest.raises(Boom),
        OutputWriter(tmp_path / f"orders.{suffix}", None, COLUMNS, max_rows_per_file=2) as out,
    ):
        out.write_page(rows(0, 5))  # three parts: two finished, one open
        raise Boom
    assert listing(tmp_path) == []


@pytest.mark.parametrize("suffix", FORMATS)
def test_commit_replaces_an_existing_target_and_abort_keeps_it(tmp_path: Path, suffix: str) -> None:
    target = tmp_path / f"orders.{suffix}"
    with OutputWriter(target, None, COLUMNS) as out:
        out.write_page(rows(0, 3))
    old = target.read_bytes()
    with pytest.raises(Boom), OutputWriter(target, None, COLUMNS) as out:
        out.write_page(rows(100, 7))
        raise Boom
    assert target.read_bytes() == old
    with OutputWriter(target, None, COLUMNS) as out:
        out.write_page(rows(100, 7))
    manifest = Manifest("S", out.format, out.files, out.rows, 0, COLUMNS)
    assert [r["ObjectVersion"] for r in iter_records(manifest)] == list(range(100, 107))
    assert listing(tmp_path) == [f"_{target.name}.manifest.json", target.name]


def test_parts_roll_at_max_rows_and_the_manifest_lists_them(tmp_path: Path) -> None:
    target = tmp_path / "orders.jsonl"
    with OutputWriter(target, None, COLUMNS, max_rows_per_file=4) as out:
        for start in range(0, 10, 3):  # pages of 3, 3, 3, 1 cross the part boundaries
            out.write_page(rows(start, min(3, 10 - start)))
    parts = [f"orders-{out.run}-0000{i}.jsonl" for i in range(3)]
    assert [(Path(f.path).name, f.rows) for f in out.files] == [(parts[0], 4), (parts[1], 4), (parts[2], 2)]
    assert listing(tmp_path) == ["_orders.jsonl.manifest.json", *parts]
    assert all(f.bytes == Path(f.path).stat().st_size for f in out.files)
    manifest = Manifest("S", "jsonl", out.files, out.rows, sum(f.bytes for f in out.files), COLUMNS)
    assert [r["ObjectVersion"] for r in iter_records(manifest)] == list(range(10))


def test_an_exact_multiple_makes_no_empty_trailing_part(tmp_path: Path) -> None:
    with OutputWriter(tmp_path / "orders.csv", None, COLUMNS, max_rows_per_file=4) as out:
        out.write_page(rows(0, 4))
        out.write_page(rows(4, 4))
    assert [f.rows for f in out.files] == [4, 4]


def test_a_smaller_rerun_removes_the_stale_parts_of_a_larger_one(tmp_path: Path) -> None:
    (tmp_path / "keep.jsonl").write_text("not ours\n")
    for count in (9, 3):
        with OutputWriter(tmp_path / "orders.jsonl", None, COLUMNS, max_rows_per_file=3) as out:
            out.write_page(rows(0, count))
    assert listing(tmp_path) == ["_orders.jsonl.manifest.json", "keep.jsonl", f"orders-{out.run}-00000.jsonl"]


@pytest.mark.parametrize("suffix", FORMATS)
def test_no_rows_still_commits_one_readable_file(tmp_path: Path, suffix: str) -> None:
    with OutputWriter(tmp_path / f"orders.{suffix}", None, COLUMNS, max_rows_per_file=10) as out:
        out.write_page([])
    assert [(Path(f.path).name, f.rows) for f in out.files] == [(f"orders-{out.run}-00000.{suffix}", 0)]
    assert list(iter_records(Manifest("S", out.format, out.files, 0, 0, COLUMNS))) == []


def test_lifecycle_errors(tmp_path: Path) -> None:
    out = OutputWriter(tmp_path / "orders.jsonl", None, COLUMNS)
    out.write_page(rows(0, 1))
    files = out.commit()
    assert out.commit() == files  # idempotent
    with pytest.raises(ErpNetError, match="already committed"):
        out.write_page(rows(1, 1))
    out.abort()  # after commit: nothing to undo
    assert Path(files[0].path).exists()
    aborted = OutputWriter(tmp_path / "other.jsonl", None, COLUMNS)
    aborted.abort()
    with pytest.raises(ErpNetError, match="already aborted"):
        aborted.commit()


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"max_rows_per_file": 0}, "max_rows_per_file must be at least 1"),
        ({"row_group_rows": 0}, "row_group_rows must be at least 1"),
    ],
)
def test_bad_options(tmp_path: Path, kwargs: dict[str, int], fragment: str) -> None:
    with pytest.raises(ErpNetConfigError, match=fragment):
        OutputWriter(tmp_path / "orders.parquet", None, COLUMNS, **kwargs)


def test_bad_targets(tmp_path: Path) -> None:
    with pytest.raises(ErpNetConfigError, match="is a directory"):
        OutputWriter(tmp_path, "jsonl", COLUMNS)
    with pytest.raises(ErpNetConfigError, match="is not a path"):
        OutputWriter(42, "jsonl", COLUMNS)  # type: ignore[arg-type]
    with pytest.raises(ErpNetConfigError, match="Cannot tell the output format"):
        OutputWriter(tmp_path / "orders.xlsx", None, COLUMNS)


# Object storage: fsspec's in-memory filesystem stands in for a cloud bucket (a mock of S3/GCS:
# same fsspec API, moves are copy+delete as on S3, no network).


@pytest.fixture
def bucket() -> Any:
    root = UPath("memory://erpnet-test-bucket/exports")
    yield root
    if root.exists():
        root.fs.rm(root.path, recursive=True)


@pytest.mark.parametrize("suffix", FORMATS)
def test_object_storage_target_commits_parts_atomically(bucket: Any, suffix: str) -> None:
    with OutputWriter(bucket / f"orders.{suffix}", None, COLUMNS, max_rows_per_file=4) as out:
        out.write_page(rows(0, 6))
        assert sorted(p.name for p in bucket.iterdir())[0].startswith(f".orders-{out.run}-00000")
    names = [f"orders-{out.run}-0000{i}.{suffix}" for i in range(2)]
    assert sorted(p.name for p in bucket.iterdir()) == [f"_orders.{suffix}.manifest.json", *names]
    assert [f.path for f in out.files] == [f"memory://erpnet-test-bucket/exports/{name}" for name in names]
    assert [f.bytes for f in out.files] == [(bucket / n).stat().st_size for n in names]
    manifest = Manifest("S", out.format, out.files, out.rows, 0, COLUMNS)
    assert [r["ObjectVersion"] for r in iter_records(Manifest.from_dict(manifest.to_dict()))] == list(
        range(6)
    )


def test_object_storage_abort_leaves_the_bucket_as_it_was(bucket: Any) -> None:
    existing = bucket / "orders.csv"
    existing.write_bytes(b"old\n")
    with pytest.raises(Boom), OutputWriter(existing, None, COLUMNS) as out:
        out.write_page(rows(0, 3))
        raise Boom
    assert [p.name for p in bucket.iterdir()] == ["orders.csv"]
    assert existing.read_bytes() == b"old\n"


def test_url_string_target(bucket: Any) -> None:
    with OutputWriter("memory://erpnet-test-bucket/exports/a.jsonl", None, COLUMNS) as out:
        out.write_page(rows(0, 2))
    assert (bucket / "a.jsonl").read_text().count("\n") == 2
    assert out.files[0].path == "memory://erpnet-test-bucket/exports/a.jsonl"


def test_airflow_object_storage_path(bucket: Any, tmp_path: Path) -> None:
    """The path type Airflow tasks pass (the io package itself never imports Airflow)."""
    sdk = pytest.importorskip("airflow.sdk")
    fsspec = pytest.importorskip("fsspec")
    sdk_io = pytest.importorskip("airflow.sdk.io")
    sdk_io.attach("memory", fs=fsspec.filesystem("memory"))  # Airflow registers no memory:// store itself
    remote = sdk.ObjectStoragePath("memory://erpnet-test-bucket/exports/b.parquet")
    local = sdk.ObjectStoragePath(f"file://{tmp_path}/c.csv")
    for target in (remote, local):
        with OutputWriter(target, None, COLUMNS) as out:
            out.write_page(rows(0, 2))
        manifest = Manifest("S", out.format, out.files, out.rows, 0, COLUMNS)
        read = [r["DocumentNo"] for r in iter_records(manifest, path_factory=sdk.ObjectStoragePath)]
        assert read == ["000000", "000001"]
    assert out.files[0].path == str(tmp_path / "c.csv")  # local: written with fsync + os.replace
    assert listing(tmp_path) == ["_c.csv.manifest.json", "c.csv"]


def test_manifest_is_json_safe_and_round_trips(tmp_path: Path) -> None:
    columns = [*COLUMNS, Column("Weight", "decimal", False, 18, 3, "Edm.Decimal")]
    manifest = Manifest(
        entity_set="Crm_Sales_SalesOrders",
        format="parquet",
        files=[
            FileInfo(str(tmp_path / "a-00000.parquet"), 10, 1234),
            FileInfo("s3://b/a-00001.parquet", 5, 99),
        ],
        rows=15,
        bytes=1333,
        columns=columns,
        query={"$filter": "State eq 'Released'", "$select": "default,Id"},
        window={"start": "2020-01-01T00:00:00Z", "end": "2020-01-02T00:00:00Z"},
        server_count=15,
        duplicates_removed=2,
        duration_seconds=1.5,
    )
    text = json.dumps(manifest.to_dict())
    assert Manifest.from_dict(json.loads(text)) == manifest
    assert json.loads(text)["columns"][2] == {
        "name": "Weight",
        "kind": "decimal",
        "nullable": False,
        "precision": 18,
        "scale": 3,
        "source_type": "Edm.Decimal",
    }
    with pytest.raises(ErpNetConfigError, match="missing files, columns"):
        Manifest.from_dict({"entity_set": "S", "format": "csv"})
    with pytest.raises(ErpNetConfigError, match="got list"):
        list(iter_records([]))  # type: ignore[arg-type]


def test_local_commit_leaves_no_temp_even_with_many_parts(tmp_path: Path) -> None:
    with OutputWriter(os.fspath(tmp_path / "o.csv"), None, COLUMNS, max_rows_per_file=1) as out:
        out.write_page(rows(0, 25))
    assert len(out.files) == 25
    assert not [n for n in listing(tmp_path) if n.startswith(".")]
