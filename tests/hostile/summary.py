"""The hostile suite's table at the end of the run, also when pytest-xdist workers ran the cases.

A plugin of the root conftest, so the xdist controller (which collects no tests, hence never
loads ``tests/hostile/conftest.py``) has these hooks: each worker hands its rows over when it
finishes, and the controller prints one table of all of them.
"""

from __future__ import annotations

from typing import Any

import pytest

RESULTS = pytest.StashKey[list[dict[str, Any]]]()
_WORKER_KEY = "hostile_results"


def pytest_configure(config: pytest.Config) -> None:
    config.stash[RESULTS] = []


def pytest_sessionfinish(session: pytest.Session) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: the controller prints the table
        workeroutput[_WORKER_KEY] = session.config.stash.get(RESULTS, [])


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist's hook in the controller when a worker ends: keep the rows it sent."""
    node.config.stash[RESULTS].extend(getattr(node, "workeroutput", {}).get(_WORKER_KEY, []))


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if getattr(config, "workeroutput", None) is not None:
        return
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
