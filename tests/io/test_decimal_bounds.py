"""Every decimal is checked against its column's precision and scale, in every format (issue 8, defect 6).

``"Value": 1e400000000`` is 11 bytes on the wire; written as plain digits it is a 400 MB CSV cell.
The check reads only a value's exponent and digit count, so such a value is refused before anything
formats it, with the rule Parquet applies: at most P-S integer digits, and no non-zero digit
beyond the scale (trailing zeros beyond it are dropped, not refused).
"""

from __future__ import annotations

import tracemalloc
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

from airflow_provider_erpnet.client.errors import ErpNetError
from airflow_provider_erpnet.client.jsonutil import loads
from airflow_provider_erpnet.io import Column, Manifest, OutputWriter, iter_records
from airflow_provider_erpnet.io.pagecodec import PageCodec

SUFFIXES = ["jsonl", "csv", "csv.gz", "parquet"]
WEIGHT = Column("Weight", "decimal", precision=18, scale=3, source_type="Edm.Decimal")
RATE = Column("Rate", "decimal", source_type="Edm.Decimal")  # no facets: decimal(38,10)
AMOUNT = Column("TotalAmount", "amount", precision=18, scale=2, source_type="Erp.Amount")


PATHS = ["exact", "fast"]
_BODY = msgspec.json.Encoder(decimal_format="number")


def write(path: Path, columns: list[Column], records: list[dict[str, Any]], way: str = "exact") -> Manifest:
    """Write one page as decoded dicts (exact path) or as the page codec decodes its body (fast path)."""
    if way == "fast":
        decoded = PageCodec(columns).decode(_BODY.encode({"value": records}))
        records = decoded["value"] if isinstance(decoded, dict) else decoded.value
    with OutputWriter(path, None, columns) as out:
        out.write_page(records)
    return Manifest("S", out.format, out.files, out.rows, 0, columns)


@pytest.mark.parametrize("way", PATHS)
@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize(
    ("column", "record", "digits"),
    [
        (WEIGHT, {"Weight": loads(b"1e400000000")}, "400000001 integer and 0 fraction digits"),
        (WEIGHT, {"Weight": loads(b"-1e-400000000")}, "0 integer and 400000000 fraction digits"),
        (RATE, {"Rate": "12345678901234567890123456789"}, "29 integer and 0 fraction digits"),
        (WEIGHT, {"Weight": Decimal("12.3456")}, "2 integer and 4 fraction digits"),
        (AMOUNT, {"TotalAmount": {"Value": loads(b"9.9e400000000"), "Currency": "EUR"}}, "400000001 integer"),
    ],
)
def test_a_decimal_outside_its_column_fails_in_every_format_before_it_is_formatted(
    tmp_path: Path, suffix: str, column: Column, record: dict[str, Any], digits: str, way: str
) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(ErpNetError) as raised:
            write(tmp_path / f"orders.{suffix}", [column], [{column.name: None}, record], way)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    message = str(raised.value)
    assert f"Row 2, column '{column.name}'" in message
    assert digits in message
    assert f"decimal({column.precision or 38},{column.scale or 10})" in message
    assert "400000000" not in message.replace(digits, "")  # digits counted, the value not echoed
    assert peak < 50_000_000, f"{peak} bytes traced: the value was formatted"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("way", PATHS)
@pytest.mark.parametrize("suffix", SUFFIXES)
def test_zeros_and_trailing_zeros_are_written_at_the_column_scale(
    tmp_path: Path, suffix: str, way: str
) -> None:
    values = ["0E-400000000", "0E+400000000", "1.50000000000000000000000000000000000000000", "-0.000"]
    records = [{"Weight": loads(value.encode())} for value in values]
    manifest = write(tmp_path / f"orders.{suffix}", [WEIGHT], records, way)
    assert manifest.files[0].bytes < 1_000
    back = [r["Weight"] for r in iter_records(manifest)]
    assert back == [Decimal(0), Decimal(0), Decimal("1.5"), Decimal(0)]


@pytest.mark.parametrize("way", PATHS)
def test_values_that_fit_are_written_as_they_came(tmp_path: Path, way: str) -> None:
    values = [Decimal("999999999999999.999"), Decimal("-0.001"), Decimal("3.5"), Decimal(7), Decimal("1E+2")]
    manifest = write(tmp_path / "orders.csv", [WEIGHT], [{"Weight": value} for value in values], way)
    assert (tmp_path / "orders.csv").read_text().splitlines()[1:] == [
        "999999999999999.999",
        "-0.001",
        "3.5",
        "7",
        "100",
    ]
    assert [r["Weight"] for r in iter_records(manifest)] == values
