"""Fixtures shared by the client tests that talk to a running sandbox."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from airflow_provider_erpnet.client import ErpNetSettings
from airflow_provider_erpnet.sandbox import DEFAULT_CLIENT_ID, DEFAULT_SECRET, Sandbox


def settings_for(sandbox: Sandbox) -> ErpNetSettings:
    """Client settings for ``sandbox`` and its default trusted app, without the disk token cache."""
    return ErpNetSettings(
        instance_url=sandbox.base_url,
        client_id=DEFAULT_CLIENT_ID,
        client_secret=DEFAULT_SECRET,
        disk_cache=False,
    )


@pytest.fixture
def sandbox_settings(erpnet_sandbox: Sandbox) -> ErpNetSettings:
    """Client settings for the test's ``erpnet_sandbox`` and its default trusted app."""
    return settings_for(erpnet_sandbox)


@pytest.fixture
def sandbox_settings_for() -> Callable[[Sandbox], ErpNetSettings]:
    """``sandbox_settings_for(sandbox)``: client settings for any sandbox a test started."""
    return settings_for
