"""``ErpNetChangesTrigger``: waits in Airflow's triggerer for rows of an entity set to change.

Used two ways:

* by ``ErpNetChangeSensor`` in deferrable mode: it fires once, when rows changed at or after
  ``since``, and the sensor resumes with the event;
* as an Asset watcher (``AssetWatcher(name=..., trigger=ErpNetChangesTrigger(...))``): it keeps
  polling and fires one event per batch of changes; each event carries the window of changes it
  covers (see ``changes.events``) and Airflow turns it into an Asset event that schedules DAGs.

Polls are the cheap requests of ``changes.probe`` (one ``$count`` while nothing changes). They
run the provider's ordinary synchronous client in a small thread pool of their own, never on the
event loop: the client is where tokens come from (the process-wide token cache, so a poller uses
no licence slot of its own), where every request is bounded in time and size and where errors get
their wording. The client makes one attempt per request; throttling (429, 502-504) and network
failures are waited out here with ``asyncio.sleep``, honouring ``Retry-After``, so a throttled
poller holds no thread.

**Restarts (watchers).** The trigger keeps its starting point in the watched Asset's state store
(Airflow 3.3+), key ``erpnet.changes.since.<column>``: set once when the watcher first starts
(``since``, or the time of that first start), and moved forward by the consumer, the extraction
operator, after it has committed the window of an event. A watcher that starts again, after a
triggerer restart or a crash, resumes from there: a change made while no triggerer ran, or an
event lost in a crash, falls into the first window after the restart. What a restart can cost is a
window extracted twice (rows are merged by ``Id`` downstream), never a window missed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Any, TypeVar

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from airflow_provider_erpnet.changes.events import ChangeEvent
from airflow_provider_erpnet.changes.instants import format_instant, from_datetime, parse_instant
from airflow_provider_erpnet.changes.probe import DEFAULT_COLUMN, ChangeProbe, Changes
from airflow_provider_erpnet.client.client import ErpNetClient
from airflow_provider_erpnet.client.errors import ErpNetApiError, ErpNetConfigError, ErpNetTransportError
from airflow_provider_erpnet.client.retry import RETRY_STATUSES
from airflow_provider_erpnet.hooks.erpnet import ErpNetHook

log = logging.getLogger(__name__)

T = TypeVar("T")

STATE_KEY_PREFIX = "erpnet.changes.since."
DEFAULT_POLL_INTERVAL = 60.0
DEFAULT_OVERLAP_SECONDS = 300.0
DEFAULT_MAX_BACKOFF = 900.0

# Polls of every ERP.net trigger in this process share these threads, apart from the loop's
# default executor, so a slow server cannot starve other triggers' thread work.
_POLL_THREADS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="erpnet-changes")


def check_min_changes(value: Any) -> int:
    """``value`` if it is an integer >= 1; raises naming the argument otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ErpNetConfigError(f"min_changes must be an integer >= 1, got {value!r}.")
    return value


def state_key(column: str) -> str:
    """The Asset state store key that holds a watcher's starting point for ``column``."""
    return f"{STATE_KEY_PREFIX}{column}"


