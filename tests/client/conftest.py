"""Fixtures shared by the client tests that talk to a running sandbox."""

from __future__ import annotations

import pytest

from airflow_provider_erpnet.client import ErpNetSettings
from airflow_provider_erpnet.sandbox import DEFAULT_CLIENT_ID, DEFAULT_SECRET, Sandbox


@pytest.fixture
def sandbox_settings(erpnet_sandbox: Sandbox) -> ErpNetSettings:
    """Client settings for the test's ``erpnet_sandbox`` and its default trusted app."""
    return ErpNetSettings(
        instance_url=erpnet_sandbox.base_url,
        client_id=DEFAULT_CLIENT_ID,
        client_secret=DEFAULT_SECRET,
        disk_cache=False,
    )
