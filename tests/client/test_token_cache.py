"""The token file cache and the refresh margin, without a server."""

from __future__ import annotations

import json
import logging
import os
import stat
import threading
import time
from pathlib import Path

import pytest

from airflow_provider_erpnet.client.token_cache import (
    CachedToken,
    FileTokenCache,
    TokenKey,
    default_cache_dir,
)

SECRET = "cache-test-secret-Zq9"
ENDPOINT = "http://127.0.0.1:1/id/connect/token"


def key(secret: str = SECRET, scope: str | None = "read") -> TokenKey:
    return TokenKey.build(ENDPOINT, "my.trusted.app/first", scope, secret)


def token(
    access_token: str = "tok-abc", lifetime: float = 3600, expires_in: float | None = None
) -> CachedToken:
    left = lifetime if expires_in is None else expires_in
    return CachedToken(access_token, time.time() + left, lifetime, "read", ENDPOINT, "my.trusted.app/first")


def test_store_then_load_round_trips(tmp_path: Path) -> None:
    cache = FileTokenCache(tmp_path / "tokens")
    cache.store(key(), token())
    loaded = cache.load(key())
    assert loaded is not None
    assert loaded.access_token == "tok-abc"
    assert loaded.is_fresh()


def test_file_and_directory_modes_and_no_secret_anywhere(tmp_path: Path) -> None:
    directory = tmp_path / "tokens"
    cache = FileTokenCache(directory)
    cache.store(key(), token())
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    files = sorted(p for p in directory.iterdir() if p.suffix == ".json")
    assert [p.name for p in files] == [f"{key().digest}.json"]
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    content = files[0].read_text()
    assert SECRET not in content
    assert key().secret_sha256 not in content
    assert set(json.loads(content)) == {
        "access_token",
        "expires_at",
        "lifetime",
        "scope",
        "token_endpoint",
        "client_id",
    }
    assert not [p for p in directory.iterdir() if p.name.startswith(".tmp-")]


def test_key_changes_with_the_secret_and_scope_and_hides_the_secret() -> None:
    assert key().digest != key(secret="another-secret").digest
    assert key().digest != key(scope=None).digest
    assert SECRET not in repr(key())
    assert key().secret_sha256 not in repr(key())


def test_token_repr_hides_the_access_token() -> None:
    assert "tok-abc" not in repr(token())


@pytest.mark.parametrize(
    "content", [b"", b"{not json", b"[]", b'{"access_token": ""}', b'{"access_token": 5}']
)
def test_corrupt_file_is_ignored_then_overwritten(tmp_path: Path, content: bytes) -> None:
    cache = FileTokenCache(tmp_path)
    cache.path(key()).write_bytes(content)
    assert cache.load(key()) is None
    cache.store(key(), token())
    loaded = cache.load(key())
    assert loaded is not None and loaded.access_token == "tok-abc"


def test_a_file_of_another_client_is_not_used(tmp_path: Path) -> None:
    cache = FileTokenCache(tmp_path)
    other = CachedToken("tok-other", time.time() + 3600, 3600, None, ENDPOINT, "someone.else")
    cache.path(key()).write_text(json.dumps(other.__dict__))
    assert cache.load(key()) is None


def test_unusable_directory_warns_once_and_falls_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    cache = FileTokenCache(blocker / "tokens")
    caplog.set_level(logging.DEBUG)
    with cache.locked(key()):
        assert cache.load(key()) is None
        cache.store(key(), token())
    assert not cache.usable
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "not usable" in warnings[0].getMessage() and "memory only" in warnings[0].getMessage()
    assert SECRET not in caplog.text and "tok-abc" not in caplog.text


def test_lock_serialises_holders(tmp_path: Path) -> None:
    cache = FileTokenCache(tmp_path)
    inside = 0
    overlaps: list[int] = []
    guard = threading.Lock()

    def hold() -> None:
        nonlocal inside
        # flock locks belong to open file descriptions, so threads with their own fd exclude each other.
        with cache.locked(key()):
            with guard:
                inside += 1
                overlaps.append(inside)
            time.sleep(0.02)
            with guard:
                inside -= 1

    threads = [threading.Thread(target=hold) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlaps == [1] * 8


@pytest.mark.parametrize(
    ("lifetime", "left", "fresh"),
    [
        (3600, 361, True),  # 10 % of an hour is 360 s
        (3600, 359, False),
        (300, 61, True),  # at least 60 s
        (300, 59, False),
        (4, 2.1, True),  # never more than half the lifetime, so short tokens still get used
        (4, 1.9, False),
    ],
)
def test_refresh_margin(lifetime: float, left: float, fresh: bool) -> None:
    now = 1_000_000.0
    cached = CachedToken("t", now + left, lifetime, None, ENDPOINT, "c")
    assert cached.is_fresh(now) is fresh


def test_default_directory_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "airflow-provider-erpnet" / "tokens"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert (
        default_cache_dir() == Path(os.path.expanduser("~")) / ".cache" / "airflow-provider-erpnet" / "tokens"
    )
