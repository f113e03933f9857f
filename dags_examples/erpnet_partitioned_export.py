"""One large entity set extracted by many workers at once: plan partitions, map, gather.

``plan`` splits ``Crm_Sales_Customers`` into ``PARTITIONS`` ranges of Id holding about the same
number of rows (found with ``$count`` probes, no rows read). ``extract`` is one mapped task per
range: Airflow's executor (Celery, Kubernetes, ...) runs them on as many workers as it has, and
each writes its own part, ``customers.part-003-of-008.parquet``, that appears only when complete
and matches its range's ``$count``. ``gather`` checks that every range is there once and that the
parts account for the set's ``$count``, and returns one manifest listing every part: downstream
tasks read it with ``iter_records``/``read_table`` like a single file's manifest. The gather task
updates the Asset ``erpnet://erpnet_default/Crm_Sales_Customers``; the parts do not.

Rows created while the DAG runs land in exactly one range. A part re-read by a retry includes
them; a row created in a range after its part was read is counted by ``gather``, logged and left
for the next run (docs/partitions.md). Retries are safe: a failed part leaves nothing behind.

When unpaused: one run at once, for the latest 03:00 UTC that has passed (``catchup=False``
skips the earlier ones), then one run every night at 03:00 UTC. A run triggered without a
logical date (``airflow dags trigger``, the REST API) writes under the day it was triggered.

Set the Airflow Variable ``erpnet_output_dir`` (a local directory, or an ObjectStoragePath URL
such as ``s3://aws_default@my-bucket/erpnet``) and the connection ``erpnet_default``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pendulum
from airflow.sdk import dag, task

from airflow_provider_erpnet.hooks.erpnet import ErpNetHook
from airflow_provider_erpnet.operators.odata import ErpNetODataOperator, erpnet_asset

ENTITY_SET = "Crm_Sales_Customers"
PARTITIONS = 4
RUN_DIR = (
    "{{ var.value.get('erpnet_output_dir', '/tmp/erpnet') }}/partitioned/"
    "{{ (dag_run.logical_date or dag_run.run_after) | ds }}"
)


@dag(
    schedule="0 3 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    default_args={"retries": 2, "retry_delay": dt.timedelta(seconds=30)},
    tags=["erpnet", "example"],
)
def erpnet_partitioned_export() -> None:
    @task
    def plan() -> list[dict[str, Any]]:
        with ErpNetHook() as hook:
            return hook.plan_partitions(ENTITY_SET, PARTITIONS)

    extract = ErpNetODataOperator.partial(
        task_id="extract",
        entity_set=ENTITY_SET,
        output_path=f"{RUN_DIR}/customers.parquet",
    ).expand(partition=plan())

    @task(outlets=[erpnet_asset(ErpNetHook.default_conn_name, ENTITY_SET)])
    def gather(parts: list[dict[str, Any]]) -> dict[str, Any]:
        with ErpNetHook() as hook:
            return hook.gather_partitions(parts)

    gather(extract.output)


erpnet_partitioned_export()
