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


# Defect 8 of issue 8: nothing found on disk is trusted.


def test_a_directory_writable_by_others_is_refused_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "tokens"
    directory.mkdir()
    directory.chmod(0o777)
    cache = FileTokenCache(directory)
    caplog.set_level(logging.DEBUG)
    with cache.locked(key()):
        assert cache.load(key()) is None
        cache.store(key(), token())
    assert not cache.usable
    assert list(directory.iterdir()) == []
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert (
        len(warnings) == 1 and "writable by others (mode 777)" in warnings[0] and "memory only" in warnings[0]
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can hand a directory to another user")
def test_a_directory_of_another_user_is_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    directory = tmp_path / "tokens"
    directory.mkdir(mode=0o700)
    os.chown(directory, 65534, 65534)
    cache = FileTokenCache(directory)
    cache.store(key(), token())
    assert not cache.usable and list(directory.iterdir()) == []
    assert "owned by another user" in caplog.text


def test_a_symlinked_directory_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "tokens").symlink_to(real)
    cache = FileTokenCache(tmp_path / "tokens")
    cache.store(key(), token())
    assert not cache.usable and list(real.iterdir()) == []


@pytest.mark.parametrize("kind", ["symlink to /dev/zero", "fifo", "huge", "deeply nested", "another owner"])
def test_untrusted_token_files_are_ignored_then_replaced(tmp_path: Path, kind: str) -> None:
    cache = FileTokenCache(tmp_path)
    path = cache.path(key())
    if kind == "symlink to /dev/zero":
        path.symlink_to("/dev/zero")
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "huge":
        with path.open("wb") as handle:
            handle.truncate(1 << 30)  # sparse: 1 GiB that takes no disk
    elif kind == "deeply nested":
        path.write_bytes(b"[" * 60_000)
    elif os.geteuid() == 0:
        path.write_text(json.dumps(token().__dict__))
        os.chown(path, 65534, 65534)
    else:
        pytest.skip("only root can hand a file to another user")
    started = time.monotonic()
    assert cache.load(key()) is None
    assert time.monotonic() - started < 5
    cache.store(key(), token())
    assert path.is_file() and not path.is_symlink()
    loaded = cache.load(key())
    assert loaded is not None and loaded.access_token == "tok-abc"
    assert cache.usable


def test_a_symlinked_lock_file_is_not_followed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    victim = tmp_path / "victim"
    cache = FileTokenCache(tmp_path / "tokens")
    cache.store(key(), token())
    (tmp_path / "tokens" / f"{key().digest}.lock").symlink_to(victim)
    with cache.locked(key()):
        pass
    assert not victim.exists()
    assert not cache.usable and "memory only" in caplog.text
