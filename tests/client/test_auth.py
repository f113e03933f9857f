"""TokenProvider against tiny local servers: the seed's request, discovery, caching, errors."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from airflow_provider_erpnet.client import auth
from airflow_provider_erpnet.client.auth import TokenProvider
from airflow_provider_erpnet.client.clock import ManualClock
from airflow_provider_erpnet.client.errors import ErpNetAuthError, ErpNetTransportError
from airflow_provider_erpnet.client.settings import ErpNetSettings
from airflow_provider_erpnet.sandbox import DEFAULT_CLIENT_ID, DEFAULT_SECRET, Sandbox
from tests.client.helpers_servers import (
    FakeIdentity,
    Recorded,
    Reply,
    SilentServer,
    StubServer,
    assert_no_leak,
    fresh_token_cache,  # noqa: F401  (fixture)
    html_reply,
    json_reply,
    refused_port_url,
)

pytestmark = pytest.mark.usefixtures("fresh_token_cache")

SECRET = "stub-secret-7f3a"
CLIENT_ID = "my.trusted.app/first"


def settings_for(url: str, tmp_path: Path, **changes: object) -> ErpNetSettings:
    values: dict[str, object] = {
        "instance_url": url,
        "client_id": CLIENT_ID,
        "client_secret": SECRET,
        "scope": "read",
        "disk_cache_dir": str(tmp_path / "tokens"),
        "max_wait": 0.05,
    }
    values.update(changes)
    return ErpNetSettings(**values)  # type: ignore[arg-type]


def sandbox_settings(sandbox: Sandbox, tmp_path: Path, **changes: object) -> ErpNetSettings:
    values: dict[str, object] = {
        "client_id": DEFAULT_CLIENT_ID,
        "client_secret": DEFAULT_SECRET,
        "scope": None,
    }
    values.update(changes)
    return settings_for(sandbox.base_url, tmp_path, **values)


@pytest.fixture(scope="module")
def shared_sandbox() -> Iterator[Sandbox]:
    """One sandbox for the refusal cases: none of them gets a token, so they cannot interfere."""
    with Sandbox(scale=10) as sandbox:
        yield sandbox


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as http:
        yield http


def not_found(request: Recorded) -> Reply:
    return json_reply({"error": "not found"}, status=404)


def identity_server(identity: FakeIdentity) -> StubServer:
    return StubServer(lambda request: identity(request) or not_found(request))


def test_token_request_equals_the_seed(tmp_path: Path, session: requests.Session) -> None:
    identity = FakeIdentity()
    with identity_server(identity) as server:
        token = TokenProvider(settings_for(server.url, tmp_path), session).token()
    discovery, token_request = server.requests
    assert (discovery.method, discovery.path) == ("GET", "/id/.well-known/openid-configuration")
    assert (token_request.method, token_request.path, token_request.query) == (
        "POST",
        "/id/connect/token",
        "",
    )
    assert token_request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert token_request.form == [
        ("client_id", CLIENT_ID),
        ("client_secret", SECRET),
        ("grant_type", "client_credentials"),
        ("scope", "read"),
    ]
    assert "Authorization" not in token_request.headers
    assert token == identity.issued[0]


def test_scope_is_omitted_when_not_set(tmp_path: Path, session: requests.Session) -> None:
    with identity_server(FakeIdentity()) as server:
        TokenProvider(settings_for(server.url, tmp_path, scope=None), session).token()
    assert [name for name, _ in server.requests[-1].form] == ["client_id", "client_secret", "grant_type"]


def test_discovery_404_falls_back_to_connect_token(tmp_path: Path, session: requests.Session) -> None:
    identity = FakeIdentity()

    def no_discovery(request: Recorded) -> Reply:
        if request.path.endswith("openid-configuration"):
            return not_found(request)
        return identity(request) or not_found(request)

    with StubServer(no_discovery) as server:
        provider = TokenProvider(settings_for(server.url, tmp_path), session)
        assert provider.token_endpoint == f"{server.url}/id/connect/token"
        provider.token()
    assert [r.path for r in server.requests] == ["/id/.well-known/openid-configuration", "/id/connect/token"]


def test_discovery_once_and_memory_cache_shared_by_providers(
    tmp_path: Path, session: requests.Session
) -> None:
    identity = FakeIdentity()
    with identity_server(identity) as server:
        settings = settings_for(server.url, tmp_path, disk_cache=False)
        first = TokenProvider(settings, session)
        tokens = {first.token() for _ in range(5)}
        second = TokenProvider(settings, session)
        tokens.add(second.token())
    assert tokens == {identity.issued[0]}
    assert len(identity.issued) == 1
    assert (first.tokens_requested, second.tokens_requested) == (1, 0)
    assert [r.path for r in server.requests].count("/id/.well-known/openid-configuration") == 2


def test_a_changed_secret_does_not_reuse_the_old_token(tmp_path: Path, session: requests.Session) -> None:
    identity = FakeIdentity()
    with identity_server(identity) as server:
        old = TokenProvider(settings_for(server.url, tmp_path), session).token()
        new = TokenProvider(
            settings_for(server.url, tmp_path, client_secret="rotated-secret"), session
        ).token()
    assert old != new
    assert len(identity.issued) == 2


def test_concurrent_threads_share_one_refresh(tmp_path: Path) -> None:
    identity = FakeIdentity()
    with identity_server(identity) as server:
        settings = settings_for(server.url, tmp_path, disk_cache=False)
        providers = [TokenProvider(settings, requests.Session()) for _ in range(12)]
        start = threading.Barrier(len(providers))
        results: list[str] = []

        def fetch(provider: TokenProvider) -> None:
            _ = provider.token_endpoint  # discovery outside the race under test
            start.wait()
            results.append(provider.token())

        threads = [threading.Thread(target=fetch, args=(p,)) for p in providers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(identity.issued) == 1
    assert results == [identity.issued[0]] * len(providers)


def test_invalidate_drops_only_the_current_token(tmp_path: Path, session: requests.Session) -> None:
    identity = FakeIdentity()
    with identity_server(identity) as server:
        provider = TokenProvider(settings_for(server.url, tmp_path), session)
        first = provider.token()
        provider.invalidate(first)
        second = provider.token()
        provider.invalidate(first)  # a late 401 with the old token must not drop the new one
        assert provider.token() == second
    assert first != second
    assert len(identity.issued) == 2


def test_invalidated_token_in_the_file_is_not_reused(tmp_path: Path, session: requests.Session) -> None:
    identity = FakeIdentity()
    with identity_server(identity) as server:
        provider = TokenProvider(settings_for(server.url, tmp_path), session)
        first = provider.token()
        provider.invalidate(first)
        assert provider.token() != first
        # another process would now find the new token in the file
        auth.clear_memory_cache()
        assert TokenProvider(settings_for(server.url, tmp_path), session).token() == identity.issued[1]
    assert len(identity.issued) == 2


def test_short_lived_token_is_refreshed_near_expiry(
    erpnet_sandbox_factory: Callable[..., Sandbox], tmp_path: Path, session: requests.Session
) -> None:
    """One clock for the identity server and the client: the test moves it instead of waiting."""
    clock = ManualClock()
    sandbox = erpnet_sandbox_factory(token_lifetime=4, clock=clock)  # refresh margin: half of it, 2 s
    provider = TokenProvider(sandbox_settings(sandbox, tmp_path), session, clock=clock)
    first = provider.token()  # usable until 3 s from now (4 s less a second for exp's rounding)
    clock.advance(0.9)
    assert provider.token() == first
    assert sandbox.stats()["tokens_issued"] == 1
    clock.advance(0.2)  # 1.9 s left: inside the 2 s margin
    second = provider.token()
    assert second != first
    assert provider.tokens_requested == 2
    assert sandbox.stats()["tokens_issued"] == 2


def test_expiry_is_counted_from_before_the_request_less_a_second_for_whole_second_exp(
    tmp_path: Path, session: requests.Session
) -> None:
    """A server truncates the issue time into exp; trusting expires_in fully could overshoot by 1 s."""
    with identity_server(FakeIdentity(expires_in=4)) as server:
        provider = TokenProvider(settings_for(server.url, tmp_path), session)
        _ = provider.token_endpoint
        before = time.time()
        provider.token()
        after = time.time()
    (cached,) = (tmp_path / "tokens").glob("*.json")
    expires_at = json.loads(cached.read_text())["expires_at"]
    assert before + 4 - auth.EXP_ROUNDING <= expires_at <= after + 4 - auth.EXP_ROUNDING


def test_masker_receives_the_secret_and_every_token(tmp_path: Path, session: requests.Session) -> None:
    masked: list[str] = []
    auth.set_secret_masker(masked.append)
    try:
        identity = FakeIdentity()
        with identity_server(identity) as server:
            provider = TokenProvider(settings_for(server.url, tmp_path), session)
            provider.invalidate(provider.token())
            provider.token()
    finally:
        auth.set_secret_masker(None)
    assert SECRET in masked
    assert set(identity.issued) <= set(masked)


def test_token_endpoint_503_is_retried(tmp_path: Path, session: requests.Session) -> None:
    busy = json_reply({"error": "busy"}, status=503, headers={"Retry-After": "0"})
    identity = FakeIdentity(token_replies=[busy, busy])
    with identity_server(identity) as server:
        provider = TokenProvider(settings_for(server.url, tmp_path), session)
        assert provider.token() == identity.issued[0]
    assert provider.retries == 2


def test_token_endpoint_503_exhausted(
    tmp_path: Path, session: requests.Session, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    busy = json_reply({"error": "busy"}, status=503)
    with identity_server(FakeIdentity(token_replies=[busy] * 3)) as server:
        provider = TokenProvider(settings_for(server.url, tmp_path, max_attempts=3), session)
        with pytest.raises(ErpNetTransportError, match="answered 503 to 3 attempts") as info:
            provider.token()
    assert_no_leak(info.value, caplog.text, SECRET)
    assert "attempt 2 of 3 failed (HTTP 503)" in caplog.text


OAUTH_CASES = [
    ("invalid_client", 401, ["ApplicationUri", "secret", "IsEnabled", "Confidential"]),
    ("unauthorized_client", 400, ["SystemUserAllowed", "SystemUser"]),
    ("invalid_scope", 400, ["'read'", "Scope"]),
    ("unsupported_grant_type", 400, ["client_credentials"]),
    ("invalid_request", 400, ["malformed"]),
]


@pytest.mark.parametrize(("error", "status", "hints"), OAUTH_CASES)
def test_oauth_errors_explain_what_to_check(
    tmp_path: Path,
    session: requests.Session,
    caplog: pytest.LogCaptureFixture,
    error: str,
    status: int,
    hints: list[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    refusal = json_reply({"error": error, "error_description": "the server's own words"}, status=status)
    with identity_server(FakeIdentity(token_replies=[refusal])) as server:
        provider = TokenProvider(settings_for(server.url, tmp_path), session)
        with pytest.raises(ErpNetAuthError) as info:
            provider.token()
    assert (info.value.error, info.value.status) == (error, status)
    message = str(info.value)
    assert "the server's own words" in message and CLIENT_ID in message
    for hint in hints:
        assert hint in message
    assert_no_leak(info.value, caplog.text, SECRET)


def test_a_server_echoing_the_secret_does_not_leak_it(tmp_path: Path, session: requests.Session) -> None:
    refusal = json_reply({"error": "invalid_client", "error_description": f"bad secret {SECRET}"}, status=401)
    with (
        identity_server(FakeIdentity(token_replies=[refusal])) as server,
        pytest.raises(ErpNetAuthError) as info,
    ):
        TokenProvider(settings_for(server.url, tmp_path), session).token()
    assert SECRET not in str(info.value)


def test_html_identity_server_is_called_out(
    tmp_path: Path, session: requests.Session, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with StubServer(lambda request: html_reply()) as server:
        provider = TokenProvider(settings_for(server.url, tmp_path), session)
        with pytest.raises(ErpNetTransportError, match=r"not what an ERP\.net identity server sends") as info:
            provider.token()
    assert "identity_url" in str(info.value)
    assert_no_leak(info.value, caplog.text, SECRET)


def test_html_token_endpoint_is_called_out(tmp_path: Path, session: requests.Session) -> None:
    identity = FakeIdentity(token_replies=[html_reply()])
    with (
        identity_server(identity) as server,
        pytest.raises(ErpNetTransportError, match=r"not what an ERP\.net identity server sends"),
    ):
        TokenProvider(settings_for(server.url, tmp_path), session).token()


def test_unreachable_identity_server(
    tmp_path: Path, session: requests.Session, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with refused_port_url() as url:
        provider = TokenProvider(settings_for(url, tmp_path, max_attempts=2), session)
        with pytest.raises(ErpNetTransportError) as info:
            provider.token()
    message = str(info.value)
    assert url.removeprefix("http://") in message
    assert "ConnectionRefusedError" in message and "2 attempts" in message
    assert "instance_url" in message
    assert provider.retries == 1
    assert_no_leak(info.value, caplog.text, SECRET)


def test_identity_read_timeout(
    tmp_path: Path, session: requests.Session, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with SilentServer() as server:
        provider = TokenProvider(
            settings_for(server.url, tmp_path, read_timeout=0.2, max_attempts=2), session
        )
        with pytest.raises(ErpNetTransportError, match=r"read timed out after 0.2 s \(2 attempts\)") as info:
            provider.token()
    assert "read_timeout" in str(info.value)
    assert_no_leak(info.value, caplog.text, SECRET)


WRONG_SECRET = "wrong-secret-x1"
# (app suffix, secret, scope, OAuth error, hint the message must contain)
SANDBOX_REFUSALS = {
    "wrong-secret": ("first", WRONG_SECRET, None, "invalid_client", "ApplicationUri"),
    "unknown-app": ("nobody", DEFAULT_SECRET, None, "invalid_client", "ApplicationUri"),
    "disabled": ("disabled", DEFAULT_SECRET, None, "invalid_client", "IsEnabled"),
    "public": ("public", DEFAULT_SECRET, None, "invalid_client", "ClientType is Confidential"),
    "nosystemuser": ("nosystemuser", DEFAULT_SECRET, None, "unauthorized_client", "SystemUserAllowed"),
    "scope-not-allowed": ("readonly", DEFAULT_SECRET, "read update", "invalid_scope", "'read update'"),
}


@pytest.mark.parametrize(
    ("app", "secret", "scope", "error", "hint"), SANDBOX_REFUSALS.values(), ids=SANDBOX_REFUSALS.keys()
)
def test_sandbox_refusals_raise_auth_errors_with_the_right_hint(
    shared_sandbox: Sandbox,
    tmp_path: Path,
    session: requests.Session,
    caplog: pytest.LogCaptureFixture,
    app: str,
    secret: str,
    scope: str | None,
    error: str,
    hint: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    client_id = f"my.trusted.app/{app}"
    settings = sandbox_settings(
        shared_sandbox, tmp_path, client_id=client_id, client_secret=secret, scope=scope
    )
    with pytest.raises(ErpNetAuthError) as info:
        TokenProvider(settings, session).token()
    assert info.value.error == error
    assert hint in str(info.value)
    assert client_id in str(info.value)
    assert_no_leak(info.value, caplog.text, secret, DEFAULT_SECRET)
    assert shared_sandbox.stats()["tokens_issued"] == 0


def test_sandbox_issues_a_token_for_the_default_app(
    erpnet_sandbox: Sandbox, tmp_path: Path, session: requests.Session
) -> None:
    provider = TokenProvider(sandbox_settings(erpnet_sandbox, tmp_path, scope="read"), session)
    token = provider.token()
    assert token.count(".") == 2  # a JWT
    assert provider.token_endpoint == f"{erpnet_sandbox.identity_url}/connect/token"
    assert erpnet_sandbox.stats()["tokens_issued"] == 1
