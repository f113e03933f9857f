"""ErpNetODataOperator against the sandbox over real HTTP: exact values, windows, XCom mode, checks.

The operator runs in-process through ``execute`` with the context keys it reads (the data interval
and the outlet-event accessors Airflow passes); DAG-level runs are in tests/dags.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from airflow.sdk import Asset, ObjectStoragePath
from airflow.sdk.execution_time.context import OutletEventAccessors
from airflow.sdk.io import attach
from fsspec.implementations.memory import MemoryFileSystem

from airflow_provider_erpnet.client import ErpNetClient, ErpNetSettings, Page
from airflow_provider_erpnet.client.errors import ErpNetConfigError, ErpNetIncompleteError
from airflow_provider_erpnet.io import Manifest, columns_for, iter_records
from airflow_provider_erpnet.io.convert import parse_timestamp
from airflow_provider_erpnet.io.progress import Progress
from airflow_provider_erpnet.operators.extraction import ExtractionRequest, check_completeness, run_extraction
from airflow_provider_erpnet.operators.odata import ErpNetODataOperator, erpnet_asset
from airflow_provider_erpnet.sandbox import DEFAULT_CLIENT_ID, DEFAULT_SECRET

CUSTOMERS = "Crm_Sales_Customers"
ORDERS = "Crm_Sales_SalesOrders"
STAMP = "AggregateLastUpdateTimeUtc"
UTC = dt.timezone.utc


@pytest.fixture
def connect(monkeypatch):
    """Point ``erpnet_default`` at a sandbox, as AIRFLOW_CONN_ERPNET_DEFAULT does for a worker."""

    def use(sandbox) -> None:
        monkeypatch.setenv("AIRFLOW_CONN_ERPNET_DEFAULT", sandbox.connection_json())

    return use


def _context(start: dt.datetime | None = None, end: dt.datetime | None = None) -> dict[str, Any]:
    return {"data_interval_start": start, "data_interval_end": end, "outlet_events": OutletEventAccessors()}


def _client(sandbox) -> ErpNetClient:
    return ErpNetClient(
        ErpNetSettings(
            instance_url=sandbox.base_url,
            client_id=DEFAULT_CLIENT_ID,
            client_secret=DEFAULT_SECRET,
            disk_cache=False,
        )
    )


def _expected(value: Any, arrow_type: Any) -> Any:
    """A sandbox wire value as the Parquet column should hold it, converted here independently of io."""
    if value is None:
        return None
    if pa.types.is_date32(arrow_type):
        return dt.date.fromisoformat(value[:10])
    if pa.types.is_timestamp(arrow_type):
        return parse_timestamp(value)
    if pa.types.is_map(arrow_type):
        return value
    if pa.types.is_string(arrow_type) and isinstance(value, dict):
        return value["@odata.id"]
    return value


def _actual(value: Any, arrow_type: Any) -> Any:
    if value is None:
        return None
    if pa.types.is_map(arrow_type):
        return dict(value)
    if pa.types.is_timestamp(arrow_type):
        return value.astimezone(UTC)
    return value


def test_parquet_export_holds_every_value_exactly(erpnet_sandbox_factory, connect, tmp_path: Path) -> None:
    sandbox = erpnet_sandbox_factory(scale=100_000)
    connect(sandbox)
    target = tmp_path / "customers.parquet"
    # Turnover is outside the server's default selection (a calculated attribute): name it.
    operator = ErpNetODataOperator(
        task_id="customers", entity_set=CUSTOMERS, select="default,Turnover", output_path=f"file://{target}"
    )
    context = _context()
    manifest = operator.execute(context)

    rows = list(sandbox.dataset.rows(CUSTOMERS))  # generated once, not once per column
    assert manifest["rows"] == manifest["server_count"] == sandbox.dataset.count(CUSTOMERS) == 100_000
    assert manifest["files"] == [{"path": str(target), "rows": 100_000, "bytes": target.stat().st_size}]
    assert manifest["duplicates_removed"] == 0
    assert json.loads(json.dumps(manifest)) == manifest

    table = pq.read_table(target)
    with _client(sandbox) as client:
        properties = {p.name: p for p in client.metadata().entity_type(CUSTOMERS).properties}
        complex_types = client.metadata().complex_types
    for field in table.schema:
        decimal = field.type.field("Value").type if pa.types.is_struct(field.type) else field.type
        if pa.types.is_decimal(decimal):
            declared = properties[field.name]
            if declared.type in complex_types:
                declared = next(p for p in complex_types[declared.type].properties if p.name == "Value")
            assert (decimal.precision, decimal.scale) == (declared.precision, declared.scale), field.name
        written = [_actual(value, field.type) for value in table.column(field.name).to_pylist()]
        expected = [_expected(row.get(field.name), field.type) for row in rows]
        assert written == expected, f"column {field.name} differs"
    assert set(table.column_names) >= {"Id", "Number", "CreditLimit", "Party", "Turnover"}
    turnover = [value for value in table.column("Turnover").to_pylist() if value is not None]
    assert len(turnover) > 50_000 and all(isinstance(value, Decimal) for value in turnover)
    event = context["outlet_events"][erpnet_asset("erpnet_default", CUSTOMERS)]
    assert event.extra == {
        "entity_set": CUSTOMERS,
        "format": "parquet",
        "rows": 100_000,
        "paths": [str(target)],
        "window": None,
    }


def test_three_hourly_windows_cover_the_range_and_rerun_identically(
    erpnet_sandbox_factory, connect, tmp_path: Path
) -> None:
    sandbox = erpnet_sandbox_factory(scale=100_000)
    connect(sandbox)
    first = dt.datetime(2025, 12, 31, 23, tzinfo=UTC)  # rows sit exactly on 2026-01-01T00:00:00Z
    manifests = []
    for hour in range(3):
        start = first + dt.timedelta(hours=hour)
        operator = ErpNetODataOperator(
            task_id="orders",
            entity_set=ORDERS,
            expand="Lines",
            incremental_column=STAMP,
            output_path=str(tmp_path / f"hour-{hour}.jsonl"),
        )
        manifests.append(operator.execute(_context(start, start + dt.timedelta(hours=1))))

    low, high = first - dt.timedelta(minutes=5), first + dt.timedelta(hours=3)
    in_range = {
        row["Id"]: row for row in sandbox.dataset.rows(ORDERS) if low <= parse_timestamp(row[STAMP]) <= high
    }
    latest: dict[str, dict[str, Any]] = {}
    for hour, manifest in enumerate(manifests):
        start = first + dt.timedelta(hours=hour) - dt.timedelta(minutes=5)
        end = first + dt.timedelta(hours=hour + 1)
        expected = [r["Id"] for r in in_range.values() if start <= parse_timestamp(r[STAMP]) <= end]
        assert [r["Id"] for r in iter_records(manifest)] == expected
        assert manifest["rows"] == manifest["server_count"] == len(expected) > 0
        for record in iter_records(manifest):
            kept = latest.get(record["Id"])
            if kept is None or record[STAMP] >= kept[STAMP]:
                latest[record["Id"]] = record
    assert latest.keys() == in_range.keys()
    for ident, record in latest.items():
        assert record[STAMP] == parse_timestamp(in_range[ident][STAMP])
        assert record["DocumentNo"] == in_range[ident]["DocumentNo"]
        assert [line["Id"] for line in record["Lines"]] == [line["Id"] for line in in_range[ident]["Lines"]]
    midnight = {r["Id"] for r in in_range.values() if r[STAMP] == "2026-01-01T00:00:00Z"}
    assert midnight, "the overlap case needs rows on the boundary"
    for manifest in manifests[:2]:
        assert midnight <= {record["Id"] for record in iter_records(manifest)}
    assert manifests[1]["window"] == {
        "column": STAMP,
        "start": "2025-12-31T23:55:00Z",
        "end": "2026-01-01T01:00:00Z",
        "overlap_seconds": 300,
    }

    second = Path(manifests[1]["files"][0]["path"])
    before = second.read_bytes()
    operator = ErpNetODataOperator(
        task_id="orders", entity_set=ORDERS, expand="Lines", incremental_column=STAMP, output_path=str(second)
    )
    operator.execute(_context(first + dt.timedelta(hours=1), first + dt.timedelta(hours=2)))
    assert second.read_bytes() == before


def test_records_mode_returns_json_safe_records(erpnet_sandbox, connect) -> None:
    connect(erpnet_sandbox)
    wanted = [row for row in erpnet_sandbox.dataset.rows(CUSTOMERS) if row["Number"] <= "C0000040"]
    operator = ErpNetODataOperator(
        task_id="lookup",
        entity_set=CUSTOMERS,
        filter="Number le 'C0000040'",
        select="Number,CreditLimit,Turnover",
        max_xcom_records=len(wanted),
    )
    assert operator.outlets == []
    records = operator.execute(_context())
    assert json.loads(json.dumps(records)) == records
    assert [(r["Id"], r["Number"]) for r in records] == [(r["Id"], r["Number"]) for r in wanted]
    for record, row in zip(records, wanted, strict=True):
        assert Decimal(record["CreditLimit"]["Value"]) == row["CreditLimit"]["Value"]
        assert isinstance(record["CreditLimit"]["Value"], str)
        assert record["Turnover"] == (None if row["Turnover"] is None else str(row["Turnover"]))


@pytest.mark.parametrize("check_count", [True, False])
def test_records_mode_refuses_more_than_the_limit(erpnet_sandbox, connect, check_count: bool) -> None:
    connect(erpnet_sandbox)
    operator = ErpNetODataOperator(
        task_id="too_many", entity_set=CUSTOMERS, max_xcom_records=999, check_count=check_count
    )
    with pytest.raises(ErpNetConfigError, match=r"max_xcom_records=999.*set output_path"):
        operator.execute(_context())


def test_staged_path_for_another_order_writes_the_same_rows(erpnet_sandbox, tmp_path: Path) -> None:
    with _client(erpnet_sandbox) as client:
        request = ExtractionRequest(CUSTOMERS, select="Number", orderby="Number")
        assert not request.ids_in_order
        manifest = run_extraction(client, request, tmp_path / "by_number.csv")
    records = list(iter_records(manifest))
    expected = sorted(erpnet_sandbox.dataset.rows(CUSTOMERS), key=lambda row: (row["Number"], row["Id"]))
    assert [(r["Number"], r["Id"]) for r in records] == [(r["Number"], r["Id"]) for r in expected]
    assert manifest.duplicates_removed == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["_by_number.csv.manifest.json", "by_number.csv"]


class _OneMoreOnCount(ErpNetClient):
    """A row the server counts but the extraction did not see, as when one is inserted meanwhile.

    The sandbox's data cannot change while it is read, so the count is nudged here; every request
    still goes to the sandbox over HTTP.
    """

    def count(self, entity_set: str, *, filter: str | None = None) -> int:
        return super().count(entity_set, filter=filter) + 1


def test_count_mismatch_commits_nothing(erpnet_sandbox, tmp_path: Path) -> None:
    settings = _client(erpnet_sandbox).settings
    target = tmp_path / "customers.jsonl"
    with _OneMoreOnCount(settings) as client:
        with pytest.raises(
            ErpNetIncompleteError, match=r"wrote 1000 rows but the server counts 1001.*check_count"
        ):
            run_extraction(client, ExtractionRequest(CUSTOMERS), target)
        assert list(tmp_path.iterdir()) == []
        manifest = run_extraction(client, ExtractionRequest(CUSTOMERS, check_count="warn"), target)
    assert (manifest.rows, manifest.server_count) == (1000, 1001)
    assert target.exists()


def test_check_completeness_modes(caplog) -> None:
    check_completeness(CUSTOMERS, 10, 10, True)
    check_completeness(CUSTOMERS, 9, 10, False)
    check_completeness(CUSTOMERS, 9, None, True)
    with pytest.raises(ErpNetIncompleteError, match=r"wrote 9 rows but the server counts 10 .*\(-1\)"):
        check_completeness(CUSTOMERS, 9, 10, True)
    check_completeness(CUSTOMERS, 11, 10, "warn")
    assert "wrote 11 rows but the server counts 10" in caplog.text


def test_object_storage_url(erpnet_sandbox, connect) -> None:
    """A ``memory://`` filesystem stands in for a cloud bucket (mocked bucket; no cloud involved)."""
    attach("memory", fs=MemoryFileSystem())
    connect(erpnet_sandbox)
    operator = ErpNetODataOperator(
        task_id="to_bucket", entity_set=CUSTOMERS, output_path="memory://bucket/erpnet/customers.jsonl"
    )
    manifest = Manifest.from_dict(operator.execute(_context()))
    assert manifest.rows == 1000
    assert manifest.files[0].path.endswith("bucket/erpnet/customers.jsonl")
    path = ObjectStoragePath("memory://bucket/erpnet/customers.jsonl")
    assert sum(1 for _ in path.read_text().splitlines()) == 1000
    assert sorted(p.name for p in path.parent.iterdir()) == [
        "_customers.jsonl.manifest.json",
        "customers.jsonl",
    ]


