"""The catalogue of hostile answers: one ``Case`` per way a server can be broken, hijacked or lying.

Each case names the defect of issue 8 it reproduces (or "also" for the extra list), the routes of
:class:`HostileServer` it replaces, and what the client must end with: one ``ErpNetError``
subclass whose message contains ``says`` (the fix it names), or ``None`` for a run that completes
(``logs`` then lists what the log must say). ``test_hostile.py`` runs every case as a real
extraction over HTTP and checks the bound, the error, the target directory and every text for
leaks.

Cases for the io side of issue 8 (defects 2, 6, 7, 9, 13 and the read-only output directory of
10) belong in ``IO_CASES`` at the end: same ``Case`` shape, the runner needs nothing else.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

from airflow_provider_erpnet.client.errors import (
    ErpNetApiError,
    ErpNetAuthError,
    ErpNetConfigError,
    ErpNetError,
    ErpNetTransportError,
)
from airflow_provider_erpnet.client.token_cache import FileTokenCache, TokenKey
from tests.hostile.server import (
    API,
    DISCOVERY,
    ENTITY_SET,
    TOKEN_PATH,
    Answer,
    HostileServer,
    Route,
    Seen,
    gzip_bomb,
    json_answer,
    thing,
)

CLIENT_ID = "hostile.app/first"
SECRET = "p@ss w/rd+&=x"
PAGE = f"GET {API}{ENTITY_SET}"
COUNT = f"GET {API}{ENTITY_SET}/$count"
METADATA = f"GET {API}$metadata"
TOKEN = f"POST {TOKEN_PATH}"
MIB = 1 << 20

Routes = Callable[[HostileServer, HostileServer], dict[str, Route]]
Prepare = Callable[[Path, HostileServer], None]


@dataclass(frozen=True)
class Case:
    """One hostile situation and what the client must make of it."""

    name: str
    defect: str
    routes: Routes
    expect: type[ErpNetError] | None
    says: tuple[str, ...] = ()
    logs: tuple[str, ...] = ()
    settings: dict[str, Any] = field(default_factory=dict)
    request: dict[str, Any] = field(default_factory=dict)
    rows: int = 3
    bound: float = 20.0
    prepare: Prepare | None = None
    target: str = "{out}/things.jsonl"  # the output, {out} being the run's output directory
    files: tuple[str, ...] = ()  # names a completed run must have written into {out}


def variants(secret: str, client_id: str = CLIENT_ID) -> set[str]:
    """Every spelling of ``secret`` a server or a library might produce; none may appear anywhere."""
    spellings = {secret, quote(secret), quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}
    spellings |= {spelling.lower() for spelling in spellings if "%" in spelling}
    for user, password in ((client_id, secret), (quote_plus(client_id), quote_plus(secret))):
        spellings.add(base64.b64encode(f"{user}:{password}".encode()).decode())
    spellings.add(base64.b64encode(secret.encode()).decode())
    return spellings


def _page(route: Route) -> Routes:
    return lambda server, foreign: {PAGE: route}


def _same(answer: Answer) -> Route:
    return lambda seen: answer


def _link(server: HostileServer, token: object) -> str:
    return f"{server.api_url}{ENTITY_SET}?$top=2&$skiptoken={token}"


def _first_page_then(link: Callable[[HostileServer, HostileServer], str]) -> Routes:
    """Page 1 is honest (rows 0 and 1) but links to ``link(server, foreign)``."""

    def routes(server: HostileServer, foreign: HostileServer) -> dict[str, Route]:
        foreign.routes[PAGE] = _same(json_answer({"value": [{"Id": "stolen"}]}))
        body = {"value": [thing(0), thing(1)], "@odata.nextLink": link(server, foreign)}
        return {PAGE: _same(json_answer(body))}

    return routes


def _redirect(location: str, status: int = 302) -> Answer:
    return Answer(status, b"", headers={"Location": location})


def _to_foreign_page(server: HostileServer, foreign: HostileServer) -> dict[str, Route]:
    foreign.routes[PAGE] = _same(json_answer({"value": [{"Id": "stolen"}]}))
    return {PAGE: _same(_redirect(f"{foreign.api_url}{ENTITY_SET}?$top=2"))}


def _same_origin_metadata_redirect(server: HostileServer, foreign: HostileServer) -> dict[str, Route]:
    moved = f"GET {API}moved/$metadata"
    return {
        METADATA: _same(_redirect(f"{server.api_url}moved/$metadata", 301)),
        moved: lambda seen: _default_of(server, seen),
    }


def _default_of(server: HostileServer, seen: Seen) -> Answer:
    """The well-behaved answer for the original path of a moved resource."""
    return server._default(Seen(seen.method, f"{API}$metadata", seen.query, seen.headers, seen.body))


def _token_redirect(target: Callable[[HostileServer, HostileServer], str], status: int) -> Routes:
    return lambda server, foreign: {TOKEN: _same(_redirect(target(server, foreign), status))}


def _foreign_token_endpoint(server: HostileServer, foreign: HostileServer) -> dict[str, Route]:
    document = {"issuer": f"{server.url}/id", "token_endpoint": f"{foreign.url}{TOKEN_PATH}"}
    return {f"GET {DISCOVERY}": _same(json_answer(document))}


def _numbered_pages(start_empty: bool = False) -> Route:
    """New rows (or none) on every page, each with a new next link: a stream that never ends."""
    numbers = itertools.count()

    def route(seen: Seen) -> Answer:
        page = next(numbers)
        rows = [] if start_empty else [thing(2 * page), thing(2 * page + 1)]
        return json_answer({"value": rows, "@odata.nextLink": f"{ENTITY_SET}?$top=2&$skiptoken=p{page}"})

    return route


def _repeating_pages(link: bool) -> Route:
    numbers = itertools.count()

    def route(seen: Seen) -> Answer:
        body: dict[str, Any] = {"value": [thing(0), thing(1)]}
        if link:
            body["@odata.nextLink"] = f"{ENTITY_SET}?$top=2&$skiptoken=again{next(numbers)}"
        return json_answer(body)

    return route


def _huge_field_pieces(size: int) -> Iterator[bytes]:
    yield b'{"value": [{"Id": "00000000-0000-0000-0000-000000000000", "Name": "'
    chunk = b"A" * MIB
    for _ in range(size // MIB):
        yield chunk
    yield b'"}]}'


def _bomb(size: int) -> Answer:
    body = gzip_bomb(b'{"value": [', b" ", size, b"]}")
    return Answer(body=body, headers={"Content-Encoding": "gzip"})


def _token_file(tmp_path: Path, server: HostileServer) -> Path:
    key = TokenKey.build(f"{server.url}{TOKEN_PATH}", CLIENT_ID, None, SECRET)
    directory = tmp_path / "tokens"
    directory.mkdir(mode=0o700, exist_ok=True)
    return FileTokenCache(directory).path(key)


def _symlinked_token(tmp_path: Path, server: HostileServer) -> None:
    _token_file(tmp_path, server).symlink_to("/dev/zero")


def _fifo_token(tmp_path: Path, server: HostileServer) -> None:
    os.mkfifo(_token_file(tmp_path, server))


def _nested_token(tmp_path: Path, server: HostileServer) -> None:
    _token_file(tmp_path, server).write_bytes(b"[" * 200_000)


def _open_cache_directory(tmp_path: Path, server: HostileServer) -> None:
    directory = tmp_path / "tokens"
    directory.mkdir()
    directory.chmod(0o777)


def _symlinked_lock(tmp_path: Path, server: HostileServer) -> None:
    token = _token_file(tmp_path, server)
    token.with_suffix(".lock").symlink_to(tmp_path / "victim")


def _oauth_echo(echo: Callable[[str], str]) -> Routes:
    def route(seen: Seen) -> Answer:
        said = f"client secret {echo(SECRET)} is wrong"
        return json_answer({"error": "invalid_client", "error_description": said}, 400)

    return lambda server, foreign: {TOKEN: route}


def _api_echo(server: HostileServer, foreign: HostileServer) -> dict[str, Route]:
    def route(seen: Seen) -> Answer:
        message = (
            f"token {server.access_token} refused\r\n2026-01-01 [CRITICAL] fake log line \x1b[31mred"
            f"\u2028and {seen.headers.get('Authorization')}"
        )
        return json_answer({"error": {"code": "Bad\nRequest", "message": message}}, 400)

    return {PAGE: route}


def _retry_after(value: str) -> Routes:
    answer = json_answer(
        {"error": {"code": "TooMany", "message": "slow down"}}, 429, headers={"Retry-After": value}
    )
    return _page(_same(answer))


def _token_body(body: bytes, content_type: str = "application/json") -> Routes:
    return lambda server, foreign: {TOKEN: _same(Answer(body=body, content_type=content_type))}


def _deep_base_types(depth: int) -> bytes:
    types = "".join(
        f'<EntityType Name="T{n}" BaseType="Erp.T{n + 1}"/>' if n < depth else f'<EntityType Name="T{n}"/>'
        for n in range(depth + 1)
    )
    return (
        '<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx"><edmx:DataServices>'
        f'<Schema Namespace="Erp" xmlns="http://docs.oasis-open.org/odata/ns/edm">{types}</Schema>'
        "</edmx:DataServices></edmx:Edmx>"
    ).encode()


_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol">
<!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
<!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
<!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
<!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
<!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
<!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]><edmx:Edmx xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx">&lol9;</edmx:Edmx>"""

