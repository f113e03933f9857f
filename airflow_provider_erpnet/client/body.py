"""Reading a response body within bounds: at most ``max_bytes`` once decoded, done by a deadline.

A server can send a small gzip body that expands a thousandfold, a field of hundreds of MB, or a
body one byte at a time just quicker than the read timeout. So the body is read here, never by
``response.content``:

- gzip and deflate are decoded by this module in steps that never produce more than the bytes
  still allowed, and any other ``Content-Encoding`` (the client asks for gzip and deflate only)
  is refused;
- an identity body with a ``Content-Length`` is read in one call (fast), after checking the length
  against the limit; any other body in large steps, counting as it goes;
- a watchdog thread shuts the connection's socket down when the response's deadline passes, so
  even one large blocking read ends on time, however slowly the bytes arrive.

The body is kept on the response (``response.content`` then returns it) and returned.
"""

from __future__ import annotations

import contextlib
import heapq
import http.client
import itertools
import os
import socket
import threading
import time
import zlib
from typing import Any

import requests
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import ReadTimeoutError

from .redact import server_text

ACCEPT_ENCODING = "gzip, deflate"
STEP = 1 << 20  # bytes per read when the length is not known up front, and per decompression step


class BodyError(Exception):
    """The body cannot be accepted; not worth another attempt."""


class ResponseTooLarge(BodyError):
    """The body, decoded, holds more than the limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit} bytes")
        self.limit = limit


class DeadlineExceeded(BodyError):
    """The response was not complete by its deadline."""


class UndecodableBody(BodyError):
    """The body's Content-Encoding is unknown, unasked for, or its data is corrupt."""


class TruncatedBody(Exception):
    """The body ended before it was complete (retryable: the next attempt may get all of it)."""


def read_body(response: requests.Response, *, max_bytes: int, deadline: float) -> bytes:
    """Read the whole body of a streamed ``response`` within ``max_bytes`` and ``deadline``.

    ``deadline`` is a ``time.monotonic()`` instant. Raises :class:`ResponseTooLarge`,
    :class:`DeadlineExceeded`, :class:`UndecodableBody` or :class:`TruncatedBody`, and
    ``requests.ReadTimeout`` when one read waited longer than the read timeout; the response is
    closed then, so its connection is not reused.
    """
    try:
        decoder = _decoder(response.headers.get("Content-Encoding", ""))
        declared = _declared_length(response)
        if decoder is None and declared is not None and declared > max_bytes:
            raise ResponseTooLarge(max_bytes)
        if time.monotonic() >= deadline:
            raise DeadlineExceeded()
        alarm = WATCHDOG.arm(_socket_of(response), deadline)
        try:
            if decoder is None and declared is not None:
                body = _read_exactly(response.raw, declared)
            else:
                body = _read_stream(response.raw, decoder, max_bytes)
        except Exception as exc:
            # Whatever a shut-down socket made the read raise (or return short), the deadline did it.
            if alarm.fired:
                raise DeadlineExceeded() from None
            if isinstance(exc, ReadTimeoutError):
                raise requests.ReadTimeout(str(exc)) from None
            if isinstance(exc, Urllib3Error | http.client.HTTPException | OSError):
                raise TruncatedBody(type(exc).__name__) from None
            raise
        finally:
            WATCHDOG.disarm(alarm)
        if alarm.fired:
            raise DeadlineExceeded()
    except BaseException:
        response.close()
        raise
    response._content = body  # what response.content returns from now on
    response._content_consumed = True
    return body


def _declared_length(response: requests.Response) -> int | None:
    if "chunked" in response.headers.get("Transfer-Encoding", "").lower():
        return None
    declared = response.headers.get("Content-Length", "").strip()
    return int(declared) if declared.isascii() and declared.isdigit() else None


def _read_exactly(raw: Any, length: int) -> bytes:
    body = raw.read(length, decode_content=False) if length else b""
    if len(body) < length:
        raise TruncatedBody(f"{len(body)} of {length} bytes")
    return body


