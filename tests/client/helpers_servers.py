"""Tiny stdlib HTTP servers on 127.0.0.1 for client tests, each a context manager that stops itself.

- :class:`StubServer` answers every request with ``handler(request)`` and records what it got
  (a recording server, an HTML server, a scripted fault server: all the same class).
- :class:`SilentServer` accepts connections and never answers, to provoke read timeouts.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from airflow_provider_erpnet.client import auth


@dataclass(frozen=True)
class Recorded:
    """One request as the server saw it."""

    method: str
    path: str  # without the query
    query: str
    headers: dict[str, str]
    body: bytes

    @property
    def form(self) -> list[tuple[str, str]]:
        """Form fields in the order sent (repeated fields repeat)."""
        return parse_qsl(self.body.decode("utf-8"), keep_blank_values=True)


@dataclass(frozen=True)
class Reply:
    """What to answer. ``cut_to`` sends only that many body bytes (Content-Length stays full), then
    closes the connection: a truncated body. ``drop`` closes the connection without an answer."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    cut_to: int | None = None
    drop: bool = False  # close the connection without answering


def json_reply(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, json.dumps(payload).encode("utf-8"), headers=headers or {})


def html_reply(status: int = 200) -> Reply:
    page = b"<!DOCTYPE html><html><head><title>Sign in</title></head><body>Please sign in</body></html>"
    return Reply(status, page, content_type="text/html; charset=utf-8")


Handler = Callable[[Recorded], Reply]


class StubServer:
    """Threaded HTTP server answering through ``handler``; ``requests`` lists what it received."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05})

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def __enter__(self) -> StubServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def _record(self, request: Recorded) -> Reply:
        with self._lock:
            self.requests.append(request)
        return self.handler(request)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                parts = urlsplit(self.path)
                recorded = Recorded(
                    self.command, parts.path, parts.query, dict(self.headers.items()), self.rfile.read(length)
                )
                reply = stub._record(recorded)
                if reply.drop:
                    self.close_connection = True
                    return
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if reply.cut_to is not None:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                self.wfile.write(reply.body if reply.cut_to is None else reply.body[: reply.cut_to])
                self.wfile.flush()

            do_GET = do_POST = _serve

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the tests inspect ``requests`` instead."""

        return _Handler


class SilentServer:
    """Accepts TCP connections and never answers; closes them all on exit."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self._stop = threading.Event()
        self._accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept_loop)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            self._accepted.append(conn)

    def __enter__(self) -> SilentServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        for conn in self._accepted:
            conn.close()
        self._listener.close()


@contextmanager
def refused_port_url() -> Iterator[str]:
    """A URL on 127.0.0.1 that refuses connections while the block runs.

    The port stays bound (without listening) until the block ends, so the OS refuses every
    connection to it and no other process can be given it meanwhile: releasing the port first
    would let anything on the machine start listening there.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{holder.getsockname()[1]}"


class FakeIdentity:
    """Handler pieces of a minimal identity server: discovery plus a token endpoint.

    ``tokens`` are handed out in order; ``token_replies`` (if given) override the token answers.
    """

    def __init__(self, token_replies: Sequence[Reply] = (), expires_in: int = 3600) -> None:
        self.token_replies = list(token_replies)
        self.expires_in = expires_in
        self.issued: list[str] = []

    def __call__(self, request: Recorded) -> Reply | None:
        """The identity answer for ``request``, or None if it is not an identity request."""
        if request.path == "/id/.well-known/openid-configuration":
            return json_reply(
                {"issuer": "x", "token_endpoint": f"http://{request.headers['Host']}/id/connect/token"}
            )
        if request.path == "/id/connect/token":
            if self.token_replies:
                return self.token_replies.pop(0)
            token = f"stub-token-{len(self.issued) + 1}-{'x' * 40}"
            self.issued.append(token)
            return json_reply({"access_token": token, "expires_in": self.expires_in, "token_type": "Bearer"})
        return None


def identity_then(api: Handler, identity: FakeIdentity | None = None) -> Handler:
    """A handler serving ``identity`` under /id and everything else with ``api``."""
    identity = identity or FakeIdentity()

    def handle(request: Recorded) -> Reply:
        return identity(request) or api(request)

    return handle


def assert_no_leak(exc: BaseException, log_text: str, *secrets: str) -> None:
    """Neither ``str(exc)``, ``repr(exc)`` nor the captured logs contain any of ``secrets``."""
    texts = (str(exc), repr(exc), log_text)
    assert [secret for secret in secrets if secret and any(secret in text for text in texts)] == []


@pytest.fixture
def fresh_token_cache() -> Iterator[None]:
    """Start and end with an empty process-wide token cache (ports, hence keys, get reused)."""
    auth.clear_memory_cache()
    yield
    auth.clear_memory_cache()
