"""Each operator test starts with a process that has logged no notes yet."""

from __future__ import annotations

import pytest

from airflow_provider_erpnet.operators import extraction


@pytest.fixture(autouse=True)
def fresh_process_notes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Notes logged once per process (the default-selection INFO) are per test here: a sandbox of
    an earlier test may have had the same port, hence the same connection."""
    monkeypatch.setattr(extraction, "_DEFAULT_SELECTION_NOTED", set())
