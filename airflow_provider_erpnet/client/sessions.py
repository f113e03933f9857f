"""HTTP sessions whose connections keep the response deadline while the status line and headers arrive.

``client.body`` bounds the body by ``response_timeout``; before the body, urllib3 reads the status
line and up to a hundred header lines of 64 KiB each, and only the per-read timeout bounds each
read. A server sending a byte just quicker than ``read_timeout`` could hold a request for days
there. The connections of :func:`bounded_session` arm the same watchdog as the body read while
they wait for the response head, with the deadline :func:`head_deadline` set for the request in
progress (a context variable, so concurrent requests in other threads keep their own).
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from .body import WATCHDOG


class HeadWait:
    """The deadline of the request in progress; ``fired`` once the watchdog ended its head's read."""

    __slots__ = ("deadline", "fired")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.fired = False


_CURRENT: contextvars.ContextVar[HeadWait | None] = contextvars.ContextVar("erpnet_head_wait", default=None)


@contextmanager
def head_deadline(deadline: float) -> Iterator[HeadWait]:
    """Requests sent inside this block stop reading their response head at ``deadline``
    (a ``time.monotonic()`` instant); ``fired`` on the yielded object says whether that happened."""
    wait = HeadWait(deadline)
    reset = _CURRENT.set(wait)
    try:
        yield wait
    finally:
        _CURRENT.reset(reset)


class _DeadlineMixin:
    sock: Any

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        wait = _CURRENT.get()
        if wait is None or self.sock is None:
            return super().getresponse(*args, **kwargs)  # type: ignore[misc]
        alarm = WATCHDOG.arm(self.sock, wait.deadline)
        try:
            return super().getresponse(*args, **kwargs)  # type: ignore[misc]
        finally:
            WATCHDOG.disarm(alarm)
            wait.fired = wait.fired or alarm.fired


class _HTTPConnection(_DeadlineMixin, HTTPConnection):
    pass


class _HTTPSConnection(_DeadlineMixin, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


_POOLS = {"http": _HTTPPool, "https": _HTTPSPool}


class _DeadlineAdapter(HTTPAdapter):
    """requests' adapter, its pools (direct and through an http proxy) made of deadline connections."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):
            manager.pool_classes_by_scheme = _POOLS
        return manager


def bounded_session() -> requests.Session:
    """A ``requests.Session`` whose requests inside :func:`head_deadline` keep that deadline."""
    session = requests.Session()
    adapter = _DeadlineAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
