"""A small local ERP.net look-alike that answers the way a broken, hijacked or misconfigured one would.

By default it behaves: discovery, a token endpoint, ``$metadata`` for one entity set (``Things``),
``Things/$count`` and pages of ``Things`` linked by ``$skiptoken`` next links. A hostile case
replaces some routes with answers a server should never give (a gzip bomb, a body trickled a
byte at a time, next links to another host, a redirect that carries the secret away...).

Everything is written by hand on the socket, so an answer can lie about its length, trickle, be
chunked or end without one; every wait listens to the stop event, so ``stop()`` ends in moments
whatever a handler was doing. Binds 127.0.0.1 on a port the OS picks.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

API = "/api/domain/odata/"
DISCOVERY = "/id/.well-known/openid-configuration"
TOKEN_PATH = "/id/connect/token"
ENTITY_SET = "Things"

EDMX = b"""<?xml version="1.0" encoding="utf-8"?>
<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx">
  <edmx:DataServices>
    <Schema Namespace="Erp" xmlns="http://docs.oasis-open.org/odata/ns/edm">
      <EntityType Name="Thing">
        <Key><PropertyRef Name="Id"/></Key>
        <Property Name="Id" Type="Edm.Guid" Nullable="false"/>
        <Property Name="Name" Type="Edm.String"/>
        <Property Name="Value" Type="Edm.Decimal" Precision="18" Scale="2"/>
      </EntityType>
      <EntityContainer Name="Default">
        <EntitySet Name="Things" EntityType="Erp.Thing"/>
      </EntityContainer>
    </Schema>
  </edmx:DataServices>
</edmx:Edmx>
"""


def thing(number: int) -> dict[str, Any]:
    """Row ``number`` of the well-behaved data: Ids increase with the number, as keyset paging needs."""
    return {"Id": f"00000000-0000-0000-0000-{number:012d}", "Name": f"Thing {number}", "Value": 1.25}


@dataclass(frozen=True)
class Seen:
    """A request as the server received it."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    @property
    def params(self) -> dict[str, str]:
        return {name: values[0] for name, values in parse_qs(self.query, keep_blank_values=True).items()}


@dataclass
class Answer:
    """What to send back.

    ``framing``: "length" sends Content-Length (``declared`` overrides the true length, to lie),
    "chunked" uses chunked transfer encoding, "close" ends the body by closing the connection.
    ``pieces`` (an iterable, e.g. a generator for a huge body) replaces ``body``; ``trickle`` waits
    that many seconds before every byte of the body, ``trickle_head`` before every byte of the
    status line and headers; ``drop`` closes the connection without an answer.
    """

    status: int = 200
    body: bytes = b""
    content_type: str | None = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    framing: str = "length"
    declared: int | None = None
    pieces: Iterable[bytes] | None = None
    trickle: float | None = None
    trickle_head: float | None = None
    drop: bool = False


Route = Callable[[Seen], Answer]


def json_answer(payload: Any, status: int = 200, **options: Any) -> Answer:
    return Answer(status, json.dumps(payload).encode("utf-8"), **options)


