"""Collects what every hostile case ended with and prints the table at the end of the run."""

from __future__ import annotations

from typing import Any

import pytest

RESULTS = pytest.StashKey[list[dict[str, Any]]]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[RESULTS] = []


@pytest.fixture
def hostile_results(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    """The run's list of case results; each test appends one row."""
    return request.config.stash[RESULTS]


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    results = config.stash.get(RESULTS, [])
    if not results:
        return
    write = terminalreporter.write_line
    terminalreporter.section("hostile-server cases")
    write(f"{'defect':<7}{'case':<62}{'seconds':>8}  {'outcome':<22}{'partial':>8}{'leaks':>6}")
    for row in results:
        write(
            f"{row['defect']:<7}{row['case'][:60]:<62}{row['seconds']:>8.2f}  {row['outcome']:<22}"
            f"{row['partial_files']:>8}{row['leaks']:>6}"
        )
    bounded = sum(row["bounded"] for row in results)
    partial = sum(row["partial_files"] for row in results)
    leaks = sum(row["leaks"] for row in results)
    passed = sum(row["passed"] for row in results)
    write(
        f"cases tried: {len(results)}, bounded: {bounded}, partial files: {partial}, leaks: {leaks}, "
        f"as expected: {passed}"
    )