def test_outlets_rule() -> None:
    plain = ErpNetODataOperator(task_id="a", entity_set=CUSTOMERS, output_path="/tmp/x.parquet")
    assert plain.outlets == [Asset("erpnet://erpnet_default/Crm_Sales_Customers")]
    templated = ErpNetODataOperator(task_id="b", entity_set="{{ params.set }}", output_path="/tmp/x.parquet")
    assert templated.outlets == []
    mine = Asset("s3://bucket/erpnet/customers/")
    chosen = ErpNetODataOperator(
        task_id="c", entity_set=CUSTOMERS, output_path="/tmp/x.parquet", outlets=[mine]
    )
    assert chosen.outlets == [mine]
    assert ErpNetODataOperator.template_fields == (
        "entity_set",
        "filter",
        "select",
        "expand",
        "orderby",
        "output_path",
    )


@pytest.mark.parametrize(
    ("arguments", "needle"),
    [
        ({"page_size": 0}, "page_size"),
        ({"page_size": 5000}, "page_size"),
        ({"output_format": "xlsx"}, "output_format must be one of jsonl, csv, parquet"),
        ({"check_count": "yes"}, "check_count"),
        ({"overlap": dt.timedelta(minutes=-5)}, "overlap"),
        ({"max_rows_per_file": 0}, "max_rows_per_file"),
    ],
)
def test_arguments_are_checked_when_the_dag_is_parsed(arguments: dict[str, Any], needle: str) -> None:
    with pytest.raises(ErpNetConfigError, match=needle):
        ErpNetODataOperator(task_id="bad", entity_set=CUSTOMERS, **arguments)


