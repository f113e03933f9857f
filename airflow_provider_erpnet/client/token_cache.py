"""Where access tokens are kept between requests, tasks and processes.

Every ERP.net token costs a licence slot once used, so tasks running in separate processes on one
machine share a token through a small file per (token endpoint, client, scope, secret) key. A
lock file serialises the "read the file, else request a token" step, so processes starting
together request exactly one token. The file cache is an optimisation: any failure of it is
logged and the caller carries on with its in-memory token.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import secrets
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TypeVar

try:
    import fcntl
except ImportError:  # Windows: no flock; the file cache turns itself off.
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

MIN_REFRESH_MARGIN = 60.0
REFRESH_FRACTION = 0.1
LOCK_TIMEOUT = 120.0
_LOCK_POLL = 0.05
_FORMAT = "airflow-provider-erpnet token cache v1"
# A token file is a few KB; anything bigger was not written by us.
MAX_FILE_BYTES = 64 * 1024
_SAFE_OPEN = os.O_NOFOLLOW | os.O_CLOEXEC
T = TypeVar("T")


@dataclass(frozen=True)
class CachedToken:
    """An access token and when it stops being usable (``expires_at`` is epoch seconds)."""

    access_token: str = field(repr=False)
    expires_at: float
    lifetime: float
    scope: str | None
    token_endpoint: str
    client_id: str

    @property
    def refresh_margin(self) -> float:
        """Refresh when less than max(60 s, 10 % of the lifetime) remains.

        Capped at half the lifetime so a short-lived token is still used for a while instead of
        being replaced on every call.
        """
        return min(max(MIN_REFRESH_MARGIN, REFRESH_FRACTION * self.lifetime), self.lifetime / 2)

    def is_fresh(self, now: float | None = None) -> bool:
        """Whether the token has more than the refresh margin left."""
        remaining = self.expires_at - (time.time() if now is None else now)
        return remaining > self.refresh_margin


@dataclass(frozen=True)
class TokenKey:
    """Which tokens are interchangeable. The secret enters only as a hash, so a new secret
    never reuses a token issued for the old one."""

    token_endpoint: str
    client_id: str
    scope: str | None
    secret_sha256: str = field(repr=False)

    @classmethod
    def build(cls, token_endpoint: str, client_id: str, scope: str | None, secret: str) -> TokenKey:
        return cls(token_endpoint, client_id, scope, hashlib.sha256(secret.encode("utf-8")).hexdigest())

    @property
    def digest(self) -> str:
        """Stable name for this key's cache file; reveals nothing about its parts."""
        parts = (_FORMAT, self.token_endpoint, self.client_id, self.scope or "", self.secret_sha256)
        return hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME`` (or ``~/.cache``) ``/airflow-provider-erpnet/tokens``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "airflow-provider-erpnet" / "tokens"


