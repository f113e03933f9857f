"""Reading a manifest: Arrow tables, part order, damaged files, and memory that does not grow."""

from __future__ import annotations

import gzip
import itertools
import tracemalloc
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from airflow_provider_erpnet.client.errors import ErpNetConfigError, ErpNetError
from airflow_provider_erpnet.io import Column, FileInfo, Manifest, OutputWriter, iter_records, read_table
from airflow_provider_erpnet.io.arrow import arrow_schema

SUFFIXES = ["jsonl", "csv", "parquet", "csv.gz"]


def write(path: Path, columns: list[Column], records: list[dict[str, Any]], **options: Any) -> Manifest:
    with OutputWriter(path, None, columns, **options) as out:
        out.write_page(records)
    return Manifest("Crm_Sales_SalesOrders", out.format, out.files, out.rows, 0, columns)


def test_read_table_is_the_same_arrow_table_from_every_format(
    tmp_path: Path, columns: list[Column], records: list[dict[str, Any]]
) -> None:
    tables = {
        s: read_table(write(tmp_path / f"o.{s}", columns, records, max_rows_per_file=2)) for s in SUFFIXES
    }
    reference = tables.pop("parquet")
    assert reference.num_rows == 3
    assert reference.schema.equals(arrow_schema(columns), check_metadata=True)
    for suffix, table in tables.items():
        assert table.equals(reference, check_metadata=True), suffix
    assert reference.column("ExchangeRate").to_pylist()[1] == Decimal("123456789012345678.1234567890")
    assert reference.column("TotalAmount").type == pa.struct(
        [pa.field("Value", pa.decimal128(18, 2)), pa.field("Currency", pa.string())]
    )


def test_parts_are_read_in_manifest_order(tmp_path: Path, make_order: Any) -> None:
    columns = [Column("DocumentNo", "string"), Column("Weight", "decimal", precision=18, scale=3)]
    for suffix in ("jsonl", "parquet"):
        manifest = write(
            tmp_path / f"o.{suffix}", columns, [make_order(n) for n in range(7)], max_rows_per_file=3
        )
        assert [f.rows for f in manifest.files] == [3, 3, 1]
        assert [r["DocumentNo"] for r in iter_records(manifest)] == [f"{n:06d}" for n in range(7)]
        manifest.files.reverse()
        assert [r["DocumentNo"] for r in iter_records(manifest)][:1] == ["000006"]


def test_path_factory_opens_every_file(tmp_path: Path, make_order: Any) -> None:
    columns = [Column("DocumentNo", "string")]
    manifest = write(tmp_path / "o.csv", columns, [make_order(n) for n in range(4)], max_rows_per_file=2)
    opened: list[str] = []

    def factory(path: str) -> Path:
        opened.append(path)
        return Path(path)

    assert len(list(iter_records(manifest.to_dict(), path_factory=factory))) == 4
    assert opened == [f.path for f in manifest.files]


def damaged(tmp_path: Path, name: str, content: bytes) -> Manifest:
    (tmp_path / name).write_bytes(content)
    columns = [Column("DocumentNo", "string"), Column("Amount", "amount", precision=18, scale=2)]
    fmt = "csv" if ".csv" in name else "jsonl"
    return Manifest("S", fmt, [FileInfo(str(tmp_path / name), 1, len(content))], 1, len(content), columns)


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("a.csv", b"DocumentNo,Amount\n1,2\n", "header does not match the manifest's 3 columns"),
        ("b.csv", b'DocumentNo,Amount.Value,Amount.Currency\n"1,2,EUR\n', "ends inside a quoted CSV field"),
        ("c.csv", b"DocumentNo,Amount.Value,Amount.Currency\n1,2\n", "record 2 has 2 fields, expected 3"),
        ("d.csv", b"DocumentNo,Amount.Value,Amount.Currency\n1,x2,EUR\n", "Row 1, column 'Amount'"),
        ("e.jsonl", b'{"DocumentNo": "1"}\n{"DocumentNo": \n', "line 2 is not valid JSON"),
        ("f.csv", b'DocumentNo,Amount.Value,Amount.Currency\n"1"x,2,EUR\n', "malformed CSV"),
    ],
)
def test_damaged_files_fail_with_their_path(tmp_path: Path, name: str, content: bytes, fragment: str) -> None:
    with pytest.raises(ErpNetError) as raised:
        list(iter_records(damaged(tmp_path, name, content)))
    assert fragment in str(raised.value)