def test_incremental_run_without_interval_is_refused(erpnet_sandbox, connect, tmp_path: Path) -> None:
    connect(erpnet_sandbox)
    operator = ErpNetODataOperator(
        task_id="orders", entity_set=ORDERS, incremental_column=STAMP, output_path=str(tmp_path / "o.jsonl")
    )
    with pytest.raises(ErpNetConfigError, match="data interval"):
        operator.execute(_context())
    assert list(tmp_path.iterdir()) == []


class _RowSentTwice(ErpNetClient):
    """After page 2, the server sends page 1's first row again with another stamp.

    That is what ``$skip`` paging does when a row is updated while the pages are read; the
    sandbox's data cannot change, so the repeat is injected here, into real pages read over HTTP.
    """

    stamp = "2026-07-01T00:00:00Z"

    def iter_pages(self, entity_set: str, **options: Any) -> Iterator[Page]:
        first: dict[str, Any] | None = None
        for page in super().iter_pages(entity_set, **options):
            first = first or dict(page.records[0])
            yield page
            if page.number == 2:
                yield Page(number=3, records=[{**first, STAMP: self.stamp}], next_link=None)


@pytest.mark.parametrize("stamp", ["2026-07-01T00:00:00Z", "2020-01-01T00:00:00Z"], ids=["newer", "older"])
def test_repeated_row_restarts_staged_and_keeps_the_latest_copy(
    erpnet_sandbox, tmp_path: Path, caplog, stamp: str
) -> None:
    settings = _client(erpnet_sandbox).settings
    request = ExtractionRequest(CUSTOMERS, select="Number", page_size=250, incremental_column=STAMP)
    with _RowSentTwice(settings) as client:
        client.stamp = stamp
        manifest = run_extraction(client, request, tmp_path / "customers.parquet")
    assert "Ids arrived out of order at row 500" in caplog.text
    assert (manifest.rows, manifest.server_count, manifest.duplicates_removed) == (1000, 1000, 1)
    rows = erpnet_sandbox.dataset.rows(CUSTOMERS)
    records = list(iter_records(manifest))
    assert sorted(r["Id"] for r in records) == sorted(r["Id"] for r in rows)
    (repeated,) = [r for r in records if r["Id"] == rows[0]["Id"]]
    newest = max(parse_timestamp(stamp), parse_timestamp(rows[0][STAMP]))
    assert repeated[STAMP] == newest
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "_customers.parquet.manifest.json",
        "customers.parquet",
    ]


