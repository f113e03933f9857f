"""pytest fixtures that give each test its own running ERP.net sandbox.

Register with ``pytest_plugins = ["airflow_provider_erpnet.sandbox.pytest_plugin"]`` in a root
conftest.py. Every sandbox a fixture starts is stopped when the test ends.

Unlike ``Sandbox()`` itself, whose data ends at the current time, the fixtures' data ends at
``FIXED_DATA_END`` (2026-06-30T23:59:59Z) unless a test passes ``data_end``: the same rows in every
run, so a test can name the hours it reads. ``strict=True`` gives a standard OData v4 server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from airflow_provider_erpnet.sandbox import FIXED_DATA_END, Sandbox


@pytest.fixture
def erpnet_sandbox_factory() -> Iterator[Callable[..., Sandbox]]:
    """``factory(**options)`` starts a ``Sandbox(**options)`` (data ending at ``FIXED_DATA_END``
    unless ``data_end`` is given); all of them stop after the test."""
    started: list[Sandbox] = []

    def factory(**options: Any) -> Sandbox:
        sandbox = Sandbox(**{"data_end": FIXED_DATA_END, **options}).start()
        started.append(sandbox)
        return sandbox

    yield factory
    for sandbox in reversed(started):
        sandbox.stop()


@pytest.fixture
def erpnet_sandbox(erpnet_sandbox_factory: Callable[..., Sandbox]) -> Sandbox:
    """A fresh sandbox with default options (scale 1000, seed 0, no faults, data ending at
    ``FIXED_DATA_END``)."""
    return erpnet_sandbox_factory()
