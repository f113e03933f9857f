"""HTTPS against the sandbox with a private CA: refused by default with a message that names the fix,
accepted with the connection's CA bundle."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_provider_erpnet.client import ErpNetClient, ErpNetSettings, ErpNetTransportError
from airflow_provider_erpnet.client.auth import clear_memory_cache
from airflow_provider_erpnet.hooks.connection_extras import settings_from_connection
from airflow_provider_erpnet.sandbox import DEFAULT_CLIENT_ID, DEFAULT_SECRET, Sandbox


@pytest.fixture
def https_sandbox(erpnet_sandbox_factory) -> Sandbox:
    clear_memory_cache()
    return erpnet_sandbox_factory(scale=50, tls=True)


def _settings(sandbox: Sandbox, **changes: object) -> ErpNetSettings:
    return ErpNetSettings(
        instance_url=sandbox.base_url,
        client_id=DEFAULT_CLIENT_ID,
        client_secret=DEFAULT_SECRET,
        disk_cache=False,
        max_attempts=2,
        **changes,  # type: ignore[arg-type]
    )


def test_the_sandbox_serves_https_with_its_own_ca(https_sandbox: Sandbox) -> None:
    assert https_sandbox.base_url.startswith("https://127.0.0.1:")
    assert Path(https_sandbox.ca_bundle).read_text().startswith("-----BEGIN CERTIFICATE-----")


def test_the_default_refuses_a_private_ca_and_names_the_fix(
    https_sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with ErpNetClient(_settings(https_sandbox)) as client, pytest.raises(ErpNetTransportError) as raised:
        client.count("Crm_Sales_Customers")
    message = str(raised.value)
    assert "TLS handshake" in message and "CERTIFICATE_VERIFY_FAILED" in message, message
    assert "set ca_bundle" in message
    assert raised.value.setting == "ca_bundle"
    assert https_sandbox.stats()["tokens_issued"] == 0  # nothing, the secret least of all, was sent
    assert DEFAULT_SECRET not in message + caplog.text


def test_the_connection_ca_bundle_makes_it_work(https_sandbox: Sandbox) -> None:
    settings = settings_from_connection(
        conn_id="erpnet_tls",
        host=https_sandbox.base_url,
        login=DEFAULT_CLIENT_ID,
        password=DEFAULT_SECRET,
        extra={"ca_bundle": https_sandbox.ca_bundle, "disk_cache": False},
    )
    with ErpNetClient(settings) as client:
        rows = list(client.iter_records("Crm_Sales_Customers", page_size=20))
        assert len(rows) == client.count("Crm_Sales_Customers") == 50
    assert https_sandbox.stats()["tokens_issued"] == 1


def test_the_cli_serves_https_and_prints_the_ca_bundle() -> None:
    """``erpnet-sandbox --tls``: the banner names the CA bundle, the connection JSON carries it."""
    command = [
        sys.executable,
        "-m",
        "airflow_provider_erpnet.sandbox",
        "--port",
        "0",
        "--scale",
        "10",
        "--tls",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if "Stop with Ctrl+C" in line:
                break
        banner = "".join(lines)
        assert re.search(r"running at https://127\.0\.0\.1:\d+", banner), banner
        bundle = re.search(r"CA bundle:\s+(\S+)", banner)
        assert bundle is not None and Path(bundle.group(1)).is_file()
        exported = re.search(r"AIRFLOW_CONN_ERPNET_DEFAULT='(.*)'", banner)
        assert exported is not None and json.loads(exported.group(1))["extra"]["ca_bundle"] == bundle.group(1)
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert not Path(bundle.group(1)).exists()  # removed when the sandbox stopped
