"""Bounded body reads (defects 4 and 12 of issue 8) against a real local server.

The hostile suite runs these situations as whole extractions; here each bound on its own, plus the
ordinary answers that must keep working (gzip, deflate, chunked, keep-alive).
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_erpnet.client import ErpNetSettings, ErpNetTransportError
from airflow_provider_erpnet.client.transport import Transport
from tests.client.helpers_servers import fresh_token_cache
from tests.hostile.server import API, Answer, HostileServer, Route, gzip_bomb

__all__ = ["fresh_token_cache"]

pytestmark = pytest.mark.usefixtures("fresh_token_cache")

PAGE = {"value": [{"Id": "a", "Name": "x" * 100}]}
BODY = json.dumps(PAGE).encode()


@contextmanager
def serving(answer: Route, tmp_path: Path, **settings: Any) -> Iterator[tuple[HostileServer, Transport]]:
    with HostileServer({f"GET {API}Things": answer}) as server:
        options: dict[str, Any] = {"disk_cache_dir": str(tmp_path / "tokens"), "max_attempts": 1, **settings}
        config = ErpNetSettings(
            instance_url=server.url, client_id="app", client_secret="body-secret-7", **options
        )
        with Transport(config) as transport:
            yield server, transport


@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        ("gzip", lambda data: zlib.compress(data, wbits=31)),
        ("deflate", lambda data: zlib.compress(data)),
        ("deflate", lambda data: zlib.compress(data, wbits=-15)),
        ("identity", lambda data: data),
    ],
    ids=["gzip", "deflate", "raw-deflate", "identity"],
)
def test_encoded_pages_decode(tmp_path: Path, encoding: str, body: Any) -> None:
    answer = Answer(body=body(BODY), headers={"Content-Encoding": encoding})
    with serving(lambda seen: answer, tmp_path) as (server, transport):
        assert transport.get_json("Things") == PAGE
    assert server.api_requests()[0].headers["Accept-Encoding"] == "gzip, deflate"


@pytest.mark.parametrize("framing", ["chunked", "close"])
def test_bodies_without_a_length_are_read_to_the_end(tmp_path: Path, framing: str) -> None:
    pieces = [BODY[:10], BODY[10:50], BODY[50:]]
    with serving(lambda seen: Answer(pieces=pieces, framing=framing), tmp_path) as (_, transport):
        assert transport.get_json("Things") == PAGE


def test_a_gzip_bomb_stops_at_the_limit(tmp_path: Path) -> None:
    bomb = Answer(body=gzip_bomb(b'{"value": [', b" ", 64 << 20, b"]}"), headers={"Content-Encoding": "gzip"})
    with (
        serving(lambda seen: bomb, tmp_path, max_response_mb=1) as (_, transport),
        pytest.raises(ErpNetTransportError, match="more than 1 MiB") as raised,
    ):
        transport.get_json("Things")
    assert raised.value.setting == "max_response_mb"


def test_a_declared_length_over_the_limit_is_refused_before_reading(tmp_path: Path) -> None:
    """The server promises 3 GiB and sends 2 bytes: no waiting for the rest, no buffer of 3 GiB."""
    answer = Answer(body=b"{}", declared=3 << 30)
    started = time.monotonic()
    with (
        serving(lambda seen: answer, tmp_path, read_timeout=30) as (_, transport),
        pytest.raises(ErpNetTransportError, match="max_response_mb"),
    ):
        transport.get_json("Things")
    assert time.monotonic() - started < 10


def test_a_trickled_body_ends_at_the_response_timeout(tmp_path: Path) -> None:
    answer = Answer(body=BODY, trickle=0.1)
    started = time.monotonic()
    with (
        serving(lambda seen: answer, tmp_path, read_timeout=1, response_timeout=1.5) as (_, transport),
        pytest.raises(ErpNetTransportError, match="response_timeout") as raised,
    ):
        transport.get_json("Things")
    assert raised.value.setting == "response_timeout"
    assert time.monotonic() - started < 10


def test_a_slow_answer_within_the_deadline_is_fine_and_the_connection_is_reused(tmp_path: Path) -> None:
    slow = Answer(pieces=[BODY[:20], BODY[20:]], framing="chunked")
    with serving(lambda seen: slow, tmp_path, response_timeout=5) as (server, transport):
        for _ in range(20):
            assert transport.get_json("Things") == PAGE
    assert len(server.api_requests()) == 20


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        (
            Answer(
                body=b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + b"\xff" * 20,
                headers={"Content-Encoding": "gzip"},
            ),
            "gzip data is corrupt",
        ),
        (Answer(body=b"abc", headers={"Content-Encoding": "zstd"}), "did not ask for"),
        (Answer(body=b"abc", headers={"Content-Encoding": "gzip, gzip"}), "did not ask for"),
    ],
    ids=["corrupt-gzip", "zstd", "double-gzip"],
)
def test_undecodable_bodies_are_transport_errors(tmp_path: Path, answer: Answer, says: str) -> None:
    with (
        serving(lambda seen: answer, tmp_path) as (_, transport),
        pytest.raises(ErpNetTransportError, match=says),
    ):
        transport.get_json("Things")