class HostileServer:
    """The look-alike; ``routes`` maps "METHOD /path" (no query) to a handler that overrides the default.

    ``rows`` is how many ``Things`` exist, ``page_size`` how many a page holds at most when the
    client asks for more. ``access_token`` is what the token endpoint issues.
    """

    def __init__(
        self,
        routes: dict[str, Route] | None = None,
        *,
        rows: int = 3,
        access_token: str = "hostile-token-0f3a9c1d7e5b",
    ) -> None:
        self.routes = dict(routes or {})
        self.rows = rows
        self.access_token = access_token
        self.seen: list[Seen] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._server = _Server(self)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05})

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    @property
    def port(self) -> int:
        return self._server.server_port

    @property
    def api_url(self) -> str:
        return f"{self.url}{API}"

    def __enter__(self) -> HostileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stopping.set()
        self._server.shutdown()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self._server.server_close()
        self._thread.join()

    def answer(self, seen: Seen) -> Answer:
        with self._lock:
            self.seen.append(seen)
        route = self.routes.get(f"{seen.method} {seen.path}") or self._default
        return route(seen)

    # The well-behaved server.

    def _default(self, seen: Seen) -> Answer:
        key = f"{seen.method} {seen.path}"
        if key == f"GET {DISCOVERY}":
            return json_answer({"issuer": f"{self.url}/id", "token_endpoint": f"{self.url}{TOKEN_PATH}"})
        if key == f"POST {TOKEN_PATH}":
            return json_answer(
                {"access_token": self.access_token, "expires_in": 3600, "token_type": "Bearer"}
            )
        if seen.path.startswith(API) and seen.headers.get("Authorization") != f"Bearer {self.access_token}":
            return json_answer({"error": {"code": "Unauthorized", "message": "no valid token"}}, 401)
        if key == f"GET {API}$metadata":
            return Answer(body=EDMX, content_type="application/xml")
        if key == f"GET {API}{ENTITY_SET}/$count":
            return Answer(body=str(self.rows).encode(), content_type="text/plain")
        if key == f"GET {API}{ENTITY_SET}":
            return json_answer(self.page(seen))
        return json_answer({"error": {"code": "NotFound", "message": f"no route {key}"}}, 404)

    def page(self, seen: Seen) -> dict[str, Any]:
        """The page a well-behaved server sends for this request (keyset paging on ``$skiptoken``)."""
        params = seen.params
        top = min(int(params.get("$top", "1000")), 1000)
        start = int(params["$skiptoken"]) if "$skiptoken" in params else 0
        rows = [thing(number) for number in range(start, min(start + top, self.rows))]
        body: dict[str, Any] = {"@odata.context": f"{self.api_url}$metadata#{ENTITY_SET}", "value": rows}
        if start + top < self.rows:
            body["@odata.nextLink"] = f"{self.api_url}{ENTITY_SET}?$top={top}&$skiptoken={start + top}"
        return body

    def api_requests(self) -> list[Seen]:
        with self._lock:
            return [seen for seen in self.seen if seen.path.startswith(API)]


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, owner: HostileServer) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.owner._lock:
            self.owner._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.owner._lock:
            self.owner._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hanging up on hostile answers is the point; stay quiet."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        parts = urlsplit(self.path)
        seen = Seen(
            self.command, parts.path, parts.query, dict(self.headers.items()), self.rfile.read(length)
        )
        self._send(self.server.owner.answer(seen))

    do_GET = do_POST = _serve

    def _send(self, answer: Answer) -> None:
        stopping = self.server.owner.stopping
        if answer.drop:
            self.close_connection = True
            return
        pieces = answer.pieces if answer.pieces is not None else [answer.body]
        self.send_response(answer.status)
        if answer.content_type:
            self.send_header("Content-Type", answer.content_type)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        if answer.framing == "length":
            declared = answer.declared if answer.declared is not None else len(answer.body)
            self.send_header("Content-Length", str(declared))
            if answer.declared is not None:
                self.close_connection = True
        elif answer.framing == "chunked":
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        if answer.trickle_head is None:
            self.end_headers()
        else:
            head = b"".join(self._headers_buffer) + b"\r\n"
            self._headers_buffer = []
            for part in _trickled(head, answer.trickle_head, stopping):
                self.wfile.write(part)
                self.wfile.flush()
        for piece in pieces:
            if stopping.is_set():
                return
            for part in _trickled(piece, answer.trickle, stopping):
                if answer.framing == "chunked":
                    part = b"%x\r\n%s\r\n" % (len(part), part) if part else b""
                self.wfile.write(part)
                self.wfile.flush()
        if answer.framing == "chunked":
            self.wfile.write(b"0\r\n\r\n")

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: cases inspect ``seen`` instead."""


def _trickled(piece: bytes, every: float | None, stopping: threading.Event) -> Iterator[bytes]:
    if every is None:
        yield piece
        return
    for index in range(len(piece)):
        if stopping.wait(every):
            return
        yield piece[index : index + 1]


def gzip_bomb(prefix: bytes, filler: bytes, size: int, suffix: bytes) -> bytes:
    """A valid gzip stream of ``prefix + filler * n + suffix`` (about ``size`` bytes decoded).

    Built from one compressed 1 MiB block repeated: after a full flush a deflate block does not
    refer back, so copies of it decode to copies of the block; the trailer carries the true CRC
    and length. A 2 GiB bomb takes about 2 MB and a second or two to build.
    """
    block_size = 1 << 20
    block_data = filler * (block_size // len(filler))
    blocks = max(1, size // len(block_data))
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    head = compressor.compress(prefix) + compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(block_data) + compressor.flush(zlib.Z_FULL_FLUSH)
    tail = compressor.compress(suffix) + compressor.flush(zlib.Z_FINISH)
    crc = zlib.crc32(prefix)
    for _ in range(blocks):
        crc = zlib.crc32(block_data, crc)
    crc = zlib.crc32(suffix, crc)
    length = (len(prefix) + blocks * len(block_data) + len(suffix)) & 0xFFFFFFFF
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    trailer = crc.to_bytes(4, "little") + length.to_bytes(4, "little")
    return header + head + block * blocks + tail + trailer
