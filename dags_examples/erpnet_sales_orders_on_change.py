"""Event-driven sync: extract ERP.net sales orders when they change, not on a clock.

The Asset ``erpnet://erpnet_default/Crm_Sales_SalesOrders`` is watched by an
``ErpNetChangesTrigger`` running in Airflow's triggerer: one ``$count`` request a minute while
nothing changes. When orders change, the trigger fires an Asset event carrying the window of
changes (``from``..``to`` on ``AggregateLastUpdateTimeUtc``, 5 minutes of overlap included) and
this DAG runs. Its extraction reads exactly that window (a run triggered by several events reads
their union) and writes ``<erpnet_output_dir>/sales_orders_changed/<run>.jsonl``; merge the files
downstream by ``Id``, keeping the row with the greatest ``AggregateLastUpdateTimeUtc``. A run
triggered by hand (with or without a logical date), or by another task's event on the same Asset,
reads what the watcher would report next: the changes since the last committed window.

Safe to unpause: the watcher starts at the moment it first runs (no backlog), the output is a
local directory (Airflow Variable ``erpnet_output_dir``, default ``/tmp/erpnet``), and one run
at a time reads only what changed. After a triggerer restart the watcher resumes after the last
window an extraction committed, so changes made while the triggerer was down are extracted by
the next run (docs/change-detection.md). Needs a triggerer, and Airflow 3.3+ for the restart
guarantee (the Asset state store).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, AssetWatcher, dag

from airflow_provider_erpnet.operators.odata import ErpNetODataOperator
from airflow_provider_erpnet.triggers.erpnet import ErpNetChangesTrigger

OUTPUT_DIR = "{{ var.value.get('erpnet_output_dir', '/tmp/erpnet') }}/sales_orders_changed"

sales_orders_changed = Asset(
    "erpnet://erpnet_default/Crm_Sales_SalesOrders",
    watchers=[
        AssetWatcher(
            name="erpnet_sales_orders_changes",
            trigger=ErpNetChangesTrigger(
                erpnet_conn_id="erpnet_default",
                entity_set="Crm_Sales_SalesOrders",
                poll_interval=60,
                overlap_seconds=300,
            ),
        )
    ],
)


@dag(
    schedule=[sales_orders_changed],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["erpnet", "example"],
)
def erpnet_sales_orders_on_change() -> None:
    ErpNetODataOperator(
        task_id="extract_changed_orders",
        entity_set="Crm_Sales_SalesOrders",
        expand="Lines",
        incremental_column="AggregateLastUpdateTimeUtc",
        output_path=OUTPUT_DIR + "/{{ dag_run.run_after.strftime('%Y%m%dT%H%M%S%fZ') }}.jsonl",
    )


erpnet_sales_orders_on_change()
