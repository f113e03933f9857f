"""The vendor's first sample as a DAG: acquire a client-credentials token, read ten customers.

Connection ``erpnet_default`` (type ``erpnet``): host = ERP.net instance URL, login = trusted
application URI, password = its secret. The token is never logged or returned; the hook caches it
(memory and a 0600 file) so the second task reuses it instead of taking another licence slot.

When unpaused: nothing runs until you trigger it (``schedule=None``).
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag, task

from airflow_provider_erpnet.hooks.erpnet import ErpNetHook


@dag(schedule=None, start_date=datetime(2026, 1, 1), catchup=False, tags=["erpnet", "example"])
def erpnet_first_token() -> None:
    @task
    def acquire_token() -> str:
        client = ErpNetHook("erpnet_default").get_conn()
        client.transport.auth.token()
        return f"token acquired from {client.transport.auth.token_endpoint}"

    @task
    def first_customers(_: str) -> list[str]:
        hook = ErpNetHook("erpnet_default")
        page = next(hook.iter_pages("Crm_Sales_Customers", select="default,Id", page_size=10))
        for record in page.records:
            print(f"{record['Number']}: {record['DisplayText']}")
        return [record["Id"] for record in page.records]

    first_customers(acquire_token())


erpnet_first_token()
