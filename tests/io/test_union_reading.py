"""Reading the files of several manifests together, e.g. before and after a schema change."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from airflow_provider_erpnet.client.errors import ErpNetConfigError, ErpNetError
from airflow_provider_erpnet.io import Column, Manifest, OutputWriter, iter_records, read_table
from airflow_provider_erpnet.io.reader import union_columns

ID = Column("Id", "string", nullable=False, source_type="Edm.Guid")
NUMBER = Column("Number", "string")
LIMIT = Column("Limit", "int32")
COLOR = Column("CustomProperty_Color", "json", source_type="Erp.CustomPropertyValue")
STAMP = Column("AggregateLastUpdateTimeUtc", "timestamp")


def write(path: Path, columns: list[Column], records: list[dict]) -> Manifest:
    with OutputWriter(path, None, columns) as writer:
        writer.write_page(records)
    files = writer.commit()
    return Manifest("Crm_Sales_Customers", writer.format, files, writer.rows, 0, columns)


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl", ".csv"])
def test_old_and_new_files_read_together_with_the_union_of_their_columns(tmp_path: Path, suffix: str) -> None:
    stamp = "2026-07-01T08:00:00Z"
    before = write(
        tmp_path / f"a{suffix}", [ID, NUMBER, STAMP], [{"Id": "a", "Number": "1", STAMP.name: stamp}]
    )
    after = write(
        tmp_path / f"b{suffix}",
        [ID, NUMBER, STAMP, COLOR],
        [
            {"Id": "b", "Number": "2", STAMP.name: stamp, COLOR.name: {"Value": "Red", "ValueId": None}},
            {"Id": "c", "Number": None, STAMP.name: stamp, COLOR.name: None},
        ],
    )
    moment = dt.datetime(2026, 7, 1, 8, tzinfo=dt.timezone.utc)
    records = list(iter_records([before, after.to_dict()]))
    assert records == [
        {"Id": "a", "Number": "1", STAMP.name: moment, COLOR.name: None},
        {"Id": "b", "Number": "2", STAMP.name: moment, COLOR.name: {"Value": "Red", "ValueId": None}},
        {"Id": "c", "Number": None, STAMP.name: moment, COLOR.name: None},
    ]
    table = read_table([before, after])
    assert table.column_names == ["Id", "Number", STAMP.name, COLOR.name]
    assert table.column("Id").to_pylist() == ["a", "b", "c"]
    assert table.column(COLOR.name).null_count == 2
    assert table.schema.field(STAMP.name).type == pa.timestamp("us", tz="UTC")
    assert read_table([after]).equals(read_table(after))


def test_a_retyped_column_takes_the_newest_type_where_values_convert(tmp_path: Path) -> None:
    narrow = write(tmp_path / "a.parquet", [ID, LIMIT], [{"Id": "a", "Limit": 7}])
    wide = Column("Limit", "decimal", precision=18, scale=2)
    widened = write(tmp_path / "b.parquet", [ID, wide], [{"Id": "b", "Limit": Decimal("7.50")}])
    assert union_columns([narrow, widened]) == [ID, wide]
    table = read_table([narrow, widened])
    assert table.column("Limit").to_pylist() == [Decimal("7.00"), Decimal("7.50")]

    text = Column("Limit", "string")
    relabeled = write(tmp_path / "c.parquet", [ID, text], [{"Id": "c", "Limit": "seven"}])
    with pytest.raises(ErpNetError, match="'Limit' changed type from string to decimal"):
        read_table([relabeled, widened])


def test_an_empty_list_of_manifests_is_refused() -> None:
    with pytest.raises(ErpNetConfigError, match=r"got list \(empty\)"):
        list(iter_records([]))