EDMX_ODD = (
    b'<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx"><edmx:DataServices>'
    b'<Schema Namespace="Erp" xmlns="http://docs.oasis-open.org/odata/ns/edm"><EntityType Name="Thing">'
    b'<Key><PropertyRef Name="Id"/></Key><Property Name="Id" Type="Edm.Guid"/>'
    b'<Property Name="Value" Type="Edm.Decimal" Precision="\xc2\xb2"/></EntityType>'
    b'<EntityContainer Name="D"><EntitySet Name="Things" EntityType="Erp.Thing"/></EntityContainer>'
    b"</Schema></edmx:DataServices></edmx:Edmx>"
)

_NO_PAGES: Routes = lambda server, foreign: {}  # noqa: E731

CASES: list[Case] = [
    # Defect 1: the bearer token must reach only the configured API origin, as urllib3 reads the URL.
    Case(
        "next link with a backslash before @",
        "1",
        _first_page_then(
            lambda s, f: f"http://127.0.0.1:{f.port}\\@127.0.0.1:{s.port}{API}Things?$skiptoken=2"
        ),
        ErpNetConfigError,
        ("backslash", "api_url"),
    ),
    Case(
        "next link with userinfo naming the API host",
        "1",
        _first_page_then(
            lambda s, f: f"http://127.0.0.1:{s.port}@127.0.0.1:{f.port}{API}Things?$skiptoken=2"
        ),
        ErpNetConfigError,
        ("api_url",),
    ),
    Case(
        "next link with credentials on the API origin",
        "1",
        _first_page_then(lambda s, f: f"http://me:pw@127.0.0.1:{s.port}{API}Things?$skiptoken=2"),
        ErpNetConfigError,
        ("credentials", "api_url"),
    ),
    Case(
        "next link to another port",
        "1",
        _first_page_then(lambda s, f: f"{f.api_url}Things?$skiptoken=2"),
        ErpNetConfigError,
        ("not the configured Domain API origin", "api_url"),
    ),
    Case(
        "next link with CR LF (header injection)",
        "1",
        _first_page_then(lambda s, f: f"{s.api_url}Things?$skiptoken=2\r\nHost: 127.0.0.1:{f.port}"),
        ErpNetConfigError,
        ("control character", "api_url"),
    ),
    Case(
        "next link to a file URL",
        "1",
        _first_page_then(lambda s, f: "file:///etc/passwd"),
        ErpNetConfigError,
        ("api_url",),
    ),
    # Defect 3: the client secret goes only to the configured identity origin, never along a redirect.
    Case(
        "discovery names a token endpoint on another host",
        "3",
        _foreign_token_endpoint,
        ErpNetConfigError,
        ("token endpoint", "identity_url"),
    ),
    Case(
        "token endpoint answers 307 to another host",
        "3",
        _token_redirect(lambda s, f: f"{f.url}{TOKEN_PATH}", 307),
        ErpNetTransportError,
        ("redirect", "identity_url"),
    ),
    Case(
        "token endpoint answers 308 within its own origin",
        "3",
        _token_redirect(lambda s, f: f"{s.url}/id/connect/token2", 308),
        ErpNetTransportError,
        ("redirect", "identity_url"),
    ),
    Case(
        "Domain API redirects a page to another host",
        "3",
        _to_foreign_page,
        ErpNetTransportError,
        ("redirect", "api_url"),
    ),
    Case(
        "Domain API redirects in a loop on its own origin",
        "3",
        _page(_same(_redirect(f"{API}{ENTITY_SET}?$top=2"))),
        ErpNetTransportError,
        ("redirect",),
    ),
    Case(
        "Domain API moves $metadata within its origin (followed)",
        "3",
        _same_origin_metadata_redirect,
        None,
    ),
    Case(
        "plain-http identity server on a non-loopback host",
        "3",
        _NO_PAGES,
        ErpNetConfigError,
        ("allow_plain_http", "https"),
        settings={"identity_url": "http://erp.invalid/id"},
    ),
    # Defect 4: every answer is bounded in size, however it is encoded.
    Case(
        "gzip bomb (64 MiB of whitespace in 66 KB)",
        "4",
        _page(_same(_bomb(64 * MIB))),
        ErpNetTransportError,
        ("max_response_mb",),
        settings={"max_response_mb": 16},
    ),
    Case(
        "huge string field with Content-Length",
        "4",
        _page(lambda seen: Answer(body=b"".join(_huge_field_pieces(32 * MIB)))),
        ErpNetTransportError,
        ("max_response_mb",),
        settings={"max_response_mb": 16},
    ),
    Case(
        "huge string field, chunked",
        "4",
        _page(lambda seen: Answer(pieces=_huge_field_pieces(32 * MIB), framing="chunked")),
        ErpNetTransportError,
        ("max_response_mb",),
        settings={"max_response_mb": 16},
    ),
    Case(
        "huge string field, ended by closing the connection",
        "4",
        _page(lambda seen: Answer(pieces=_huge_field_pieces(32 * MIB), framing="close")),
        ErpNetTransportError,
        ("max_response_mb",),
        settings={"max_response_mb": 16},
    ),
    Case(
        "gzip body that is not gzip",
        "4",
        _page(_same(Answer(body=b"\x1f\x8b\x08garbage" * 10, headers={"Content-Encoding": "gzip"}))),
        ErpNetTransportError,
        ("Content-Encoding",),
    ),
    Case(
        "Content-Encoding the client did not ask for",
        "4",
        _page(_same(Answer(body=b"\x0b\x02\x80{}\x03", headers={"Content-Encoding": "br"}))),
        ErpNetTransportError,
        ("Content-Encoding",),
    ),
    Case(
        "a page of 10 MB of whitespace",
        "also",
        _page(_same(Answer(body=b" " * (10 * MIB)))),
        ErpNetTransportError,
        ("api_url",),
    ),
    # Defect 5: paging ends even when the server never ends it.
    Case(
        "server ignores $skip (full pages, no next link)",
        "5",
        _page(_repeating_pages(link=False)),
        ErpNetTransportError,
        ("repeats",),
        rows=10,
    ),
    Case(
        "next links change but the page repeats",
        "5",
        _page(_repeating_pages(link=True)),
        ErpNetTransportError,
        ("repeats",),
        rows=10,
    ),
    Case(
        "$count says 5, new rows never end",
        "5",
        _page(_numbered_pages()),
        ErpNetTransportError,
        ("$count", "5"),
        rows=5,
    ),
    Case(
        "changing next links on empty pages forever",
        "5",
        _page(_numbered_pages(start_empty=True)),
        ErpNetTransportError,
        ("pages",),
        rows=5,
    ),
    Case(
        "the same next link twice",
        "5",
        _first_page_then(lambda s, f: f"{API}{ENTITY_SET}?$top=2&$skiptoken=0"),
        ErpNetTransportError,
        ("same next link",),
        rows=10,
    ),
    # Defect 8: the token cache trusts nothing it finds on disk; the run goes on from memory.
    Case(
        "token cache directory writable by others",
        "8",
        _NO_PAGES,
        None,
        logs=("writable by others", "memory"),
        prepare=_open_cache_directory,
    ),
    Case("token file is a symlink to /dev/zero", "8", _NO_PAGES, None, prepare=_symlinked_token),
    Case("token file is a FIFO", "8", _NO_PAGES, None, prepare=_fifo_token),
    Case("token file of 200,000 '['", "8", _NO_PAGES, None, prepare=_nested_token),
    Case("token lock file is a symlink", "8", _NO_PAGES, None, prepare=_symlinked_lock),
    # Defect 10: whatever arrives, the caller gets an ErpNetError.
    Case(
        "value holds non-objects [1, 'two', null]",
        "10",
        _page(_same(json_answer({"value": [1, "two", None]}))),
        ErpNetTransportError,
        ("api_url",),
    ),
    Case(
        "100,000-digit $count",
        "10",
        lambda server, foreign: {COUNT: _same(Answer(body=b"9" * 100_000, content_type="text/plain"))},
        ErpNetTransportError,
        ("$count",),
    ),
    Case(
        "100,000-digit @odata.count",
        "10",
        lambda server, foreign: {
            COUNT: _same(json_answer({"error": {"code": "NotFound", "message": "no"}}, 404)),
            PAGE: lambda seen: (
                Answer(body=b'{"@odata.count": ' + b"9" * 100_000 + b', "value": []}')
                if seen.params.get("$count") == "true"
                else json_answer(server.page(seen))
            ),
        },
        ErpNetTransportError,
        ("api_url",),
    ),
    Case(
        "JSON nested 1000 deep",
        "10",
        _page(_same(Answer(body=b'{"value": [{"Id": "x", "Name": ' + b"[" * 1000 + b"]" * 1000 + b"}]}"))),
        ErpNetTransportError,
        ("nested",),
    ),
    Case(
        "lone surrogate in a filter",
        "10",
        _NO_PAGES,
        ErpNetConfigError,
        ("filter", "surrogate"),
        request={"filter": "Name eq 'caf\udce9'"},
    ),
    # Defect 11: server text is scrubbed of every spelling of the secret and token, on one line.
    Case(
        "identity server echoes the form-encoded secret",
        "11",
        _oauth_echo(quote_plus),
        ErpNetAuthError,
        ("invalid_client",),
    ),
    Case(
        "identity server echoes the percent-encoded secret in lower case",
        "11",
        _oauth_echo(lambda secret: quote(secret, safe="").lower()),
        ErpNetAuthError,
        ("invalid_client",),
    ),
    Case(
        "identity server echoes base64 of id:secret",
        "11",
        _oauth_echo(lambda secret: base64.b64encode(f"{CLIENT_ID}:{secret}".encode()).decode()),
        ErpNetAuthError,
        ("invalid_client",),
    ),
    Case(
        "identity server echoes the secret as its Content-Encoding",
        "11",
        lambda server, foreign: {TOKEN: _same(Answer(body=b"{}", headers={"Content-Encoding": SECRET}))},
        ErpNetTransportError,
        ("Content-Encoding", "identity_url"),
    ),
    Case(
        "API error echoes the token with CR LF, ANSI and U+2028",
        "11",
        _api_echo,
        ErpNetApiError,
        ("400",),
    ),
    # Defect 12: a total deadline per response on top of the per-read timeout.
    Case(
        "page body trickled one byte at a time",
        "12",
        _page(lambda seen: Answer(body=json.dumps({"value": [thing(0)]}).encode(), trickle=0.2)),
        ErpNetTransportError,
        ("response_timeout",),
        settings={"read_timeout": 1.0, "response_timeout": 2.0},
        bound=12,
    ),
    Case(
        "token answer trickled one byte at a time",
        "12",
        lambda server, foreign: {
            TOKEN: lambda seen: Answer(
                body=json.dumps({"access_token": "t", "expires_in": 60}).encode(), trickle=0.2
            )
        },
        ErpNetTransportError,
        ("response_timeout",),
        settings={"read_timeout": 1.0, "response_timeout": 2.0},
        bound=12,
    ),
    Case(
        "status line and headers trickled one byte at a time",
        "12",
        _page(lambda seen: Answer(body=b'{"value": []}', headers={"X-Padding": "." * 200}, trickle_head=0.2)),
        ErpNetTransportError,
        ("response_timeout",),
        settings={"read_timeout": 1.0, "response_timeout": 2.0},
        bound=12,
    ),
    # Also: what a proxy, a login page or a broken server sends.
    Case(
        "HTML 200 instead of a page",
        "also",
        _page(_same(Answer(body=b"<html><body>Sign in</body></html>", content_type="text/html"))),
        ErpNetTransportError,
        ("api_url",),
    ),
    Case(
        "truncated JSON (complete length)",
        "also",
        _page(_same(Answer(body=b'{"value": [{"Id": "00000000-0000-0000-0000-000000000000", "Na'))),
        ErpNetTransportError,
        ("api_url",),
    ),
    Case(
        "body shorter than its Content-Length",
        "also",
        _page(_same(Answer(body=b'{"value": []}', declared=1000))),
        ErpNetTransportError,
        ("cut off",),
    ),
    Case(
        "value is an object, not a list",
        "also",
        _page(_same(json_answer({"value": {"Id": "x"}}))),
        ErpNetTransportError,
        ("api_url",),
    ),
    Case(
        "page is a JSON array",
        "also",
        _page(_same(json_answer([thing(0)]))),
        ErpNetTransportError,
        ("api_url",),
    ),
    Case(
        "401 forever",
        "also",
        _page(_same(json_answer({"error": {"code": "Unauthorized", "message": "no"}}, 401))),
        ErpNetAuthError,
        ("identity_url", "api_url"),
    ),
    Case(
        "huge Retry-After (seconds)",
        "also",
        _retry_after("999999999"),
        ErpNetApiError,
        ("429", "attempts"),
    ),
    Case(
        "Retry-After as a far-future HTTP date",
        "also",
        _retry_after("Fri, 31 Dec 9999 23:59:59 GMT"),
        ErpNetApiError,
        ("429", "attempts"),
    ),
    Case(
        "connection dropped on every page",
        "also",
        _page(_same(Answer(drop=True))),
        ErpNetTransportError,
        ("api_url",),
    ),
    Case(
        "token answer with a huge expires_in",
        "also",
        _token_body(b'{"access_token": "hostile-token-0f3a9c1d7e5b", "expires_in": 1' + b"0" * 400 + b"}"),
        None,
    ),
    Case(
        "token answer with expires_in 1e400",
        "also",
        _token_body(b'{"access_token": "hostile-token-0f3a9c1d7e5b", "expires_in": 1e400}'),
        None,
    ),
    Case(
        "token answer without access_token",
        "also",
        _token_body(b'{"token_type": "Bearer", "expires_in": 60}'),
        ErpNetTransportError,
        ("identity_url",),
    ),
    Case(
        "HTML 200 from the token endpoint",
        "also",
        _token_body(b"<html>login</html>", "text/html"),
        ErpNetTransportError,
        ("identity_url",),
    ),
    Case(
        "$metadata is not XML",
        "also",
        lambda server, foreign: {METADATA: _same(Answer(body=b"{not xml", content_type="application/xml"))},
        ErpNetTransportError,
        ("$metadata",),
    ),
    Case(
        "$metadata billion laughs",
        "also",
        lambda server, foreign: {METADATA: _same(Answer(body=_LAUGHS, content_type="application/xml"))},
        ErpNetTransportError,
        ("$metadata",),
    ),
    Case(
        "$metadata with 5,000 chained base types",
        "also",
        lambda server, foreign: {
            METADATA: _same(Answer(body=_deep_base_types(5000), content_type="application/xml"))
        },
        ErpNetTransportError,
        ("$metadata",),
    ),
    Case(
        "$metadata facet with a non-ASCII digit",
        "also",
        lambda server, foreign: {METADATA: _same(Answer(body=EDMX_ODD, content_type="application/xml"))},
        None,
    ),
]


