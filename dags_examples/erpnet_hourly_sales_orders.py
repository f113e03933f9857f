"""Hourly incremental sync of ERP.net sales orders, with their lines, to JSON Lines.

Each run reads the orders whose ``AggregateLastUpdateTimeUtc`` lies in its data interval, reaching
back 5 minutes before the interval's start to catch rows committed late (ERP.net's recommended
pattern), and writes ``<erpnet_output_dir>/sales_orders/<interval start>.jsonl``. Re-running an
interval rewrites the same file. Consecutive files share the overlap rows: merge them downstream
by ``Id``, keeping the row with the greatest ``AggregateLastUpdateTimeUtc`` (docs/operator.md).

The schedule is a ``CronDataIntervalTimetable``: a plain cron string in Airflow 3 gives runs of
zero width, which the operator refuses for incremental reads. ``start_date`` sits inside the test
suite's sandbox data (2025-07-01..2026-06-30; a sandbox you start yourself holds the year up to
now); with ``catchup=True`` Airflow runs every hour since then, four at a time. Move it to where
your history should start.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import CronDataIntervalTimetable, dag

from airflow_provider_erpnet.operators.odata import ErpNetODataOperator

OUTPUT_DIR = "{{ var.value.get('erpnet_output_dir', '/tmp/erpnet') }}/sales_orders"


@dag(
    schedule=CronDataIntervalTimetable("@hourly", timezone="UTC"),
    start_date=pendulum.datetime(2026, 6, 29, tz="UTC"),
    catchup=True,
    max_active_runs=4,
    tags=["erpnet", "example"],
)
def erpnet_hourly_sales_orders() -> None:
    ErpNetODataOperator(
        task_id="sync_sales_orders",
        entity_set="Crm_Sales_SalesOrders",
        expand="Lines",
        incremental_column="AggregateLastUpdateTimeUtc",
        overlap=timedelta(minutes=5),
        output_path=OUTPUT_DIR + "/{{ data_interval_start.strftime('%Y%m%dT%H%M%SZ') }}.jsonl",
    )


erpnet_hourly_sales_orders()
