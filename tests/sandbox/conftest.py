"""Shared helpers for the sandbox's own tests; the sandbox fixtures come from the root conftest."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import requests

from airflow_provider_erpnet.sandbox import DEFAULT_CLIENT_ID, DEFAULT_SECRET, Sandbox

TokenFor = Callable[..., str]


@pytest.fixture
def http() -> Iterator[requests.Session]:
    """A keep-alive session, closed after the test."""
    with requests.Session() as session:
        yield session


@pytest.fixture
def token_for(http: requests.Session) -> TokenFor:
    """``token_for(sandbox, client_id=..., scope=...)``: an access token via the seed's form request."""

    def fetch(sandbox: Sandbox, client_id: str = DEFAULT_CLIENT_ID, scope: str | None = None) -> str:
        form = {"client_id": client_id, "client_secret": DEFAULT_SECRET, "grant_type": "client_credentials"}
        if scope is not None:
            form["scope"] = scope
        response = http.post(f"{sandbox.identity_url}/connect/token", data=form, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    return fetch
