"""ErpNetChangesTrigger against the sandbox over HTTP: its event loop never waits on a request,
changes made while it polls fire it with the right count, throttling is waited out, and it
serialises the way Airflow stores triggers.

The triggerer process itself (state store in the metadata DB, a restart) is exercised in
test_asset_watcher.py; here ``run()`` is driven directly, with the connection from the environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from airflow_provider_erpnet.changes.instants import format_instant, parse_instant
from airflow_provider_erpnet.changes.probe import ChangeProbe
from airflow_provider_erpnet.client.errors import ErpNetConfigError
from airflow_provider_erpnet.hooks.erpnet import ErpNetHook
from airflow_provider_erpnet.sandbox import Sandbox
from airflow_provider_erpnet.triggers.erpnet import ErpNetChangesTrigger, state_key

C = "Crm_Sales_Customers"
STAMP = "AggregateLastUpdateTimeUtc"
UTC = dt.timezone.utc
SINCE = "2030-01-01T00:00:00Z"  # after every generated stamp: only touched rows count


@pytest.fixture
def sandbox(erpnet_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    monkeypatch.setenv("AIRFLOW_CONN_ERPNET_DEFAULT", erpnet_sandbox.connection_json())
    return erpnet_sandbox


def trigger(**options: Any) -> ErpNetChangesTrigger:
    return ErpNetChangesTrigger(**{"entity_set": C, "since": SINCE, "poll_interval": 0.05, **options})


def at(seconds: int) -> dt.datetime:
    return dt.datetime(2030, 1, 1, tzinfo=UTC) + dt.timedelta(seconds=seconds)


async def requests_reach(sandbox: Sandbox, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while sandbox.stats()["api_requests"] < count:
        assert time.monotonic() < deadline, f"fewer than {count} requests reached the sandbox"
        await asyncio.sleep(0.02)


async def events_of(
    run: AsyncIterator[Any],
    how_many: int,
    during: Callable[[], Awaitable[None]],
    timeout: float = 90,
    collected: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """The first ``how_many`` events, while ``during`` acts on the sandbox; the generator is closed.

    ``collected``: a list the events are appended to as they come, for ``during`` to wait on.
    """
    got = [] if collected is None else collected

    async def collect() -> list[dict[str, Any]]:
        while len(got) < how_many:
            got.append((await anext(run)).payload)
        return got

    collecting = asyncio.ensure_future(collect())
    try:
        await during()
        return await asyncio.wait_for(collecting, timeout)
    finally:
        collecting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await collecting
        await run.aclose()


def in_flight(sandbox: Sandbox) -> bool:
    """A Domain API request has arrived and is not answered yet (stats count both ends)."""
    stats = sandbox.stats()
    return stats["api_requests"] > sum(stats["api_by_status"].values())


def test_a_touch_while_polling_fires_one_event_with_the_rows_changed(sandbox: Sandbox) -> None:
    ids = [row["Id"] for row in sandbox.dataset.rows(C)[10:13]]
    sandbox.set_faults(latency_ms=3000)  # each answer takes 3 s

    async def scenario() -> list[dict[str, Any]]:
        async def touch_once_the_loop_ran_during_a_request() -> None:
            # A poll that blocked the event loop would keep this coroutine from running until its
            # answer came: it could never see a request in flight.
            deadline = time.monotonic() + 60
            while not in_flight(sandbox):
                assert time.monotonic() < deadline, "the event loop never ran while a request was in flight"
                await asyncio.sleep(0.01)
            sandbox.set_faults(latency_ms=0)
            sandbox.touch(C, ids[:2], at(3))
            sandbox.touch(C, ids[2:], at(5))

        return await events_of(trigger().run(), 1, touch_once_the_loop_ran_during_a_request)

    (event,) = asyncio.run(scenario())
    assert event["count"] == 3
    assert (event["since"], event["newest"], event["to"]) == (
        SINCE,
        "2030-01-01T00:00:05Z",
        "2030-01-01T00:00:05Z",
    )
    assert event["from"] == "2029-12-31T23:55:00Z" and event["entity_set"] == C


def test_a_429_storm_is_waited_out_with_retry_after_and_the_change_still_arrives(sandbox: Sandbox) -> None:
    ident = sandbox.dataset.rows(C)[7]["Id"]
    sandbox.set_faults(rate_429=1.0, retry_after=1)

    async def storm_then_touch() -> None:
        await requests_reach(sandbox, 1)
        await asyncio.sleep(3)
        throttled = sandbox.stats()["faults_injected"]["429"]
        # Without backoff a 0.05 s poll would ask ~60 times in 3 s; Retry-After: 1 allows about 4.
        assert 1 <= throttled <= 5, throttled
        sandbox.set_faults(rate_429=0.0)
        sandbox.touch(C, [ident], at(1))

    (event,) = asyncio.run(events_of(trigger().run(), 1, storm_then_touch))
    assert event["count"] == 1 and event["newest"] == "2030-01-01T00:00:01Z"


def test_min_changes_waits_for_enough_rows(sandbox: Sandbox) -> None:
    ids = [row["Id"] for row in sandbox.dataset.rows(C)[:3]]

    async def touch_one_by_one() -> None:
        for offset, ident in enumerate(ids):
            await requests_reach(sandbox, sandbox.stats()["api_requests"] + 2)
            sandbox.touch(C, [ident], at(offset + 1))

    (event,) = asyncio.run(events_of(trigger(min_changes=3).run(), 1, touch_one_by_one))
    assert event["count"] == 3 and event["newest"] == "2030-01-01T00:00:03Z"


def test_a_refused_query_fails_the_trigger_with_the_servers_reason(sandbox: Sandbox) -> None:
    async def nothing() -> None:
        return None

    with pytest.raises(Exception, match="Notacolumn"):
        asyncio.run(events_of(trigger(column="Notacolumn").run(), 1, nothing))


class MemoryStateStore:
    """Stands in for the Asset state store accessor the triggerer injects (same two methods);
    test_asset_watcher.py runs the real one, in the triggerer, on the metadata DB."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    async def aget(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    async def aset(self, key: str, value: Any) -> None:
        self.values[key] = value


