"""Issue 3's acceptance runs through ErpNetHook and the `erpnet` connection, against the sandbox.

Each test states the figure it checks; the sandbox's admin stats are the referee (tokens issued,
API answers by status, faults injected).
"""

from __future__ import annotations

import json
import multiprocessing
from collections.abc import Callable

import pytest

from airflow_provider_erpnet.client import auth
from airflow_provider_erpnet.hooks.erpnet import ErpNetHook
from airflow_provider_erpnet.sandbox import Sandbox

CUSTOMERS = "Crm_Sales_Customers"


@pytest.fixture(autouse=True)
def empty_memory_cache() -> None:
    auth.clear_memory_cache()


def use_connection(monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox, **extra: object) -> None:
    conn = sandbox.connection()
    conn["extra"] = {**conn.get("extra", {}), **extra}
    monkeypatch.setenv("AIRFLOW_CONN_ERPNET_DEFAULT", json.dumps(conn))


def count_in_child(results: multiprocessing.Queue) -> None:
    """Runs in a forked child: its own hook, HTTP session and token provider, nothing inherited."""
    auth.clear_memory_cache()
    results.put(ErpNetHook().count(CUSTOMERS))


def run_hook_processes(count: int) -> list[int]:
    """Fork ``count`` processes at once (fork: no 2 s Airflow import per process), each reading once."""
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    procs = [context.Process(target=count_in_child, args=(results,)) for _ in range(count)]
    for proc in procs:
        proc.start()
    counts = [results.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0
    return counts


@pytest.mark.parametrize(("disk_cache", "expected_tokens"), [(True, 1), (False, 20)])
def test_twenty_hooks_in_separate_processes(
    erpnet_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, tmp_path, disk_cache: bool, expected_tokens: int
) -> None:
    use_connection(monkeypatch, erpnet_sandbox, disk_cache=disk_cache)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert run_hook_processes(20) == [erpnet_sandbox.dataset.count(CUSTOMERS)] * 20
    stats = erpnet_sandbox.stats()
    assert stats["tokens_issued"] == expected_tokens
    assert stats["api_by_status"] == {"200": 20}


def read_all_ids(hook: ErpNetHook, on_page: Callable[[int], None] = lambda number: None) -> list[str]:
    ids: list[str] = []
    for page in hook.iter_pages(CUSTOMERS, select="Id", page_size=1000):
        ids.extend(record["Id"] for record in page.records)
        on_page(page.number)
    return ids


def test_three_second_tokens_over_a_long_read(erpnet_sandbox_factory, monkeypatch) -> None:
    """50 pages at 400 ms each span four 5 s token lifetimes: refreshed early, never a 401.

    Refreshed with 2.5 s left (half a short lifetime), so only a request stalled that long on a
    loaded machine could arrive with an expired token.
    """
    sandbox = erpnet_sandbox_factory(scale=50_000, token_lifetime=5, latency_ms=400)
    use_connection(monkeypatch, sandbox, disk_cache=False)
    hook = ErpNetHook()
    ids = read_all_ids(hook)
    expected = [row["Id"] for row in sandbox.dataset.rows(CUSTOMERS)]
    assert ids == expected and len(set(ids)) == 50_000
    stats = sandbox.stats()
    assert stats["api_by_status"] == {"200": 50}, stats
    assert stats["tokens_issued"] >= 4, stats
    assert stats["tokens_issued"] == hook.get_conn().transport.auth.tokens_requested


def test_forced_401_mid_run_costs_exactly_one_token(erpnet_sandbox_factory, monkeypatch) -> None:
    sandbox = erpnet_sandbox_factory(scale=50_000)
    use_connection(monkeypatch, sandbox, disk_cache=False)
    ids = read_all_ids(ErpNetHook(), on_page=lambda number: number == 25 and sandbox.revoke_tokens())
    assert ids == [row["Id"] for row in sandbox.dataset.rows(CUSTOMERS)]
    stats = sandbox.stats()
    assert stats["tokens_issued"] == 2, stats
    assert stats["api_by_status"] == {"200": 50, "401": 1}, stats


def test_throttling_outages_and_drops_lose_no_row(erpnet_sandbox_factory, monkeypatch) -> None:
    """10 % 429 (Retry-After 1 s), 5 % 503 and 2 % dropped connections over 50,000 customers."""
    sandbox = erpnet_sandbox_factory(
        scale=50_000, rate_429=0.10, retry_after=1, rate_503=0.05, rate_drop=0.02
    )
    use_connection(monkeypatch, sandbox, disk_cache=False)
    hook = ErpNetHook()
    ids = read_all_ids(hook)
    assert ids == [row["Id"] for row in sandbox.dataset.rows(CUSTOMERS)]
    stats = sandbox.stats()
    injected = stats["faults_injected"]
    assert injected["429"] > 0 and injected["503"] > 0 and injected["drop"] > 0, stats
    assert stats["api_by_status"]["200"] == 50, stats
    assert hook.get_conn().transport.retries == sum(injected.values()), stats
