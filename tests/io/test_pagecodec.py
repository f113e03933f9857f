"""The page codec (fast path) writes what RecordConverter (exact path) writes, or fails the same way."""

from __future__ import annotations

import gc
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pyarrow.parquet as pq
import pytest

from airflow_provider_erpnet.client.errors import ErpNetError
from airflow_provider_erpnet.client.jsonutil import loads
from airflow_provider_erpnet.io import Column, OutputWriter
from airflow_provider_erpnet.io.jsontext import dumps_lines
from airflow_provider_erpnet.io.pagecodec import PageCodec, TypedPage

SUFFIXES = ["jsonl", "jsonl.gz", "csv", "csv.gz", "parquet"]
_BODY = msgspec.json.Encoder(decimal_format="number")


def body(records: list[dict[str, Any]], next_link: str | None = None) -> bytes:
    """A Domain API page as the server sends it (decimals as JSON numbers)."""
    page: dict[str, Any] = {"@odata.context": "$metadata#Crm_Sales_SalesOrders", "value": records}
    if next_link:
        page["@odata.nextLink"] = next_link
    return _BODY.encode(page)


def records_of(decoded: Any) -> Any:
    """The page's records: a TypedPage, or dicts where the codec fell back to generic decoding."""
    return decoded["value"] if isinstance(decoded, dict) else decoded.value


def write(path: Path, columns: list[Column], pages: list[Any], **options: Any) -> list[Path]:
    """Write the pages; the files written, in part order."""
    with OutputWriter(path, None, columns, **options) as out:
        for page in pages:
            out.write_page(page)
        return [Path(info.path) for info in out.commit()]


def both_paths(tmp_path: Path, columns: list[Column], records: list[dict[str, Any]], suffix: str) -> None:
    """The same page through the codec and as decoded dicts: the files must be identical."""
    codec = PageCodec(columns)
    decoded = codec.decode(body(records, "next"))
    assert isinstance(records_of(decoded), TypedPage | list)
    write(tmp_path / f"fast.{suffix}", columns, [records_of(decoded)])
    write(tmp_path / f"exact.{suffix}", columns, [loads(body(records))["value"]])
    if suffix == "parquet":
        assert pq.read_table(tmp_path / "fast.parquet").equals(pq.read_table(tmp_path / "exact.parquet"))
    assert (tmp_path / f"fast.{suffix}").read_bytes() == (tmp_path / f"exact.{suffix}").read_bytes()


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_every_kind_is_written_byte_for_byte_as_the_exact_path(
    tmp_path: Path, columns: list[Column], records: list[dict[str, Any]], suffix: str
) -> None:
    decoded = PageCodec(columns).decode(body(records, "next"))
    assert isinstance(decoded.value, TypedPage) and decoded.next_link == "next"
    both_paths(tmp_path, columns, records, suffix)


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize(
    "overrides",
    [
        {"CreationTime": "2020-05-08T10:11:12.1234567+03:00"},  # offset and .NET ticks: fixed per value
        {"CreationTime": "2020-05-08T10:11:12.000000Z"},
        {"DocumentDate": "2020-05-08T00:00:00Z"},  # ERP.net's form of a date
        {"TotalAmount": {"Value": None, "Currency": None}},  # both members null: the amount is null
        {"TotalQuantity": {"Value": "3.550", "Unit": "PCS"}},  # Value as text
        {"TotalQuantity": {"Value": 7, "Unit": None}},
        {"Description": {"@odata.type": "#Erp.MultilanguageString", "EN": "x"}},  # annotation dropped
        {"Customer": "Crm_Sales_Customers(11111111-1111-1111-1111-111111111111)"},  # already a string
        {"ExchangeRate": 3},
        {"Notes": 'say "hi", then\nleave  '},
        {"Notes": ""},
    ],
)
def test_values_the_checks_refuse_still_come_out_exact(
    tmp_path: Path, columns: list[Column], make_order: Any, suffix: str, overrides: dict[str, Any]
) -> None:
    both_paths(tmp_path, columns, [make_order(1), make_order(2, **overrides), make_order(3)], suffix)


def erpnet_forms(number: int, make_order: Any) -> dict[str, Any]:
    """An order whose date is in ERP.net's form and whose timestamp is already the output form."""
    return make_order(
        number,
        DocumentDate=f"2020-05-{number:02d}T00:00:00Z",
        CreationTime=f"2020-05-08T10:11:{number:02d}" + (f".{number:06d}Z" if number % 2 else "Z"),
    )


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_columns_checked_whole_in_erpnet_date_form_and_output_timestamps(
    tmp_path: Path, columns: list[Column], make_order: Any, suffix: str
) -> None:
    records = [erpnet_forms(n, make_order) for n in range(1, 5)]
    records.append(make_order(5, DocumentDate=None, CreationTime=None))
    page = records_of(PageCodec(columns).decode(body(records)))
    page.codec.prepare(page)
    assert page.column("DocumentDate")[:2] == ["2020-05-01", "2020-05-02"]
    both_paths(tmp_path, columns, records, suffix)