def test_progress_lines_are_rate_limited_and_carry_percent_and_eta(caplog) -> None:
    now = [0.0]
    progress = Progress(logging.getLogger("progress"), CUSTOMERS, expected=10_000, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, "progress"):
        for _ in range(25):
            now[0] += 0.5
            progress.page(100)
        now[0] = 26.0  # 16 s after the last line: due by time although only 6 pages passed
        progress.page(100)
        progress.finish(rows=2600, retries=2, nbytes=12345)
    assert [record.getMessage() for record in caplog.records] == [
        f"{CUSTOMERS}: 1000/10000 rows (10%), 200 rows/s, ETA 45 s",
        f"{CUSTOMERS}: 2000/10000 rows (20%), 200 rows/s, ETA 40 s",
        f"{CUSTOMERS}: 2600/10000 rows (26%), 100 rows/s, ETA 74 s",
        f"{CUSTOMERS}: 2600 rows, 26 pages, 12345 bytes, 26.0 s, 100 rows/s, 0 duplicates removed, 2 retries",
    ]


def test_part_files(erpnet_sandbox, connect, tmp_path: Path) -> None:
    connect(erpnet_sandbox)
    operator = ErpNetODataOperator(
        task_id="parts",
        entity_set=CUSTOMERS,
        output_path=str(tmp_path / "customers.csv"),
        max_rows_per_file=300,
    )
    manifest = operator.execute(_context())
    run = Path(manifest["files"][0]["path"]).name.split("-")[1]
    assert [(Path(f["path"]).name, f["rows"]) for f in manifest["files"]] == [
        (f"customers-{run}-00000.csv", 300),
        (f"customers-{run}-00001.csv", 300),
        (f"customers-{run}-00002.csv", 300),
        (f"customers-{run}-00003.csv", 100),
    ]
    assert [r["Id"] for r in iter_records(manifest)] == [
        r["Id"] for r in erpnet_sandbox.dataset.rows(CUSTOMERS)
    ]