def _read_stream(raw: Any, decoder: _Inflater | None, max_bytes: int) -> bytes:
    parts: list[bytes] = []
    total = 0

    def keep(pieces: list[bytes]) -> None:
        nonlocal total
        for piece in pieces:
            total += len(piece)
            if total > max_bytes:
                raise ResponseTooLarge(max_bytes)
            parts.append(piece)

    while chunk := raw.read(STEP, decode_content=False):
        keep(decoder.feed(chunk, max_bytes - total) if decoder is not None else [chunk])
    if decoder is not None:
        keep(decoder.finish(max_bytes - total))
    return b"".join(parts)


class _Inflater:
    """gzip or deflate, decoded in steps no larger than the room left (so a bomb stops early)."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self._inflate: Any = None

    def feed(self, data: bytes, room: int) -> list[bytes]:
        """What ``data`` decodes to, stopping once more than ``room`` bytes came out."""
        if self._inflate is None:
            self._inflate = zlib.decompressobj(self._wbits(data))
        pieces = []
        while not self._inflate.eof:
            try:
                # At most a step at a time: one huge output buffer would be grown (and copied) whole.
                piece = self._inflate.decompress(data, min(max(room, 0) + 1, STEP))
            except zlib.error:
                raise UndecodableBody(f"its {self.encoding} data is corrupt") from None
            data = self._inflate.unconsumed_tail
            if not piece and not data:
                break
            pieces.append(piece)
            room -= len(piece)
            if room < 0:
                break
        return pieces

    def finish(self, room: int) -> list[bytes]:
        """Output still held back after the last input; the stream must be complete."""
        pieces = self.feed(b"", room) if self._inflate is not None else []
        if self._inflate is None or not self._inflate.eof:
            raise TruncatedBody(f"the {self.encoding} stream ended early")
        return pieces

    def _wbits(self, first: bytes) -> int:
        if self.encoding != "deflate":
            return 16 + zlib.MAX_WBITS
        # "deflate" should be zlib-wrapped (RFC 9110); some servers send raw deflate.
        wrapped = len(first) >= 2 and first[0] & 0x0F == 8 and (first[0] << 8 | first[1]) % 31 == 0
        return zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS


def _decoder(header: str) -> _Inflater | None:
    encoding = header.strip().lower()
    if encoding in ("", "identity"):
        return None
    if encoding in ("gzip", "x-gzip", "deflate"):
        return _Inflater("deflate" if encoding == "deflate" else "gzip")
    raise UndecodableBody(f"it is encoded as {server_text(header, 40)!r}, which the client did not ask for")


def _socket_of(response: requests.Response) -> socket.socket | None:
    connection = getattr(response.raw, "connection", None)
    return getattr(connection, "sock", None)


class _Alarm:
    __slots__ = ("cancelled", "fired", "sock")

    def __init__(self, sock: socket.socket | None) -> None:
        self.sock = sock
        self.cancelled = False
        self.fired = False


class _Watchdog:
    """One daemon thread that shuts down the socket of each response still being read at its deadline."""

    def __init__(self) -> None:
        self._reset()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._condition = threading.Condition()
        self._due: list[tuple[float, int, _Alarm]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, sock: socket.socket | None, deadline: float) -> _Alarm:
        alarm = _Alarm(sock)
        with self._condition:
            heapq.heappush(self._due, (deadline, next(self._order), alarm))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="erpnet-response-deadline", daemon=True
                )
                self._thread.start()
            self._condition.notify()
        return alarm

    def disarm(self, alarm: _Alarm) -> None:
        with self._condition:
            alarm.cancelled = True

    def _run(self) -> None:
        with self._condition:
            while True:
                while self._due and self._due[0][2].cancelled:
                    heapq.heappop(self._due)
                if not self._due:
                    self._condition.wait()
                    continue
                wait = self._due[0][0] - time.monotonic()
                if wait > 0:
                    self._condition.wait(wait)
                    continue
                alarm = heapq.heappop(self._due)[2]
                alarm.fired = True
                if alarm.sock is not None:
                    # socket.socket's own shutdown, also for TLS sockets: it wakes a blocked read.
                    with contextlib.suppress(OSError):
                        socket.socket.shutdown(alarm.sock, socket.SHUT_RDWR)


WATCHDOG = _Watchdog()
