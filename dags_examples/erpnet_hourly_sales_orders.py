"""Hourly incremental sync of ERP.net sales orders, with their lines, to JSON Lines.

Each run reads the orders whose ``AggregateLastUpdateTimeUtc`` lies in its data interval, reaching
back 5 minutes before the interval's start to catch rows committed late (ERP.net's recommended
pattern), and writes ``<erpnet_output_dir>/sales_orders/<interval start>.jsonl``. Re-running an
interval rewrites the same file. Consecutive files share the overlap rows: merge them downstream
by ``Id``, keeping the row with the greatest ``AggregateLastUpdateTimeUtc`` (docs/operator.md).

When unpaused: one run for the last complete hour, then one run at the end of every hour
(``catchup=False``: no catch-up since ``start_date``). Load history with a bounded backfill,
``airflow backfill create --dag-id erpnet_hourly_sales_orders --from-date ... --to-date ...``.
Triggered without a logical date (``airflow dags trigger``, the REST API), a run reads the last
complete hour before it was triggered and names its file after the moment it was triggered.
An hour without changes writes an empty file and emits no Asset event.

The schedule is a ``CronDataIntervalTimetable``: a plain cron string in Airflow 3 gives runs of
zero width, which the operator refuses for incremental reads. ``start_date`` sits inside the test
suite's sandbox data (2025-07-01..2026-06-30; a sandbox you start yourself holds the year up to
now). Move it to where your history should start.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import CronDataIntervalTimetable, dag

from airflow_provider_erpnet.operators.odata import ErpNetODataOperator

OUTPUT_DIR = "{{ var.value.get('erpnet_output_dir', '/tmp/erpnet') }}/sales_orders"
# dag_run.data_interval_start is None for a run triggered without a logical date; run_after always exists.
FILE_NAME = "{{ (dag_run.data_interval_start or dag_run.run_after).strftime('%Y%m%dT%H%M%SZ') }}.jsonl"


@dag(
    schedule=CronDataIntervalTimetable("@hourly", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["erpnet", "example"],
)
def erpnet_hourly_sales_orders() -> None:
    ErpNetODataOperator(
        task_id="sync_sales_orders",
        entity_set="Crm_Sales_SalesOrders",
        expand="Lines",
        incremental_column="AggregateLastUpdateTimeUtc",
        overlap=timedelta(minutes=5),
        output_path=f"{OUTPUT_DIR}/{FILE_NAME}",
    )


erpnet_hourly_sales_orders()
