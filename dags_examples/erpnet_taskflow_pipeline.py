"""A TaskFlow pipeline: extract customers, total their credit limits per currency, write a summary.

``extract`` (the operator) writes Parquet and passes only its manifest through XCom; ``summarise``
reads the rows back from the manifest with ``iter_records`` (exact ``Decimal`` values, whatever
the file format) and sums ``CreditLimit`` per currency; ``write_summary`` stores the totals as
JSON beside the extract, under a directory named after the run. When unpaused: nothing runs until
you trigger it (``schedule=None``). Run it against the local sandbox::

    erpnet-sandbox &                      # prints the AIRFLOW_CONN_ERPNET_DEFAULT to export
    airflow dags test erpnet_taskflow_pipeline
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from decimal import Decimal
from itertools import islice
from typing import Any

import pendulum
from airflow.sdk import ObjectStoragePath, dag, task

from airflow_provider_erpnet.io import iter_records
from airflow_provider_erpnet.operators.odata import ErpNetODataOperator

log = logging.getLogger(__name__)

RUN_DIR = "{{ var.value.get('erpnet_output_dir', '/tmp/erpnet') }}/taskflow/{{ run_id | replace(':', '') }}"


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["erpnet", "example"],
)
def erpnet_taskflow_pipeline() -> None:
    extract = ErpNetODataOperator(
        task_id="extract_customers",
        entity_set="Crm_Sales_Customers",
        select=["Number", "DisplayText", "Active", "CreditLimit"],
        output_path=RUN_DIR + "/customers.parquet",
    )

    @task
    def summarise(manifest: dict[str, Any]) -> dict[str, Any]:
        log.info("Manifest: %s", json.dumps(manifest, sort_keys=True))
        totals: dict[str, Decimal] = defaultdict(Decimal)
        customers: dict[str, int] = defaultdict(int)
        for row in iter_records(manifest):
            limit = row["CreditLimit"]
            if limit is None or limit["Value"] is None:
                continue
            totals[limit["Currency"]] += limit["Value"]
            customers[limit["Currency"]] += 1
        for row in islice(iter_records(manifest), 3):
            log.info("Sample: %s %s, credit limit %s", row["Number"], row["DisplayText"], row["CreditLimit"])
        return {
            "rows": manifest["rows"],
            "credit_limit_by_currency": {
                currency: {"customers": customers[currency], "total": str(total)}
                for currency, total in sorted(totals.items())
            },
        }

    @task
    def write_summary(summary: dict[str, Any], run_dir: str) -> str:
        target = ObjectStoragePath(run_dir if "://" in run_dir else f"file://{run_dir}") / "summary.json"
        target.write_text(json.dumps(summary, indent=2, sort_keys=True))
        for currency, figures in summary["credit_limit_by_currency"].items():
            log.info(
                "%s: %d customers, credit limit total %s", currency, figures["customers"], figures["total"]
            )
        return str(target)

    write_summary(summarise(extract.output), RUN_DIR)


erpnet_taskflow_pipeline()