# Cases of the io side of issue 8 (security-io) that a server or the target directory can cause:
# decimals outside their column (6), a killed run's files beside the target (7, 9), an output
# directory that cannot be written (10), file URLs (13). Spool takeover (2) needs a second Unix user:
# tests/io/test_spool_private.py.


def _parent_is_a_file(tmp_path: Path, server: HostileServer) -> None:
    (tmp_path / "out" / "afile").write_text("not a directory")


def _page_with_value(value: bytes) -> Routes:
    """One page of one thing whose ``Value`` (Edm.Decimal 18,2) is written as ``value``."""
    row = b'{"Id": "00000000-0000-0000-0000-000000000000", "Name": "Thing 0", "Value": ' + value + b"}"
    return _page(_same(Answer(body=b'{"value": [' + row + b"]}")))


def _killed_run_beside_the_target(tmp_path: Path, server: HostileServer) -> None:
    out = tmp_path / "out"
    run = "0194f3a2b1c05e7d"
    for name in (
        f".things.jsonl.tmp-{run}{'a' * 16}",
        f".things.jsonl.lock-{run}",
        f"things-{run}-00000.jsonl",
    ):
        (out / name).write_text('{"Id": "left by a killed run"}\n')


def _output_directory_is_a_file(tmp_path: Path, server: HostileServer) -> None:
    (tmp_path / "out").rmdir()
    (tmp_path / "out").write_text("a file where the output directory should be\n")


