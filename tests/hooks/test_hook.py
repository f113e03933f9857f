"""ErpNetHook against the sandbox over HTTP, with the connection taken from the environment."""

from __future__ import annotations

import inspect
import json
import logging

import pytest
from airflow.exceptions import AirflowProviderDeprecationWarning

from airflow_provider_erpnet.client.client import ErpNetClient
from airflow_provider_erpnet.client.errors import ErpNetAuthError, ErpNetConfigError
from airflow_provider_erpnet.hooks.erpnet import ErpNetHook
from tests.client.helpers_servers import refused_port_url


@pytest.fixture
def hook(erpnet_sandbox, monkeypatch: pytest.MonkeyPatch) -> ErpNetHook:
    monkeypatch.setenv("AIRFLOW_CONN_ERPNET_DEFAULT", erpnet_sandbox.connection_json())
    hook = ErpNetHook()
    yield hook
    hook.close()


def test_reading_methods_delegate_to_the_client(hook: ErpNetHook, erpnet_sandbox) -> None:
    expected = [row["Id"] for row in erpnet_sandbox.dataset.rows("Crm_Sales_Customers")]
    ids = [record["Id"] for record in hook.iter_records("Crm_Sales_Customers", select="Id", page_size=300)]
    assert ids == expected
    assert hook.count("Crm_Sales_Customers") == len(expected)
    assert hook.get("Crm_Sales_Customers", expected[7], select="Id,Number")["Id"] == expected[7]
    assert "Crm_Sales_Customers" in hook.metadata().entity_sets
    pages = list(hook.iter_pages("General_Products_Products", page_size=40))
    assert sum(len(page.records) for page in pages) == erpnet_sandbox.dataset.count(
        "General_Products_Products"
    )
    assert erpnet_sandbox.stats()["tokens_issued"] == 1


def test_test_connection_succeeds(hook: ErpNetHook) -> None:
    ok, message = hook.test_connection()
    assert ok, message
    assert "my.trusted.app/first" in message and "entity sets" in message


def test_wrong_secret_fails_clearly_without_leaking(erpnet_sandbox, monkeypatch, caplog) -> None:
    wrong = "wrong-secret-123456"
    monkeypatch.setenv("AIRFLOW_CONN_ERPNET_DEFAULT", erpnet_sandbox.connection_json(secret=wrong))
    caplog.set_level(logging.DEBUG)
    ok, message = ErpNetHook().test_connection()
    assert not ok
    assert "invalid_client" in message and "secret" in message.lower()
    with pytest.raises(ErpNetAuthError):
        next(ErpNetHook().iter_records("Crm_Sales_Customers"))
    assert wrong not in message
    assert wrong not in caplog.text


def test_test_connection_to_an_unreachable_host_gives_up_after_two_attempts(monkeypatch) -> None:
    """The connection has the default 8 attempts; a person waiting on the test gets the answer sooner."""
    with refused_port_url() as host:
        conn = {"conn_type": "erpnet", "host": host, "login": "my.trusted.app/first", "password": "s3cret-x"}
        monkeypatch.setenv("AIRFLOW_CONN_ERPNET_DEFAULT", json.dumps(conn))
        ok, message = ErpNetHook().test_connection()
    assert not ok
    assert "Could not reach the ERP.net identity server" in message and "(ConnectionRefusedError" in message
    assert "; 2 attempts)" in message and host.removeprefix("http://") in message


def test_test_connection_names_the_form_field_not_the_temporary_id(erpnet_sandbox, monkeypatch) -> None:
    """The UI tests a connection under a temporary id such as 'iavHRMtG': the message must not show it."""
    conn = erpnet_sandbox.connection(identity_url="ftp://id.example")
    monkeypatch.setenv("AIRFLOW_CONN_IAVHRMTG", json.dumps(conn))
    ok, message = ErpNetHook("iavHRMtG").test_connection()
    assert not ok
    assert message.startswith("Identity server URL (identity_url) must be an http(s) URL"), message
    assert "iavHRMtG" not in message and "Connection" not in message


def test_test_connection_names_the_field_of_an_unreachable_url(erpnet_sandbox, monkeypatch) -> None:
    with refused_port_url() as refused:
        conn = erpnet_sandbox.connection(api_url=f"{refused}/odata/", max_attempts=1)
        monkeypatch.setenv("AIRFLOW_CONN_IAVHRMTG", json.dumps(conn))
        ok, message = ErpNetHook("iavHRMtG").test_connection()
    assert not ok
    assert message.startswith("Domain API URL (api_url): Could not reach the ERP.net Domain API"), message
    assert "iavHRMtG" not in message


def test_a_bad_setting_at_run_time_names_the_connection_and_the_field(erpnet_sandbox, monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_ERPNET_DEFAULT", erpnet_sandbox.connection_json(page_size=5000))
    with pytest.raises(ErpNetConfigError) as info:
        ErpNetHook().get_conn()
    assert str(info.value).startswith("Connection 'erpnet_default': Page size (page_size) must be between")
    assert info.value.setting == "page_size"


def test_an_old_connection_with_renamed_extras_still_reads(erpnet_sandbox, monkeypatch) -> None:
    """Connections saved before the rename (extra 'timeout') keep working, with a deprecation warning."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_ERPNET_DEFAULT", erpnet_sandbox.connection_json(timeout=33, disk_cache=False)
    )
    hook = ErpNetHook()
    with pytest.warns(AirflowProviderDeprecationWarning, match="'timeout' is now called 'read_timeout'"):
        try:
            assert hook.get_conn().settings.read_timeout == 33.0
            assert hook.count("Crm_Sales_Customers") == erpnet_sandbox.dataset.count("Crm_Sales_Customers")
            ok, message = hook.test_connection()
            assert ok, message
        finally:
            hook.close()


def test_the_hook_has_one_accessor_with_typed_reading_methods() -> None:
    assert not hasattr(ErpNetHook, "get_client")
    for name in ("iter_pages", "iter_records"):
        signature = inspect.signature(getattr(ErpNetHook, name))
        client_signature = inspect.signature(getattr(ErpNetClient, name))
        assert list(signature.parameters)[1:] == list(client_signature.parameters)[1:]
        assert all(p.kind is not p.VAR_KEYWORD for p in signature.parameters.values())
