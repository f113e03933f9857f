"""Serve pages saved from the warmed sandbox, at almost no CPU cost, optionally with latency per page.

Every client of the benchmark reads the same bytes: the pages ``benchmarks/data.py`` saved, the
``$metadata``, ``$count``, a service document and an identity server that hands out one static
token. Page 1 is any request for the entity set without ``$skiptoken``; the saved next links
carry ``$skiptoken=<page index>`` and this server's own origin. A threaded HTTP/1.1 server keeps
connections alive and answers concurrent readers at once (each waits its own latency).

For ``max_concurrency`` (partitions of Id read at once) it also answers what the partition planner
and the partition readers send, from the same records (``IdRanges``): ``$filter`` made of
``Id ge <guid>`` / ``Id le <guid>`` bounds (anything else: 400), on pages and on ``$count``, and
``$orderby=Id`` / ``Id desc`` samples. Such pages are joined from the saved records' bytes at
request time (no JSON encoding) and wait the same latency per page.

    python benchmarks/static_server.py DATA_DIR [--latency-ms 200]

prints ``http://127.0.0.1:<port>`` once it is serving and runs until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import bisect
import json
import re
import signal
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import msgspec

BASE_PLACEHOLDER = b"{{BASE}}"
API = "/api/domain/odata/"
TOKEN = "static-benchmark-token"
NEXT_LINK = re.compile(rb',\s*"@odata\.nextLink"\s*:\s*"[^"]*"')
UNSUPPORTED = b'{"error":{"message":"this server evaluates only Id ge/le filters"}}'
ID_BOUND = re.compile(r"^\(?Id (ge|le) ([0-9a-f-]{36})\)?$")


class _Raws(msgspec.Struct):
    value: list[msgspec.Raw]


class _Ids(msgspec.Struct):
    value: list[dict[str, Any]]


class IdRanges:
    """The saved records in Id order, served by ranges of Id (what partitioned reads ask for)."""

    def __init__(self, pages: list[bytes], base: str, entity_set: str) -> None:
        self.records: list[bytes] = []
        self.ids: list[str] = []
        for body in pages:
            self.records += [bytes(raw) for raw in msgspec.json.decode(body, type=_Raws).value]
            self.ids += [record["Id"] for record in msgspec.json.decode(body, type=_Ids).value]
        if self.ids != sorted(self.ids):
            raise RuntimeError("the saved pages are not in Id text order")
        self.url = f"{base}{API}{entity_set}"
        self.context = f'{{"@odata.context":"{base}{API}$metadata#{entity_set}","value":['.encode()

    def span(self, filter: str | None) -> tuple[int, int] | None:
        """Positions ``first..end`` the filter selects, or None for a filter this server cannot evaluate."""
        first, end = 0, len(self.ids)
        for bound in (filter or "").split(" and ") if filter else []:
            found = ID_BOUND.match(bound.strip())
            if found is None:
                return None
            op, guid = found.groups()
            if op == "ge":
                first = max(first, bisect.bisect_left(self.ids, guid))
            else:
                end = min(end, bisect.bisect_right(self.ids, guid))
        return first, max(first, end)

    def page(self, query: dict[str, list[str]]) -> bytes | None:
        """One page of a filtered or ordered request; None when the filter cannot be evaluated."""
        filter = (query.get("$filter") or [None])[0]
        span = self.span(filter)
        if span is None:
            return None
        first, end = span
        top = int((query.get("$top") or ["1000"])[0])
        if (query.get("$orderby") or [""])[0].strip() == "Id desc":
            chosen = self.records[max(first, end - top) : end][::-1]
            return self.context + b",".join(chosen) + b"]}"
        start = int((query.get("$skiptoken") or ["r0"])[0].lstrip("r") or 0) or first
        stop = min(end, start + top)
        body = self.context + b",".join(self.records[start:stop]) + b"]"
        if stop < end:
            options = {"$top": str(top), "$skiptoken": f"r{stop}"}
            if filter:
                options["$filter"] = filter
            body += f',"@odata.nextLink":"{self.url}?{urlencode(options)}"'.encode()
        return body + b"}"


class PageStore:
    """The saved files of one data set, with the placeholder origin replaced by the server's."""

    def __init__(self, directory: Path, base: str, pages: int | None = None) -> None:
        info = json.loads((directory / "info.json").read_text())
        self.entity_set: str = info["entity_set"]
        served = min(pages or info["pages"], info["pages"])
        origin = base.encode()
        self.pages = [
            (directory / f"page-{index:05d}.json").read_bytes().replace(BASE_PLACEHOLDER, origin)
            for index in range(served)
        ]
        if served < info["pages"]:  # the last page served ends the set: no next link
            self.pages[-1] = NEXT_LINK.sub(b"", self.pages[-1])
        self.metadata = (directory / "metadata.xml").read_bytes()
        self.count = str(sum(info["page_rows"][:served])).encode()
        self.discovery = json.dumps(
            {"issuer": f"{base}/id", "token_endpoint": f"{base}/id/connect/token"}
        ).encode()
        self.ranges = IdRanges(self.pages, base, self.entity_set)
        self.service = json.dumps(
            {
                "@odata.context": f"{base}{API}$metadata",
                "value": [{"name": self.entity_set, "kind": "EntitySet"}],
            }
        ).encode()


def make_handler(store_box: list[PageStore], latency: float) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: one line per request would cost more than serving it."""

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            if self.path.startswith("/id/connect/token"):
                body = json.dumps({"access_token": TOKEN, "expires_in": 3600, "token_type": "Bearer"})
                self._send(200, body.encode(), "application/json")
            else:
                self._send(404, b"{}", "application/json")

        def do_GET(self) -> None:
            store = store_box[0]
            parts = urlsplit(self.path)
            path = parts.path
            if path == "/id/.well-known/openid-configuration":
                return self._send(200, store.discovery, "application/json")
            if path == f"{API}$metadata":
                return self._send(200, store.metadata, "application/xml")
            if path == f"{API}{store.entity_set}/$count":
                query = parse_qs(parts.query)
                if "$filter" not in query:
                    return self._send(200, store.count, "text/plain")
                span = store.ranges.span(query["$filter"][0])
                if span is None:
                    return self._send(400, UNSUPPORTED, "application/json")
                return self._send(200, str(span[1] - span[0]).encode(), "text/plain")
            if path in (API, API.rstrip("/")):
                return self._send(200, store.service, "application/json")
            if path == f"{API}{store.entity_set}":
                query = parse_qs(parts.query)
                if "$filter" in query or "$orderby" in query:
                    ranged = store.ranges.page(query)
                    if ranged is None:
                        return self._send(400, UNSUPPORTED, "application/json")
                    if latency:
                        time.sleep(latency)
                    return self._send(200, ranged, "application/json;odata.metadata=minimal")
                token = (query.get("$skiptoken") or ["0"])[0]
                index = int(token) if token.isdigit() else 0
                if index >= len(store.pages):
                    return self._send(404, b'{"error":{"message":"no such page"}}', "application/json")
                if latency:
                    time.sleep(latency)
                return self._send(200, store.pages[index], "application/json;odata.metadata=minimal")
            return self._send(404, b'{"error":{"message":"not found"}}', "application/json")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay before each page")
    parser.add_argument("--pages", type=int, default=None, help="serve only the first N pages")
    args = parser.parse_args()
    box: list[PageStore] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(box, args.latency_ms / 1000))
    server.daemon_threads = True
    base = f"http://127.0.0.1:{server.server_address[1]}"
    box.append(PageStore(args.directory, base, args.pages))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(base, flush=True)
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