IO_CASES: list[Case] = [
    Case(
        "file://localhost URL with %20 in the path",
        "13",
        _NO_PAGES,
        None,
        target="file://localhost{out}/things%20today.jsonl",
        files=("things today.jsonl",),
    ),
    Case(
        "file URL naming another host",
        "13",
        _NO_PAGES,
        ErpNetConfigError,
        ("file:///",),
        target="file://fileserver{out}/things.jsonl",
    ),
    Case(
        "output directory that cannot be written",
        "10",
        _NO_PAGES,
        ErpNetConfigError,
        ("output_path",),
        target="/proc/things.jsonl",
    ),
    Case(
        "output directory whose parent is a file",
        "10",
        _NO_PAGES,
        ErpNetConfigError,
        ("output_path",),
        target="{out}/afile/things.jsonl",
        prepare=_parent_is_a_file,
    ),
    Case(
        "a decimal of 1e400000000 (11 bytes, a 400 MB cell in plain digits)",
        "6",
        _page_with_value(b"1e400000000"),
        ErpNetError,
        ("Row 1", "'Value'", "400000001 integer", "decimal(18,2)"),
        rows=1,
    ),
    Case(
        "a decimal of -1e-400000000 (crashed Parquet writers)",
        "6",
        _page_with_value(b"-1e-400000000"),
        ErpNetError,
        ("Row 1", "'Value'", "400000000 fraction", "decimal(18,2)"),
        rows=1,
    ),
    Case(
        "a decimal beyond its scale (12.3456 in decimal(18,2))",
        "6",
        _page_with_value(b"12.3456"),
        ErpNetError,
        ("Row 1", "'Value'", "4 fraction digits", "decimal(18,2)"),
        rows=1,
    ),
    Case("a zero of 0E-400000000", "6", _page_with_value(b"0E-400000000"), None, rows=1),
    Case(
        "temporary file, lock and part of a killed run beside the target",
        "9",
        lambda server, foreign: {},
        None,
        logs=("Removed 2 file(s) left beside the target",),
        prepare=_killed_run_beside_the_target,
    ),
    Case(
        "output directory is a file",
        "10",
        lambda server, foreign: {},
        ErpNetConfigError,
        ("Cannot write to the output directory", "output_path"),
        prepare=_output_directory_is_a_file,
    ),
]

ALL_CASES = CASES + IO_CASES
