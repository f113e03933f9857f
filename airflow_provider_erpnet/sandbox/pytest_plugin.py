"""pytest fixtures that give each test its own running ERP.net sandbox.

Register with ``pytest_plugins = ["airflow_provider_erpnet.sandbox.pytest_plugin"]`` in a root
conftest.py. Every sandbox a fixture starts is stopped when the test ends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from airflow_provider_erpnet.sandbox import Sandbox


@pytest.fixture
def erpnet_sandbox_factory() -> Iterator[Callable[..., Sandbox]]:
    """``factory(**options)`` starts a ``Sandbox(**options)``; all of them stop after the test."""
    started: list[Sandbox] = []

    def factory(**options: Any) -> Sandbox:
        sandbox = Sandbox(**options).start()
        started.append(sandbox)
        return sandbox

    yield factory
    for sandbox in reversed(started):
        sandbox.stop()


@pytest.fixture
def erpnet_sandbox(erpnet_sandbox_factory: Callable[..., Sandbox]) -> Sandbox:
    """A fresh sandbox with default options (scale 1000, seed 0, no faults)."""
    return erpnet_sandbox_factory()