class FileTokenCache:
    """One JSON file per key (mode 0600) in a directory of mode 0700, replaced atomically.

    Nothing on disk is trusted: a directory not owned by this user, or writable by others, is not
    used at all (one warning, then memory only), since another local user could read or plant
    tokens there; files are opened relative to the checked directory, never through a symbolic
    link, and read only if they are small regular files owned by this user.
    """

    def __init__(
        self, directory: str | os.PathLike[str] | None = None, *, lock_timeout: float = LOCK_TIMEOUT
    ):
        self.directory = Path(directory) if directory else default_cache_dir()
        self.lock_timeout = lock_timeout
        self._failed = fcntl is None
        if fcntl is None:
            log.warning("Token file cache is unavailable on this platform (no fcntl); using memory only.")

    @property
    def usable(self) -> bool:
        """False after the cache failed once: the rest of the run uses memory only."""
        return not self._failed

    def path(self, key: TokenKey) -> Path:
        return self.directory / f"{key.digest}.json"

    @contextlib.contextmanager
    def locked(self, key: TokenKey) -> Iterator[None]:
        """Hold this key's lock file; if it cannot be taken, carry on unlocked (with a warning)."""
        fd = self._open_lock(key)
        try:
            if fd is not None:
                self._acquire(fd)
            yield
        finally:
            if fd is not None:
                os.close(fd)  # closing releases the flock

    def load(self, key: TokenKey) -> CachedToken | None:
        """The cached token for ``key``, or None if missing, unreadable, untrusted or not for this key."""
        name = self.path(key).name
        raw = self._in_directory("read", lambda directory: _read_private_file(directory, name))
        if raw is None:
            return None
        try:
            token = _parse(json.loads(raw))
        except (ValueError, TypeError, KeyError, RecursionError) as exc:
            log.info("Ignoring token cache file %s (%s); it will be replaced.", name, type(exc).__name__)
            return None
        if (token.token_endpoint, token.client_id) != (key.token_endpoint, key.client_id):
            log.info("Ignoring token cache file %s: it belongs to another client.", name)
            return None
        return token

    def store(self, key: TokenKey, token: CachedToken) -> None:
        """Write ``token`` for ``key`` atomically (a new 0600 file in the same directory, then rename)."""
        data = json.dumps(asdict(token)).encode("utf-8")
        self._in_directory("write", lambda directory: _replace_file(directory, self.path(key).name, data))

    def _open_lock(self, key: TokenKey) -> int | None:
        name = f"{key.digest}.lock"
        return self._in_directory(
            "lock",
            lambda directory: os.open(name, os.O_RDWR | os.O_CREAT | _SAFE_OPEN, 0o600, dir_fd=directory),
        )

    def _in_directory(self, action: str, operation: Callable[[int], T]) -> T | None:
        """Run ``operation`` with a descriptor of the checked cache directory; None once unusable."""
        if self._failed:
            return None
        try:
            directory = self._open_directory()
        except OSError as exc:
            self._give_up(action, exc)
            return None
        if directory is None:
            return None
        try:
            return operation(directory)
        except OSError as exc:
            self._give_up(action, exc)
            return None
        finally:
            os.close(directory)

    def _open_directory(self) -> int | None:
        """The directory, created 0700 if missing, opened without following a link, then checked."""
        if not os.path.lexists(self.directory):
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(self.directory, 0o700)
        fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | _SAFE_OPEN)
        problem = _untrusted_directory(os.fstat(fd))
        if problem is None:
            return fd
        os.close(fd)
        self._failed = True
        log.warning(
            "Token cache directory %s is %s; keeping tokens in memory only, since another local user could "
            "read or replace them there. Use a directory only you can write (chmod 700 it, or set "
            "disk_cache_dir), or turn disk_cache off.",
            self.directory,
            problem,
        )
        return None

    def _acquire(self, fd: int) -> None:
        deadline = time.monotonic() + self.lock_timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    log.warning(
                        "Token cache lock in %s still held after %.0f s; requesting a token without it.",
                        self.directory,
                        self.lock_timeout,
                    )
                    return
                time.sleep(_LOCK_POLL)
            except OSError as exc:
                self._give_up("lock", exc)
                return

    def _give_up(self, action: str, exc: OSError) -> None:
        self._failed = True
        log.warning(
            "Token file cache in %s is not usable (%s failed: %s: %s); keeping tokens in memory only. "
            "Set disk_cache_dir to a writable directory, or turn disk_cache off.",
            self.directory,
            action,
            type(exc).__name__,
            exc.strerror or "error",
        )


def _untrusted_directory(status: os.stat_result) -> str | None:
    """Why a cache directory must not be used, or None."""
    if not stat.S_ISDIR(status.st_mode):
        return "not a directory"
    if status.st_uid != os.geteuid():
        return f"owned by another user (uid {status.st_uid})"
    if status.st_mode & 0o022:
        return f"writable by others (mode {stat.S_IMODE(status.st_mode):o})"
    return None


def _read_private_file(directory: int, name: str) -> bytes | None:
    """The file's bytes if it is a small regular file of ours; None otherwise (it gets replaced).

    ``O_NONBLOCK`` keeps a FIFO from blocking the open; ``O_NOFOLLOW`` refuses a symbolic link.
    """
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | _SAFE_OPEN, dir_fd=directory)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        log.info("Ignoring token cache file %s: it is a symbolic link; it will be replaced.", name)
        return None
    try:
        status = os.fstat(fd)
        if (
            not stat.S_ISREG(status.st_mode)
            or status.st_uid != os.geteuid()
            or status.st_size > MAX_FILE_BYTES
        ):
            log.info(
                "Ignoring token cache file %s: not a small regular file of ours; it will be replaced.", name
            )
            return None
        return os.read(fd, MAX_FILE_BYTES + 1)[:MAX_FILE_BYTES]
    finally:
        os.close(fd)


def _replace_file(directory: int, name: str, data: bytes) -> None:
    tmp = f".tmp-{secrets.token_hex(8)}.json"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _SAFE_OPEN, 0o600, dir_fd=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, name, src_dir_fd=directory, dst_dir_fd=directory)
        tmp = ""
    finally:
        if tmp:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=directory)


def _parse(data: object) -> CachedToken:
    if not isinstance(data, dict):
        raise TypeError("not an object")
    token = CachedToken(
        access_token=data["access_token"],
        expires_at=float(data["expires_at"]),
        lifetime=float(data["lifetime"]),
        scope=data.get("scope"),
        token_endpoint=data["token_endpoint"],
        client_id=data["client_id"],
    )
    if not isinstance(token.access_token, str) or not token.access_token or token.lifetime <= 0:
        raise ValueError("no usable access token")
    return token
