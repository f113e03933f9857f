"""Format writers: exact values in every format, the bytes each format puts on disk, and errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from airflow_provider_erpnet.client.errors import ErpNetConfigError, ErpNetError
from airflow_provider_erpnet.io import (
    Column,
    Manifest,
    OutputWriter,
    iter_records,
    parse_date,
    parse_timestamp,
    resolve_format,
)

UTC = timezone.utc
SUFFIXES = ["jsonl", "jsonl.gz", "csv", "csv.gz", "parquet"]
LINE = {
    "@odata.id": "Crm_Sales_SalesOrderLines(22222222-2222-2222-2222-222222222222)",
    "LineNo": 10,
    "Quantity": {"Value": Decimal("2.000"), "Unit": "PCS"},
    "UnitPrice": {"Value": Decimal("0.10"), "Currency": "EUR"},
}
CUSTOMER = "Crm_Sales_Customers(11111111-1111-1111-1111-111111111111)"
CUSTOM = {"Value": "High", "ValueId": None, "Description": {"EN": "High"}}

# What every format must give back, written out by hand (not computed by the code under test).
EXPECTED = [
    {
        "Id": "00000000-0000-0000-0000-000000000001",
        "ObjectVersion": 1,
        "DisplayText": "SO-1",
        "DocumentNo": "000001",
        "DocumentDate": date(2020, 5, 8),
        "State": "Released",
        "Void": False,
        "Sequence": 2**40 + 1,
        "ExchangeRate": Decimal("1.95583"),
        "Weight": Decimal("12.5"),
        "TotalAmount": {"Value": Decimal("1234567890123456.78"), "Currency": "EUR"},
        "TotalQuantity": {"Value": Decimal("3.55"), "Unit": "PCS"},
        "Description": {"EN": "Order", "BG": "Поръчка"},
        "Notes": "plain",
        "CreationTime": datetime(2020, 5, 8, 7, 11, 12, 123456, tzinfo=UTC),
        "Customer": CUSTOMER,
        "DocumentCurrency": None,
        "AggregateLastUpdateTimeUtc": datetime(2020, 5, 8, 7, 11, 12, tzinfo=UTC),
        "Tags": ["a", "b"],
        "CustomProperty_Priority": CUSTOM,
        "Lines": [LINE],
    },
    {
        "Id": "00000000-0000-0000-0000-000000000002",
        "ObjectVersion": 2,
        "DisplayText": "",
        "DocumentNo": "000002",
        "DocumentDate": date(2020, 5, 8),
        "State": "Released",
        "Void": False,
        "Sequence": 2**40 + 2,
        "ExchangeRate": Decimal("123456789012345678.1234567890"),
        "Weight": Decimal("-999999999999999.999"),
        "TotalAmount": {"Value": Decimal("-9999999999999999.99"), "Currency": "BGN"},
        "TotalQuantity": {"Value": Decimal(7), "Unit": ""},
        "Description": {"en": "Emoji 😀", "BG": "Кирилица «ё»", "DE": None},
        "Notes": 'quote " comma , newline \n and CRLF \r\n end',
        "CreationTime": datetime(2021, 3, 28, 0, 59, 59, 999999, tzinfo=UTC),
        "Customer": CUSTOMER,
        "DocumentCurrency": None,
        "AggregateLastUpdateTimeUtc": datetime(2021, 1, 1, 1, 59, 59, 999999, tzinfo=UTC),
        "Tags": [],
        "CustomProperty_Priority": CUSTOM,
        "Lines": [LINE],
    },
    {
        "Id": "00000000-0000-0000-0000-000000000003",
        "ObjectVersion": 3,
        "DisplayText": " padded ",
        "DocumentNo": "000003",
        "DocumentDate": date(2020, 5, 8),
        "State": "Released",
        "Void": True,
        "Sequence": -(2**63),
        "ExchangeRate": Decimal(0),
        "Weight": None,
        "TotalAmount": None,
        "TotalQuantity": {"Value": None, "Unit": "KG"},
        "Description": {},
        "Notes": None,
        "CreationTime": datetime(2020, 10, 24, 23, 30, tzinfo=UTC),
        "Customer": None,
        "DocumentCurrency": None,
        "AggregateLastUpdateTimeUtc": datetime(1, 1, 1, tzinfo=UTC),
        "Tags": None,
        "CustomProperty_Priority": None,
        "Lines": [],
    },
]


def write(path: Path, columns: list[Column], pages: list[list[dict[str, Any]]], **options: Any) -> Manifest:
    with OutputWriter(path, None, columns, **options) as out:
        for page in pages:
            out.write_page(page)
    return Manifest("Crm_Sales_SalesOrders", out.format, out.files, out.rows, 0, columns)


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_every_kind_round_trips_exactly(
    tmp_path: Path, columns: list[Column], records: list[dict[str, Any]], suffix: str
) -> None:
    manifest = write(tmp_path / f"orders.{suffix}", columns, [records[:2], records[2:]])
    back = list(iter_records(manifest.to_dict()))
    assert back == EXPECTED
    for row in back:  # equal is not enough: decimals must never have become floats
        assert isinstance(row["ExchangeRate"], Decimal)
        assert isinstance(row["Lines"][0]["Quantity"]["Value"], Decimal) if row["Lines"] else True


def test_jsonl_keeps_exact_numbers_and_utf8_and_drops_annotations(
    tmp_path: Path, columns: list[Column], records: list[dict[str, Any]]
) -> None:
    write(tmp_path / "orders.jsonl", columns, [records])
    text = (tmp_path / "orders.jsonl").read_text("utf-8")
    lines = text.split("\n")
    assert len(lines) == 4 and lines[-1] == ""  # one record per line, newline-terminated
    assert '"ExchangeRate":123456789012345678.1234567890' in lines[1]
    assert '"TotalAmount":{"Value":1234567890123456.78,"Currency":"EUR"}' in lines[0]
    assert '"TotalQuantity":{"Value":3.550,"Unit":"PCS"}' in lines[0]
    assert "Кирилица «ё»" in lines[1] and "😀" in lines[1]
    assert '"CreationTime":"2020-05-08T07:11:12.123456Z"' in lines[0]
    assert '"Customer":"Crm_Sales_Customers(' in lines[0]
    first = json.loads(lines[0])
    assert "@odata.id" not in first and "@odata.etag" not in first
    assert list(first) == [c.name for c in columns]


def test_csv_flattens_and_keeps_null_apart_from_empty(
    tmp_path: Path, columns: list[Column], records: list[dict[str, Any]]
) -> None:
    write(tmp_path / "orders.csv", columns, [records])
    raw = (tmp_path / "orders.csv").read_bytes().decode("utf-8")
    header = raw.split("\n", 1)[0].split(",")
    assert header[10:14] == [
        "TotalAmount.Value",
        "TotalAmount.Currency",
        "TotalQuantity.Value",
        "TotalQuantity.Unit",
    ]
    assert ',"",' in raw  # DisplayText "" of order 2
    assert ',123456789012345678.1234567890,-999999999999999.999,-9999999999999999.99,BGN,7,"",' in raw
    assert (
        ",true,-9223372036854775808,0.0000000000,,,,,KG,{},,2020-10-24T23:30:00Z,,,0001-01-01T00:00:00Z,,,[]"
        in raw
    )
    assert '"quote "" comma , newline \n and CRLF \r\n end"' in raw
    assert '"{""EN"":""Order"",""BG"":""Поръчка""}"' in raw


def test_parquet_types_are_exact_and_carry_source_metadata(
    tmp_path: Path, columns: list[Column], records: list[dict[str, Any]]
) -> None:
    write(tmp_path / "orders.parquet", columns, [records])
    schema = pq.read_schema(tmp_path / "orders.parquet")
    assert schema.field("Weight").type == pa.decimal128(18, 3)
    assert schema.field("ExchangeRate").type == pa.decimal128(38, 10)
    assert schema.field("TotalAmount").type == pa.struct(
        [pa.field("Value", pa.decimal128(18, 2)), pa.field("Currency", pa.string())]
    )
    assert schema.field("TotalQuantity").type == pa.struct(
        [pa.field("Value", pa.decimal128(18, 3)), pa.field("Unit", pa.string())]
    )
    assert schema.field("Description").type == pa.map_(pa.string(), pa.string())
    assert schema.field("DocumentDate").type == pa.date32()
    assert schema.field("CreationTime").type == pa.timestamp("us", tz="UTC")
    assert schema.field("Void").type == pa.bool_()
    assert schema.field("ObjectVersion").type == pa.int32()
    assert schema.field("Sequence").type == pa.int64()
    for name in ("State", "Customer", "Lines", "Id"):
        assert schema.field(name).type == pa.string()
    assert schema.field("TotalAmount").metadata == {
        b"erpnet.kind": b"amount",
        b"erpnet.nullable": b"true",
        b"erpnet.source_type": b"Erp.Amount",
        b"erpnet.precision": b"18",
        b"erpnet.scale": b"2",
    }
    table = pq.read_table(tmp_path / "orders.parquet")
    assert table.column("Weight").to_pylist()[1] == Decimal("-999999999999999.999")
    assert table.column("Lines").to_pylist()[2] == "[]"


def test_parquet_writes_one_row_group_per_buffer(tmp_path: Path, make_order: Any) -> None:
    columns = [Column("DocumentNo", "string"), Column("Weight", "decimal", precision=18, scale=3)]
    pages = [[make_order(page * 3 + i) for i in range(3)] for page in range(4)]  # 12 rows, pages of 3
    write(tmp_path / "orders.parquet", columns, pages, row_group_rows=5)
    metadata = pq.ParquetFile(tmp_path / "orders.parquet").metadata
    assert [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)] == [6, 6]


@pytest.mark.parametrize(
    ("value", "digits"),
    [
        (Decimal("1234567890123456.5"), "16 integer and 1 fraction digits"),
        (Decimal("12.3456"), "2 integer and 4 fraction digits"),
    ],
)
def test_decimal_that_does_not_fit_fails_naming_the_column(
    tmp_path: Path, make_order: Any, value: Decimal, digits: str
) -> None:
    columns = [Column("Weight", "decimal", precision=18, scale=3, source_type="Edm.Decimal")]
    with pytest.raises(ErpNetError) as raised:
        write(tmp_path / "orders.parquet", columns, [[make_order(1), make_order(2, Weight=value)]])
    message = str(raised.value)
    assert "Row 2, column 'Weight'" in message
    assert digits in message and "decimal(18,3)" in message
    assert str(value) not in message  # digits counted, data not echoed
    assert list(tmp_path.iterdir()) == []
    # Text formats apply the same rule (issue 8, defect 6: they used to keep any value).
    with pytest.raises(ErpNetError, match=digits):
        write(tmp_path / "orders.jsonl", columns, [[make_order(2, Weight=value)]])
    assert list(tmp_path.iterdir()) == []


def test_trailing_zeros_beyond_the_scale_are_not_a_loss(tmp_path: Path, make_order: Any) -> None:
    columns = [Column("Weight", "decimal", precision=18, scale=3)]
    manifest = write(tmp_path / "orders.parquet", columns, [[make_order(1, Weight=Decimal("1.50000"))]])
    assert next(iter_records(manifest))["Weight"] == Decimal("1.5")


@pytest.mark.parametrize(
    ("column", "value", "fragment"),
    [
        (Column("Weight", "decimal"), 1.5, "got a float"),
        (Column("Weight", "decimal"), "12,5", "not a decimal number"),
        (Column("DocumentDate", "date"), "08.05.2020", "not an ISO date"),
        (Column("CreationTime", "timestamp"), "2020-02-30T00:00:00Z", "day is out of range"),
        (Column("Customer", "reference"), {"Name": "ACME"}, "name the navigation in expand"),
        (Column("ObjectVersion", "int32"), 2**31, "outside the int32 range"),
        (Column("Void", "bool"), "true", "expected true or false"),
    ],
)
def test_values_that_do_not_match_their_column_fail_clearly(
    tmp_path: Path, column: Column, value: Any, fragment: str
) -> None:
    with pytest.raises(ErpNetError) as raised, OutputWriter(tmp_path / "x.jsonl", None, [column]) as out:
        out.write_page([{column.name: None}, {column.name: value}])
    assert f"Row 2, column {column.name!r}" in str(raised.value)
    assert fragment in str(raised.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2020-03-29T01:59:59+01:00", datetime(2020, 3, 29, 0, 59, 59, tzinfo=UTC)),  # CET, before DST
        ("2020-03-29T03:00:00+02:00", datetime(2020, 3, 29, 1, 0, tzinfo=UTC)),  # CEST, after DST
        ("2020-12-31T23:30:00-01:30", datetime(2021, 1, 1, 1, 0, tzinfo=UTC)),  # crosses the year
        ("2020-05-08T00:00:00.1234567Z", datetime(2020, 5, 8, 0, 0, 0, 123456, tzinfo=UTC)),  # .NET ticks
        ("2020-05-08T00:00:00.5", datetime(2020, 5, 8, 0, 0, 0, 500000, tzinfo=UTC)),  # no offset: UTC
        ("2020-05-08T10:00+0300", datetime(2020, 5, 8, 7, 0, tzinfo=UTC)),
        ("2020-01-01Z", datetime(2020, 1, 1, tzinfo=UTC)),
    ],
)
def test_parse_timestamp(text: str, expected: datetime) -> None:
    parsed = parse_timestamp(text)
    assert parsed == expected
    assert parsed.utcoffset() is not None and parsed.utcoffset().total_seconds() == 0


def test_parse_date_keeps_the_written_calendar_date() -> None:
    assert parse_date("2020-05-08") == date(2020, 5, 8)
    assert parse_date("2020-05-08T00:00:00Z") == date(2020, 5, 8)
    assert parse_date("2020-01-01Z") == date(2020, 1, 1)
    with pytest.raises(ValueError, match="not an ISO date"):
        parse_date("2020/05/08")


@pytest.mark.parametrize(
    ("name", "fmt", "expected", "part"),
    [
        ("orders.jsonl", None, ("jsonl", False), "orders-00003.jsonl"),
        ("orders.NDJSON", None, ("jsonl", False), "orders-00003.NDJSON"),
        ("orders.csv.gz", None, ("csv", True), "orders-00003.csv.gz"),
        ("orders.v2.pq", None, ("parquet", False), "orders.v2-00003.pq"),
        ("orders.txt", "csv", ("csv", False), "orders-00003.txt"),
        ("orders", "jsonl", ("jsonl", False), "orders-00003"),
    ],
)
def test_resolve_format(name: str, fmt: str | None, expected: tuple[str, bool], part: str) -> None:
    resolved = resolve_format(name, fmt)
    assert (resolved.format.name, resolved.gzip) == expected
    assert resolved.part_name(3) == part


@pytest.mark.parametrize(
    ("name", "fmt", "fragment"),
    [
        ("orders.xlsx", None, ".jsonl, .ndjson, .csv, .parquet, .pq"),
        ("orders.csv", "parquet", "make the suffix and the format agree"),
        ("orders.parquet.gz", None, "drop '.gz'"),
        ("orders.csv", "excel", "Unknown output format 'excel'"),
    ],
)
def test_resolve_format_errors(name: str, fmt: str | None, fragment: str) -> None:
    with pytest.raises(ErpNetConfigError) as raised:
        resolve_format(name, fmt)
    assert fragment in str(raised.value)


def test_without_pyarrow_parquet_fails_early_and_text_formats_still_work(tmp_path: Path) -> None:
    """Simulates a worker without the ``parquet`` extra: ``import pyarrow`` fails in a subprocess."""
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["pyarrow"] = None
        from airflow_provider_erpnet.client.errors import ErpNetConfigError
        from airflow_provider_erpnet.io import Column, Manifest, OutputWriter, iter_records
        columns = [Column("DocumentNo", "string")]
        try:
            OutputWriter({str(tmp_path / "x.parquet")!r}, None, columns)
        except ErpNetConfigError as error:
            print("ERROR:", error)
        with OutputWriter({str(tmp_path / "x.csv")!r}, None, columns) as out:
            out.write_page([{{"DocumentNo": "1"}}])
        manifest = Manifest("S", "csv", out.files, 1, 0, columns)
        print("READ:", list(iter_records(manifest)))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, env=dict(os.environ)
    )
    assert "ERROR: Parquet output and read_table need pyarrow" in result.stdout
    assert "pip install 'airflow-provider-erpnet[parquet]'" in result.stdout
    assert "READ: [{'DocumentNo': '1'}]" in result.stdout
    assert not (tmp_path / "x.parquet").exists()


def test_rows_read_back_can_be_written_again_unchanged(
    tmp_path: Path, columns: list[Column], records: list[dict[str, Any]]
) -> None:
    """The typed rows ``iter_records`` yields are valid input, so a spool can be rewritten in any format."""
    spool = write(tmp_path / "spool.jsonl", columns, [records])
    for suffix in ("csv", "parquet"):
        again = write(tmp_path / f"again.{suffix}", columns, [list(iter_records(spool))])
        assert list(iter_records(again)) == EXPECTED
