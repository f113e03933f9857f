"""Issue 3: each bad input gives one clear error through the hook, and nothing leaks.

For every case the test asserts the error class, a phrase that names the problem or the fix, and
that neither the client secret nor any token issued during the case appears in the message, its
repr, or the captured logs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
from airflow.sdk.log import mask_secret

from airflow_provider_erpnet.client import auth
from airflow_provider_erpnet.client.errors import (
    ErpNetApiError,
    ErpNetAuthError,
    ErpNetError,
    ErpNetTransportError,
)
from airflow_provider_erpnet.hooks import erpnet as erpnet_hook_module
from airflow_provider_erpnet.hooks.erpnet import ErpNetHook
from airflow_provider_erpnet.sandbox import DEFAULT_SECRET, Sandbox
from tests.client.helpers_servers import StubServer, html_reply, refused_port_url

SECRETS_SEEN: list[str] = []


@pytest.fixture(autouse=True)
def record_masked_secrets(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Record what the hook hands to Airflow's masker: every secret and token of the case."""
    SECRETS_SEEN.clear()
    auth.clear_memory_cache()

    def mask_and_record(secret: str, name: str | None = None) -> None:
        SECRETS_SEEN.append(secret)
        mask_secret(secret, name)

    monkeypatch.setattr(erpnet_hook_module, "mask_secret", mask_and_record)
    yield
    auth.set_secret_masker(None)


@dataclass
class Case:
    error: type[ErpNetError]
    needles: tuple[str, ...]
    read: Callable[[ErpNetHook], object] = lambda hook: list(hook.iter_records("Crm_Sales_Customers"))
    login: str = "my.trusted.app/first"
    secret: str = DEFAULT_SECRET
    extra: dict[str, object] = field(default_factory=dict)
    host: str | None = None  # None: the sandbox


CASES: dict[str, Case] = {
    "wrong secret": Case(ErpNetAuthError, ("invalid_client", "secret"), secret="not-the-secret-42"),
    "unknown app": Case(ErpNetAuthError, ("invalid_client", "ApplicationUri"), login="my.unknown.app/x"),
    "disabled app": Case(ErpNetAuthError, ("invalid_client", "IsEnabled"), login="my.trusted.app/disabled"),
    "scope not allowed": Case(
        ErpNetAuthError,
        ("invalid_scope", "update"),
        login="my.trusted.app/readonly",
        extra={"scope": "update"},
    ),
    "bad filter": Case(
        ErpNetApiError,
        ("400", "Crm_Sales_Customers", "check $filter"),
        read=lambda hook: list(hook.iter_records("Crm_Sales_Customers", filter="Number eq")),
    ),
    "unsupported operator": Case(
        ErpNetApiError,
        ("500", "or", "operator 'or' is not supported"),
        read=lambda hook: list(
            hook.iter_records("Crm_Sales_Customers", filter="Active eq true or Active eq false")
        ),
    ),
    "unknown entity set": Case(
        ErpNetApiError,
        ("Crm_Sales_Customer'", "did you mean Crm_Sales_Customers"),
        read=lambda hook: list(hook.iter_records("Crm_Sales_Customer")),
    ),
    "unknown property in select": Case(
        ErpNetApiError,
        ("400", "Nmber"),
        read=lambda hook: list(hook.iter_records("Crm_Sales_Customers", select="Id,Nmber")),
    ),
    "read timeout": Case(
        ErpNetTransportError, ("timed out", "timeout"), extra={"read_timeout": 0.5, "max_attempts": 2}
    ),
    "unreachable host": Case(
        ErpNetTransportError,
        ("127.0.0.1", "host", "Could not reach", "ConnectionRefusedError"),
        host="closed",
        extra={"max_attempts": 2},  # the default 8 would back off for up to two minutes
    ),
    "host answers HTML": Case(
        ErpNetTransportError, ("not what an ERP.net identity server sends", "host"), host="html"
    ),
}


@contextmanager
def host_for(case: Case, sandbox: Sandbox) -> Iterator[str]:
    if case.host == "closed":
        with refused_port_url() as url:
            yield url
    elif case.host == "html":
        with StubServer(lambda request: html_reply()) as server:
            yield server.url
    else:
        yield sandbox.base_url


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_gives_one_clear_error_and_leaks_nothing(
    name: str, erpnet_sandbox_factory, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    case = CASES[name]
    sandbox = erpnet_sandbox_factory(latency_ms=3000 if name == "read timeout" else 0)
    caplog.set_level(logging.DEBUG)
    with host_for(case, sandbox) as host:
        conn = {"conn_type": "erpnet", "host": host, "login": case.login, "password": case.secret}
        conn["extra"] = {"disk_cache": False, **case.extra}
        monkeypatch.setenv("AIRFLOW_CONN_ERPNET_DEFAULT", json.dumps(conn))
        hook = ErpNetHook()
        with pytest.raises(case.error) as info:
            case.read(hook)
        hook.close()
    message = str(info.value)
    for needle in case.needles:
        assert needle in message, message
    leaked = [
        secret
        for secret in {case.secret, *SECRETS_SEEN}
        if secret in message or secret in repr(info.value) or secret in caplog.text
    ]
    assert leaked == [], f"{name}: a secret or token leaked into the error or the logs"
    assert case.secret in SECRETS_SEEN, "the client secret must be registered with the masker"
