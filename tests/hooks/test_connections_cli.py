"""`airflow connections test` with the connection in AIRFLOW_CONN_ERPNET_DEFAULT (real CLI)."""

from __future__ import annotations


def test_cli_connection_test_succeeds(airflow_cli, erpnet_sandbox) -> None:
    result = airflow_cli(
        "connections",
        "test",
        "erpnet_default",
        env={"AIRFLOW_CONN_ERPNET_DEFAULT": erpnet_sandbox.connection_json()},
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "Connection success!" in output
    assert erpnet_sandbox.stats()["tokens_issued"] == 1


def test_cli_connection_test_fails_clearly_with_wrong_secret(airflow_cli, erpnet_sandbox) -> None:
    wrong = "definitely-wrong-secret"
    result = airflow_cli(
        "connections",
        "test",
        "erpnet_default",
        env={"AIRFLOW_CONN_ERPNET_DEFAULT": erpnet_sandbox.connection_json(secret=wrong)},
    )
    output = result.stdout + result.stderr
    assert "Connection failed" in output, output[-3000:]
    assert "invalid_client" in output
    assert wrong not in output