def test_a_watcher_resumes_from_its_stored_starting_point_after_a_restart(sandbox: Sandbox) -> None:
    rows = sandbox.dataset.rows(C)
    store = MemoryStateStore()
    first = trigger()
    first.asset_state_store = store
    classpath, kwargs = first.serialize()

    collected: list[dict[str, Any]] = []

    async def touch_twice() -> None:
        await requests_reach(sandbox, 1)
        sandbox.touch(C, [rows[1]["Id"]], at(10))
        # The second change after the first event, not after a number of requests: a probe still
        # in flight at the second touch would otherwise report both changes as one event.
        deadline = time.monotonic() + 60
        while not collected:
            assert time.monotonic() < deadline, "no event for the first change within 60 s"
            await asyncio.sleep(0.02)
        sandbox.touch(C, [rows[2]["Id"], rows[3]["Id"]], at(20))

    events = asyncio.run(events_of(first.run(), 2, touch_twice, collected=collected))
    assert [(e["count"], e["since"], e["newest"]) for e in events] == [
        (1, SINCE, "2030-01-01T00:00:10Z"),
        (2, "2030-01-01T00:00:10.0000001Z", "2030-01-01T00:00:20Z"),  # contiguous with the first
    ]
    assert store.values == {state_key(STAMP): SINCE}  # set on first start; consumers move it on

    # The triggerer stops; a consumer committed the first window and acknowledged it; a row
    # changes while no triggerer runs; a new triggerer starts the same trigger from its kwargs.
    store.values[state_key(STAMP)] = events[0]["to"]
    sandbox.touch(C, [rows[4]["Id"]], at(30))
    second = ErpNetChangesTrigger(**kwargs)
    second.asset_state_store = store

    async def nothing() -> None:
        return None

    (resumed,) = asyncio.run(events_of(second.run(), 1, nothing))
    assert (resumed["since"], resumed["newest"], resumed["count"]) == (
        events[0]["to"],
        "2030-01-01T00:00:30Z",
        4,
    )
    assert classpath == "airflow_provider_erpnet.triggers.erpnet.ErpNetChangesTrigger"


def test_it_serialises_the_way_the_triggerer_stores_and_rebuilds_it() -> None:
    from airflow._shared.module_loading import import_string
    from airflow.serialization.decoders import smart_decode_trigger_kwargs
    from airflow.serialization.encoders import encode_trigger
    from airflow.triggers.base import BaseEventTrigger

    # What the triggerer does: encode when stored, decode each kwarg, import the class, build it.
    original = trigger(filter="Active eq true", min_changes=2, overlap_seconds=60)
    encoded = encode_trigger(original)
    kwargs = {name: smart_decode_trigger_kwargs(value) for name, value in encoded["kwargs"].items()}
    rebuilt = import_string(encoded["classpath"])(**kwargs)
    assert rebuilt.serialize() == original.serialize()
    assert vars(rebuilt) == vars(original)
    assert BaseEventTrigger.hash(*rebuilt.serialize()) == BaseEventTrigger.hash(*original.serialize())
    assert BaseEventTrigger.hash(*trigger(poll_interval=5).serialize()) != BaseEventTrigger.hash(
        *original.serialize()
    )


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({"since": "yesterday"}, "since must be an ISO 8601"),
        ({"poll_interval": 0}, "poll_interval must be a positive"),
        ({"max_backoff": -1}, "max_backoff must be a positive"),
        ({"overlap_seconds": -5}, "overlap_seconds must be >= 0"),
        ({"min_changes": 0}, "min_changes must be an integer >= 1"),
    ],
)
def test_bad_arguments_fail_when_the_dag_is_parsed(options: dict[str, Any], needle: str) -> None:
    with pytest.raises(ErpNetConfigError, match=needle):
        trigger(**options)


def test_a_column_the_server_cannot_order_by_is_scanned_for_its_newest_value(sandbox: Sandbox) -> None:
    stamps = sorted(row["CreationTime"] for row in sandbox.dataset.rows(C) if row["CreationTime"])
    since = parse_instant(stamps[-5])
    hook = ErpNetHook()
    try:
        probe = ChangeProbe(C, "CreationTime")
        changes = probe.changes_since(hook.get_conn(), since)
        assert changes is not None and format_instant(changes.newest) == stamps[-1]
        assert changes.count == sum(stamp >= stamps[-5] for stamp in stamps) == 5
        assert sandbox.stats()["api_by_status"]["400"] == 1  # $orderby refused once, then remembered
        probe.changes_since(hook.get_conn(), since)
        assert sandbox.stats()["api_by_status"]["400"] == 1
        assert probe.changes_since(hook.get_conn(), parse_instant(stamps[-1]) + 1) is None
    finally:
        hook.close()


def test_polls_share_the_process_token(sandbox: Sandbox) -> None:
    ident = sandbox.dataset.rows(C)[0]["Id"]
    hook = ErpNetHook()
    try:
        hook.count(C)  # a task in the same process got a token first
    finally:
        hook.close()

    async def touch() -> None:
        await requests_reach(sandbox, 3)
        sandbox.touch(C, [ident], at(1))

    threads_before = threading.active_count()
    asyncio.run(events_of(trigger().run(), 1, touch))
    assert sandbox.stats()["tokens_issued"] == 1
    assert threading.active_count() <= threads_before + 4  # at most the trigger's own pool