def test_an_impossible_date_in_erpnet_form_fails_as_on_the_exact_path(
    tmp_path: Path, columns: list[Column], make_order: Any
) -> None:
    records = [erpnet_forms(1, make_order), make_order(2, DocumentDate="2021-02-29T00:00:00Z")]
    page = records_of(PageCodec(columns).decode(body(records)))
    with pytest.raises(ErpNetError, match=r"Row 2, column 'DocumentDate'.*day is out of range"):
        write(tmp_path / "x.jsonl", columns, [page])


@pytest.mark.parametrize("suffix", ["jsonl", "csv", "parquet"])
@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"CreationTime": "2020-02-30T00:00:00Z"}, "day is out of range"),
        ({"DocumentDate": "08.05.2020"}, "not an ISO date"),
        ({"ExchangeRate": "NaN"}, "NaN and infinity"),
        ({"ObjectVersion": 2**31}, "outside the int32 range"),
        ({"Customer": {"Name": "ACME"}}, "name the navigation in expand"),
    ],
)
def test_bad_values_fail_as_on_the_exact_path(
    tmp_path: Path,
    columns: list[Column],
    make_order: Any,
    suffix: str,
    overrides: dict[str, Any],
    fragment: str,
) -> None:
    codec = PageCodec(columns)
    page = records_of(codec.decode(body([make_order(1), make_order(2, **overrides)])))
    with pytest.raises(ErpNetError) as raised:
        write(tmp_path / f"x.{suffix}", columns, [page])
    assert "Row 2, column" in str(raised.value) and fragment in str(raised.value)
    assert list(tmp_path.iterdir()) == []


def test_decimal_that_does_not_fit_parquet_fails_naming_row_and_column(
    tmp_path: Path, make_order: Any
) -> None:
    columns = [Column("Weight", "decimal", precision=18, scale=3, source_type="Edm.Decimal")]
    records = [make_order(1), make_order(2, Weight=Decimal("12.3456"))]
    page = records_of(PageCodec(columns).decode(body(records)))
    assert isinstance(page, TypedPage)
    with pytest.raises(ErpNetError, match=r"Row 2, column 'Weight'.*2 integer and 4 fraction digits"):
        write(tmp_path / "x.parquet", columns, [page])


def test_pages_split_across_part_files_like_the_exact_path(
    tmp_path: Path, columns: list[Column], make_order: Any
) -> None:
    records = [make_order(n) for n in range(1, 8)]
    codec = PageCodec(columns)
    for suffix in ("jsonl", "csv", "parquet"):
        fast_dir, exact_dir = tmp_path / f"fast-{suffix}", tmp_path / f"exact-{suffix}"
        fast_dir.mkdir(), exact_dir.mkdir()
        pages = [records[:3], records[3:]]
        fast = [records_of(codec.decode(body(p))) for p in pages]
        fast_files = write(fast_dir / f"o.{suffix}", columns, fast, max_rows_per_file=2)
        exact = [loads(body(p))["value"] for p in pages]
        exact_files = write(exact_dir / f"o.{suffix}", columns, exact, max_rows_per_file=2)
        assert len(fast_files) == len(exact_files) == 4
        for fast_file, exact_file in zip(fast_files, exact_files, strict=True):
            if suffix == "parquet":
                assert pq.read_table(fast_file).equals(pq.read_table(exact_file))
            else:
                assert fast_file.read_bytes() == exact_file.read_bytes()


def test_a_page_the_structs_refuse_is_decoded_generically(columns: list[Column], make_order: Any) -> None:
    """A shape msgspec's strict types reject (a record that is not an object) falls back to dicts."""
    decoded = PageCodec(columns).decode(body([make_order(1)]).replace(b'"value":[{', b'"value":[1,{', 1))
    assert isinstance(decoded, dict) and decoded["value"][0] == 1


@pytest.mark.parametrize("collector_on", [True, False])
def test_making_columns_leaves_the_garbage_collector_as_it_was(
    columns: list[Column], records: list[dict[str, Any]], collector_on: bool
) -> None:
    page = records_of(PageCodec(columns).decode(body(records)))
    was_on = gc.isenabled()
    (gc.enable if collector_on else gc.disable)()
    try:
        assert len(page.columns()) == len(columns)
        assert gc.isenabled() is collector_on
    finally:
        (gc.enable if was_on else gc.disable)()


def test_fixed_columns_reach_the_records_for_json_lines_whatever_was_written_first(
    columns: list[Column], make_order: Any
) -> None:
    """prepare's fixes (here ERP.net's dates) reach the records only when JSON Lines is encoded."""
    records = [erpnet_forms(n, make_order) for n in range(1, 5)]
    codec = PageCodec(columns)
    csv_first, jsonl_first = (records_of(codec.decode(body(records))) for _ in range(2))
    for page in (csv_first, jsonl_first):
        codec.prepare(page)
    csv_bytes = codec.csv(csv_first)
    jsonl_bytes = codec.jsonl(jsonl_first)
    assert codec.jsonl(csv_first) == jsonl_bytes
    assert codec.csv(jsonl_first) == csv_bytes
    exact = codec.exact_rows(records_of(codec.decode(body(records))), 1)
    assert jsonl_bytes == dumps_lines(exact)