class ErpNetChangesTrigger(BaseEventTrigger):
    """Fires when rows of ``entity_set`` changed at or after ``since``; see the module docstring.

    :param entity_set: e.g. ``Crm_Sales_SalesOrders``.
    :param erpnet_conn_id: an ``erpnet`` connection.
    :param column: the incremental column, ``AggregateLastUpdateTimeUtc`` by default.
    :param since: ISO 8601 instant; rows whose column is at or after it count as changed. A watcher
        without ``since`` starts at the moment it first runs (nothing before it is reported).
    :param poll_interval: seconds between polls while nothing changes.
    :param overlap_seconds: how far each event's window (``from``) reaches back before ``since``.
    :param filter: optional ``$filter`` narrowing the rows that count (ANDed with the range).
    :param min_changes: fire only once at least this many rows changed.
    :param max_backoff: the longest wait, in seconds, after throttling or a network failure.
    """

    def __init__(
        self,
        *,
        entity_set: str,
        erpnet_conn_id: str = ErpNetHook.default_conn_name,
        column: str = DEFAULT_COLUMN,
        since: str | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        overlap_seconds: float = DEFAULT_OVERLAP_SECONDS,
        filter: str | None = None,
        min_changes: int = 1,
        max_backoff: float = DEFAULT_MAX_BACKOFF,
    ) -> None:
        super().__init__()
        if since is not None:
            parse_instant(since, what="since")
        for name, value in (("poll_interval", poll_interval), ("max_backoff", max_backoff)):
            if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
                raise ErpNetConfigError(f"{name} must be a positive number of seconds, got {value!r}.")
        if not isinstance(overlap_seconds, int | float) or overlap_seconds < 0:
            raise ErpNetConfigError(f"overlap_seconds must be >= 0, got {overlap_seconds!r}.")
        check_min_changes(min_changes)
        self.entity_set = entity_set
        self.erpnet_conn_id = erpnet_conn_id
        self.column = column
        self.since = since
        self.poll_interval = float(poll_interval)
        self.overlap_seconds = float(overlap_seconds)
        self.filter = filter
        self.min_changes = min_changes
        self.max_backoff = float(max_backoff)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "entity_set": self.entity_set,
                "erpnet_conn_id": self.erpnet_conn_id,
                "column": self.column,
                "since": self.since,
                "poll_interval": self.poll_interval,
                "overlap_seconds": self.overlap_seconds,
                "filter": self.filter,
                "min_changes": self.min_changes,
                "max_backoff": self.max_backoff,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        since = await self._starting_point()
        probe = ChangeProbe(self.entity_set, self.column, self.filter)
        client = await self._in_thread(self._new_client)
        try:
            while True:
                changes = await self._poll(probe, client, since)
                if changes is not None and changes.count >= self.min_changes:
                    event = self._event(changes)
                    log.info(
                        "%s: %d row(s) changed from %s to %s.",
                        self.entity_set,
                        changes.count,
                        format_instant(changes.since),
                        format_instant(changes.newest),
                    )
                    yield TriggerEvent(event.to_payload())
                    if self.task_instance is not None:
                        return  # a deferred task resumes with one event; only watchers go on
                    since = event.next_since
                await asyncio.sleep(self.poll_interval)
        finally:
            client.close()

    def _event(self, changes: Changes) -> ChangeEvent:
        return ChangeEvent.of(
            changes,
            erpnet_conn_id=self.erpnet_conn_id,
            entity_set=self.entity_set,
            column=self.column,
            overlap=timedelta(seconds=self.overlap_seconds),
        )

    async def _starting_point(self) -> int:
        """``since`` of a deferred task; for a watcher the stored starting point, set on first start."""
        store = self.asset_state_store
        key = state_key(self.column)
        if store is not None:
            stored = await store.aget(key)
            if isinstance(stored, str):
                log.info("%s: resuming from %s, kept in the Asset's state store.", self.entity_set, stored)
                return parse_instant(stored, what=key)
        since = (
            parse_instant(self.since, what="since")
            if self.since
            else from_datetime(datetime.now(timezone.utc))
        )
        if store is not None:
            await store.aset(key, format_instant(since))
        return since

    async def _poll(self, probe: ChangeProbe, client: ErpNetClient, since: int) -> Changes | None:
        """One poll; throttling and network failures are waited out (growing waits) and retried."""
        failures = 0
        while True:
            try:
                return await self._in_thread(partial(probe.changes_since, client, since))
            except (ErpNetApiError, ErpNetTransportError) as error:
                status = getattr(error, "status", None)
                if isinstance(error, ErpNetApiError) and status not in RETRY_STATUSES:
                    raise
                failures += 1
                wait = self._backoff(failures, getattr(error, "retry_after", None))
                log.warning(
                    "%s: %s; polling again in %.1f s (%d failed poll(s) in a row).",
                    self.entity_set,
                    f"HTTP {status}" if status else "the Domain API could not be reached",
                    wait,
                    failures,
                )
                await asyncio.sleep(wait)

    def _backoff(self, failures: int, retry_after: float | None) -> float:
        """Doubling from the poll interval, at least what ``Retry-After`` asked, at most ``max_backoff``."""
        doubling = self.poll_interval * 2 ** min(failures - 1, 30)
        return min(self.max_backoff, max(doubling, retry_after or 0.0))

    def _new_client(self) -> ErpNetClient:
        return ErpNetHook(self.erpnet_conn_id).new_client(max_attempts=1)

    async def _in_thread(self, call: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(_POLL_THREADS, call)
