"""Each hostile case appends what it ended with; ``summary`` (a root conftest plugin) prints the table."""

from __future__ import annotations

from typing import Any

import pytest

from tests.hostile.summary import RESULTS


@pytest.fixture
def hostile_results(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    """The run's list of case results; each test appends one row."""
    return request.config.stash[RESULTS]
