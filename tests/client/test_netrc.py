"""A ~/.netrc entry for the API host must not replace the bearer token (requests honours netrc)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

from airflow_provider_erpnet.client import ErpNetClient, ErpNetSettings
from airflow_provider_erpnet.sandbox import Sandbox


def test_netrc_entry_does_not_override_bearer_token(
    erpnet_sandbox: Sandbox, sandbox_settings: ErpNetSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text(
        f"machine {urlsplit(erpnet_sandbox.base_url).hostname} login someone password elsewhere\n"
    )
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    with ErpNetClient(sandbox_settings) as client:
        assert client.count("Crm_Sales_Customers") == erpnet_sandbox.dataset.count("Crm_Sales_Customers")
    assert erpnet_sandbox.stats()["api_by_status"] == {"200": 1}
