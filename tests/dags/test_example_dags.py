"""Every example DAG runs under a real ``airflow dags test`` against the sandbox and writes what it says."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq

from airflow_provider_erpnet.io.convert import parse_timestamp


def _env(sandbox, out: Path) -> dict[str, str]:
    return {
        "AIRFLOW_CONN_ERPNET_DEFAULT": sandbox.connection_json(),
        "AIRFLOW_VAR_ERPNET_OUTPUT_DIR": str(out),
    }


def test_nightly_full_export(dag_test, erpnet_sandbox, tmp_path: Path) -> None:
    dag_test("erpnet_nightly_full_export", env=_env(erpnet_sandbox, tmp_path), logical_date="2026-11-29")
    for name, entity_set in (("customers", "Crm_Sales_Customers"), ("products", "General_Products_Products")):
        table = pq.read_table(tmp_path / "full" / "2026-11-29" / f"{name}.parquet")
        rows = erpnet_sandbox.dataset.rows(entity_set)
        assert table.num_rows == len(rows) == erpnet_sandbox.dataset.count(entity_set)
        assert table.column("Id").to_pylist() == [row["Id"] for row in rows]
    assert not [p for p in tmp_path.rglob(".*") if ".tmp-" in p.name]


def test_hourly_sales_orders(dag_test, erpnet_sandbox_factory, tmp_path: Path) -> None:
    sandbox = erpnet_sandbox_factory(scale=10_000)
    dag_test(
        "erpnet_hourly_sales_orders", env=_env(sandbox, tmp_path), logical_date="2026-06-29T11:00:00+00:00"
    )
    # The run covers one hour; its file is named after the interval's start.
    path, published = sorted((tmp_path / "sales_orders").iterdir())
    assert published.name == f"_{path.name}.manifest.json"
    interval_start = dt.datetime.strptime(path.name, "%Y%m%dT%H%M%SZ.jsonl").replace(tzinfo=dt.timezone.utc)
    start, end = interval_start - dt.timedelta(minutes=5), interval_start + dt.timedelta(hours=1)
    written = [json.loads(line) for line in path.open()]
    expected = [
        row
        for row in sandbox.dataset.rows("Crm_Sales_SalesOrders")
        if start <= parse_timestamp(row["AggregateLastUpdateTimeUtc"]) <= end
    ]
    assert len(expected) >= 3, "pick an hour that holds rows"
    assert [row["Id"] for row in written] == [row["Id"] for row in expected]
    assert [len(row["Lines"]) for row in written] == [len(row["Lines"]) for row in expected]


def test_taskflow_pipeline(dag_test, erpnet_sandbox, tmp_path: Path) -> None:
    result = dag_test("erpnet_taskflow_pipeline", env=_env(erpnet_sandbox, tmp_path))
    output = result.stdout + result.stderr
    first = erpnet_sandbox.dataset.rows("Crm_Sales_Customers")[0]
    assert f"Sample: {first['Number']} " in output
    logged = json.loads(re.search(r"Manifest: (\{.*\}) \[", output).group(1))
    assert logged["rows"] == logged["server_count"] == erpnet_sandbox.dataset.count("Crm_Sales_Customers")
    assert [column["name"] for column in logged["columns"]][:2] == ["Number", "DisplayText"]
    (summary_path,) = tmp_path.glob("taskflow/*/summary.json")
    summary = json.loads(summary_path.read_text())
    totals: dict[str, Decimal] = defaultdict(Decimal)
    customers: dict[str, int] = defaultdict(int)
    for row in erpnet_sandbox.dataset.rows("Crm_Sales_Customers"):
        totals[row["CreditLimit"]["Currency"]] += row["CreditLimit"]["Value"]
        customers[row["CreditLimit"]["Currency"]] += 1
    assert summary["rows"] == erpnet_sandbox.dataset.count("Crm_Sales_Customers")
    assert summary["credit_limit_by_currency"] == {
        currency: {"customers": customers[currency], "total": str(total)}
        for currency, total in sorted(totals.items())
    }
    assert pq.read_table(summary_path.with_name("customers.parquet")).num_rows == summary["rows"]