def test_gzip_is_recognised_by_suffix(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl.gz").write_bytes(gzip.compress(b'{"DocumentNo": "1", "Amount": {"Value": 2.50}}\n'))
    manifest = damaged(tmp_path, "a.jsonl.gz", (tmp_path / "a.jsonl.gz").read_bytes())
    assert list(iter_records(manifest)) == [
        {"DocumentNo": "1", "Amount": {"Value": Decimal("2.5"), "Currency": None}}
    ]


def test_missing_file_and_unknown_format(tmp_path: Path) -> None:
    manifest = Manifest("S", "jsonl", [FileInfo(str(tmp_path / "gone.jsonl"), 1, 1)], 1, 1, [])
    with pytest.raises(ErpNetError, match="does not exist"):
        list(iter_records(manifest))
    manifest.format = "xlsx"
    with pytest.raises(ErpNetConfigError, match="'xlsx' is not one of jsonl, csv, parquet"):
        list(iter_records(manifest))


@pytest.mark.parametrize("suffix", ["jsonl", "csv", "parquet"])
def test_memory_does_not_grow_with_rows(tmp_path: Path, make_order: Any, suffix: str) -> None:
    """Peak Python memory while writing and reading 40 pages stays at that of 8 pages."""
    columns = [
        Column("DocumentNo", "string"),
        Column("DocumentDate", "date"),
        Column("CreationTime", "timestamp"),
        Column("TotalAmount", "amount", precision=18, scale=2),
        Column("Description", "multilang"),
    ]
    page = [make_order(n) for n in range(500)]

    def peak(pages: int) -> int:
        tracemalloc.start()
        try:
            with OutputWriter(tmp_path / f"o{pages}.{suffix}", None, columns, row_group_rows=2000) as out:
                for _ in range(pages):
                    out.write_page(page)
            manifest = Manifest("S", out.format, out.files, out.rows, 0, columns)
            assert sum(1 for _ in iter_records(manifest)) == pages * len(page)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, large = peak(8), peak(40)
    assert large < small * 1.25 + 500_000, (small, large)


@pytest.mark.parametrize(
    ("entity_set", "select", "expand"),
    [
        ("Crm_Sales_SalesOrders", ["Id", "default"], "Lines"),
        ("Crm_Sales_SalesOrderLines", None, None),
        ("General_Products_Products", ["default", "Id"], None),
    ],
)
def test_sandbox_pages_round_trip_through_every_format(
    tmp_path: Path, erpnet_sandbox: Any, entity_set: str, select: list[str] | None, expand: str | None
) -> None:
    """Real pages from the local ERP.net sandbox: its $metadata, its value shapes, every format."""
    from airflow_provider_erpnet.client import ErpNetClient, ErpNetSettings
    from airflow_provider_erpnet.io import columns_for
    from airflow_provider_erpnet.sandbox import DEFAULT_CLIENT_ID, DEFAULT_SECRET

    settings = ErpNetSettings(
        instance_url=erpnet_sandbox.base_url,
        client_id=DEFAULT_CLIENT_ID,
        client_secret=DEFAULT_SECRET,
        disk_cache=False,
    )
    with ErpNetClient(settings) as client:
        columns = columns_for(client.metadata(), entity_set, select, expand)
        query = {"select": select, "expand": expand, "page_size": 200}
        pages = [page.records for page in itertools.islice(client.iter_pages(entity_set, **query), 3)]
    results = {}
    for suffix in ("jsonl", "csv", "parquet"):
        with OutputWriter(tmp_path / f"out.{suffix}", None, columns, max_rows_per_file=250) as out:
            for records in pages:
                out.write_page(records)
        results[suffix] = list(
            iter_records(Manifest(entity_set, out.format, out.files, out.rows, 0, columns))
        )
    assert len(results["jsonl"]) == sum(len(p) for p in pages) > 0
    assert results["csv"] == results["jsonl"]
    assert results["parquet"] == results["jsonl"]
    source, first = pages[0][0], results["parquet"][0]
    for column in columns:
        value = source.get(column.name)
        if column.kind == "reference" and value is not None:
            assert first[column.name] == value["@odata.id"]
        elif column.kind in ("json", "multilang", "string", "enum", "bool", "int32", "int64", "decimal"):
            assert first[column.name] == value, column.name
        elif column.kind in ("amount", "quantity") and value is not None:
            assert first[column.name]["Value"] == Decimal(str(value["Value"])), column.name
