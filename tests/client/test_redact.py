"""Server text in messages: every spelling of a registered credential scrubbed, one line, short."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from urllib.parse import quote, quote_plus

import pytest

from airflow_provider_erpnet.client import redact

SECRET = "p@ss w/rd+&=x"
CLIENT = "my.trusted.app/first"


@pytest.fixture(autouse=True)
def registry() -> Iterator[None]:
    redact.forget_all()
    redact.remember_secret(SECRET, CLIENT)
    yield
    redact.forget_all()


@pytest.mark.parametrize(
    "spelling",
    [
        SECRET,
        quote_plus(SECRET),  # p%40ss+w%2Frd%2B%26%3Dx, the form-encoded echo of the issue
        quote_plus(SECRET).lower(),
        quote(SECRET, safe=""),
        quote(SECRET),
        base64.b64encode(f"{CLIENT}:{SECRET}".encode()).decode(),
        base64.b64encode(f"{quote_plus(CLIENT)}:{quote_plus(SECRET)}".encode()).decode(),
        base64.b64encode(SECRET.encode()).decode(),
    ],
)
def test_every_spelling_of_the_secret_is_scrubbed(spelling: str) -> None:
    said = redact.server_text(f"client secret {spelling} is wrong")
    assert said == "client secret *** is wrong"


def test_tokens_are_scrubbed_once_remembered() -> None:
    token = "eyJhbGciOiJSUzI1NiJ9.payload.signature"
    assert token in redact.scrub(f"bad token {token}")
    redact.remember_token(token)
    assert redact.scrub(f"bad token {token}") == "bad token ***"


def test_control_characters_and_newlines_never_reach_a_message() -> None:
    said = redact.server_text("line one\r\n2026-01-01 CRITICAL forged\x1b[31m \u2028next\u202eevil\x00")
    assert said == "line one 2026-01-01 CRITICAL forged [31m next evil"


def test_a_secret_split_by_a_control_character_is_still_scrubbed() -> None:
    assert redact.server_text("p@ss\nw/rd+&=x") == "***"


def test_long_text_is_shortened_after_scrubbing() -> None:
    said = redact.server_text("x" * 5000 + SECRET, limit=100)
    assert said is not None and len(said) == 100 and said.endswith("…")
    assert redact.server_text("y" * 10_000_000, limit=50) == "y" * 49 + "…"


def test_short_credentials_are_not_scrubbed_everywhere() -> None:
    redact.remember_token("abc")
    assert redact.scrub("abc abc") == "abc abc"


def test_missing_text_is_none() -> None:
    assert redact.server_text(None) is None and redact.server_text("") is None
