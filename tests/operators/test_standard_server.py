"""The operator against ERP.net and against a standard OData v4 server (the sandbox's strict mode).

With ``select`` unset the operator asks for ERP.net's ``$select=default,Id``; a standard server
refuses ``default``, and the operator then reads without ``$select``: every row with every column
the server sent, none dropped.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.execution_time.context import OutletEventAccessors

from airflow_provider_erpnet.io import iter_records
from airflow_provider_erpnet.io.convert import parse_timestamp
from airflow_provider_erpnet.operators.odata import ErpNetODataOperator
from airflow_provider_erpnet.sandbox.model import entity_set

CUSTOMERS = "Crm_Sales_Customers"
ORDERS = "Crm_Sales_SalesOrders"
STAMP = "AggregateLastUpdateTimeUtc"
UTC = dt.timezone.utc
both_modes = pytest.mark.parametrize("strict", [False, True], ids=["erpnet", "strict"])


def _context(start: dt.datetime | None = None, end: dt.datetime | None = None) -> dict[str, Any]:
    return {"data_interval_start": start, "data_interval_end": end, "outlet_events": OutletEventAccessors()}


def _sent_keys(path: Path) -> list[str]:
    with path.open(encoding="utf-8") as lines:
        return list(json.loads(next(lines)))


@both_modes
def test_without_select_every_row_comes_with_every_column_the_server_sent(
    erpnet_sandbox, monkeypatch, tmp_path: Path, strict: bool
) -> None:
    erpnet_sandbox.set_faults(strict=strict)
    monkeypatch.setenv("AIRFLOW_CONN_ERPNET_DEFAULT", erpnet_sandbox.connection_json())
    target = tmp_path / "customers.jsonl"
    manifest = ErpNetODataOperator(task_id="all", entity_set=CUSTOMERS, output_path=str(target)).execute(
        _context()
    )
    model = entity_set(CUSTOMERS)
    if strict:  # every structural property, Turnover and AggregateLastUpdateTimeUtc included
        expected = list(model.all_structural)
        assert "select" not in manifest["query"]
    else:  # ERP.net's default selection (which leaves out the calculated Turnover) and Id
        expected = [*model.default_select, "Id"]
        assert manifest["query"]["select"] == "default,Id"
    assert [column["name"] for column in manifest["columns"]] == expected
    assert _sent_keys(target) == expected
    rows = erpnet_sandbox.dataset.rows(CUSTOMERS)
    assert manifest["rows"] == manifest["server_count"] == len(rows) == 1000
    records = list(iter_records(manifest))
    assert [r["Id"] for r in records] == [row["Id"] for row in rows]
    assert [r["Number"] for r in records] == [row["Number"] for row in rows]
    if strict:
        assert [r["Turnover"] for r in records] == [row["Turnover"] for row in rows]
        assert [r[STAMP] for r in records] == [parse_timestamp(row[STAMP]) for row in rows]


@both_modes
def test_an_incremental_window_with_a_date_filter(
    erpnet_sandbox_factory, monkeypatch, tmp_path: Path, strict: bool
) -> None:
    sandbox = erpnet_sandbox_factory(scale=20_000, strict=strict)
    monkeypatch.setenv("AIRFLOW_CONN_ERPNET_DEFAULT", sandbox.connection_json())
    start = dt.datetime(2026, 6, 30, 8, tzinfo=UTC)
    operator = ErpNetODataOperator(
        task_id="orders",
        entity_set=ORDERS,
        filter="DocumentDate ge 2026-05-01Z",
        incremental_column=STAMP,
        output_path=str(tmp_path / "orders.jsonl"),
    )
    manifest = operator.execute(_context(start, start + dt.timedelta(hours=1)))
    low, high = start - dt.timedelta(minutes=5), start + dt.timedelta(hours=1)
    expected = [
        row["Id"]
        for row in sandbox.dataset.rows(ORDERS)
        if low <= parse_timestamp(row[STAMP]) <= high and row["DocumentDate"] >= "2026-05-01"
    ]
    assert [r["Id"] for r in iter_records(manifest)] == expected
    assert manifest["rows"] == manifest["server_count"] == len(expected) > 0
    date = "2026-05-01" if strict else "2026-05-01Z"
    assert manifest["query"]["filter"].startswith(f"(DocumentDate ge {date}) and ({STAMP} ge ")
    assert sandbox.stats()["api_by_status"].get("400", 0) == (2 if strict else 0)  # date, then default
