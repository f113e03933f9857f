"""A token that grants fewer scopes than the connection asks for is reported once, by name."""

from __future__ import annotations

import base64
import json
import logging

import pytest
import requests

from airflow_provider_erpnet.client import ErpNetSettings
from airflow_provider_erpnet.client.auth import TokenProvider, clear_memory_cache, granted_scopes
from tests.client.helpers_servers import (
    FakeIdentity,
    StubServer,
    assert_no_leak,
    fresh_token_cache,  # noqa: F401  (fixture)
    identity_then,
    json_reply,
)

pytestmark = pytest.mark.usefixtures("fresh_token_cache")


def _jwt(claims: dict[str, object]) -> str:
    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256', 'typ': 'at+jwt'})}.{part(claims)}.c2lnbmF0dXJl"


def _answer(token: str, **fields: object) -> dict[str, object]:
    return {"access_token": token, "expires_in": 3600, "token_type": "Bearer", **fields}


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "scope" in r.getMessage()
    ]


def _fetch(scope: str | None, *answers: dict[str, object]) -> TokenProvider:
    identity = FakeIdentity(token_replies=[json_reply(answer) for answer in answers])
    with StubServer(identity_then(lambda request: json_reply({}), identity)) as server:
        settings = ErpNetSettings(
            instance_url=server.url,
            client_id="app",
            client_secret="scope-secret-5f1",
            scope=scope,
            disk_cache=False,
        )
        with requests.Session() as session:
            provider = TokenProvider(settings, session)
            for _ in answers:
                provider.token()
                clear_memory_cache()  # the next token() asks the identity server again
    return provider


@pytest.mark.parametrize(
    "answer",
    [
        _answer("opaque-token-1", scope="read offline_access"),
        _answer(_jwt({"scope": ["read", "offline_access"], "client_id": "app"})),
        _answer(_jwt({"scope": "read offline_access"})),
    ],
    ids=["scope-field", "jwt-claim-list", "jwt-claim-string"],
)
def test_missing_scopes_are_named_in_one_warning(
    caplog: pytest.LogCaptureFixture, answer: dict[str, object]
) -> None:
    caplog.set_level(logging.INFO)
    _fetch("read update sec", answer, answer)
    (warning,) = _warnings(caplog)  # two tokens with the same shortfall: one warning
    assert "not update sec of the requested scope 'read update sec'" in warning
    assert "granted the scopes offline_access read" in warning
    assert_no_leak(Exception(), caplog.text, "scope-secret-5f1", str(answer["access_token"]))


@pytest.mark.parametrize(
    ("scope", "answer"),
    [
        ("read", _answer("opaque", scope="read update")),
        ("read", _answer(_jwt({"scope": ["read"]}))),
        (None, _answer("opaque", scope="read")),  # no scope asked: every scope the app allows
        ("read update", _answer("opaque-token-without-a-scope-field")),  # nothing says: no guess
        ("read update", _answer("not.a-jwt.token")),
    ],
)
def test_no_warning_when_nothing_is_missing_or_nothing_is_known(
    caplog: pytest.LogCaptureFixture, scope: str | None, answer: dict[str, object]
) -> None:
    caplog.set_level(logging.INFO)
    _fetch(scope, answer)
    assert _warnings(caplog) == []


def test_granted_scopes() -> None:
    assert granted_scopes("read  update", "x") == {"read", "update"}
    assert granted_scopes(None, _jwt({"scope": ["a", "b"]})) == {"a", "b"}
    assert granted_scopes(None, _jwt({"scope": 3})) is None
    assert granted_scopes(None, "a.b.c") is None