def test_default_columns_are_the_ones_the_server_sent(erpnet_sandbox, tmp_path: Path, caplog) -> None:
    """ERP.net's default selection leaves out Turnover (calculated) although $metadata does not say so."""
    with _client(erpnet_sandbox) as client, caplog.at_level(logging.INFO):
        rule = [c.name for c in columns_for(client.metadata(), CUSTOMERS, ("default", "Id"))]
        manifest = run_extraction(client, ExtractionRequest(CUSTOMERS), tmp_path / "customers.parquet")
    assert "Turnover" in rule
    names = [column.name for column in manifest.columns]
    assert names == [name for name in rule if name != "Turnover"]
    assert pq.read_schema(tmp_path / "customers.parquet").names == names
    assert "default selection does not include Turnover" in caplog.text
    assert "select='default,Turnover'" in caplog.text
    first = erpnet_sandbox.dataset.rows(CUSTOMERS)[0]
    assert next(iter_records(manifest))["Number"] == first["Number"]


def test_default_columns_of_an_empty_result_come_from_metadata(erpnet_sandbox, tmp_path: Path) -> None:
    """No record to look at: the metadata rule is all there is, so the empty file keeps every column."""
    with _client(erpnet_sandbox) as client:
        rule = columns_for(client.metadata(), CUSTOMERS, ("default", "Id"))
        request = ExtractionRequest(CUSTOMERS, filter="Number eq 'no such customer'")
        manifest = run_extraction(client, request, tmp_path / "none.parquet")
    assert (manifest.rows, manifest.server_count) == (0, 0)
    assert manifest.columns == rule
    assert pq.read_schema(tmp_path / "none.parquet").names == [column.name for column in rule]
