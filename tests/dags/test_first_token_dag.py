"""The seed's flow as a DAG, run by a real `airflow dags test` against the sandbox."""

from __future__ import annotations


def test_first_token_dag(dag_test, erpnet_sandbox) -> None:
    result = dag_test(
        "erpnet_first_token", env={"AIRFLOW_CONN_ERPNET_DEFAULT": erpnet_sandbox.connection_json()}
    )
    output = result.stdout + result.stderr
    first = erpnet_sandbox.dataset.rows("Crm_Sales_Customers")[0]
    assert f"{first['Number']}: " in output
    stats = erpnet_sandbox.stats()
    assert stats["tokens_issued"] == 1, stats
    assert stats["api_by_status"] == {"200": 1}, stats
