"""Nightly full export of ERP.net customers and products to Parquet.

Each night writes ``<erpnet_output_dir>/full/<date>/customers.parquet`` and ``products.parquet``,
where ``<date>`` is the run's logical date, or for a run triggered without one (``airflow dags
trigger``, the REST API) the day it was triggered.
A file appears only when every page was read and its row count matched the server's ``$count``;
each task returns the file's manifest (paths, rows, column schema) through XCom and updates the
Asset ``erpnet://erpnet_default/<entity set>``.

Retries are safe: a failed or killed attempt leaves nothing at the target, and the next attempt
removes its temporary files and writes the whole file again. Add them with
``default_args={"retries": 2, "retry_delay": timedelta(minutes=10)}``.

When unpaused: one run at once, for the latest 02:00 UTC that has passed (``catchup=False``
skips the earlier ones), then one run every night at 02:00 UTC.

Set the Airflow Variable ``erpnet_output_dir`` (a local directory, or an ObjectStoragePath URL such
as ``s3://aws_default@my-bucket/erpnet``) and the connection ``erpnet_default``.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import CronTriggerTimetable, dag

from airflow_provider_erpnet.operators.odata import ErpNetODataOperator

# ds is undefined in a run without a logical date; (dag_run.logical_date or dag_run.run_after) always exists.
OUTPUT_DIR = (
    "{{ var.value.get('erpnet_output_dir', '/tmp/erpnet') }}/full/"
    "{{ (dag_run.logical_date or dag_run.run_after) | ds }}"
)
EXPORTS = {
    "customers": "Crm_Sales_Customers",
    "products": "General_Products_Products",
}


@dag(
    schedule=CronTriggerTimetable("0 2 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["erpnet", "example"],
)
def erpnet_nightly_full_export() -> None:
    for name, entity_set in EXPORTS.items():
        ErpNetODataOperator(
            task_id=f"export_{name}",
            entity_set=entity_set,
            output_path=f"{OUTPUT_DIR}/{name}.parquet",
        )


erpnet_nightly_full_export()
