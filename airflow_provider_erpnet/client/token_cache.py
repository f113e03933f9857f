"""Where access tokens are kept between requests, tasks and processes.

Every ERP.net token costs a licence slot once used, so tasks running in separate processes on one
machine share a token through a small file per (token endpoint, client, scope, secret) key. A
lock file serialises the "read the file, else request a token" step, so processes starting
together request exactly one token. The file cache is an optimisation: any failure of it is
logged and the caller carries on with its in-memory token.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

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
    """One JSON file per key (mode 0600) in a directory of mode 0700, replaced atomically."""

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
        """The cached token for ``key``, or None if missing, unreadable or not for this key."""
        if self._failed:
            return None
        path = self.path(key)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            self._give_up("read", exc)
            return None
        try:
            token = _parse(json.loads(raw))
        except (ValueError, TypeError, KeyError) as exc:
            log.info("Ignoring token cache file %s (%s); it will be replaced.", path.name, type(exc).__name__)
            return None
        if (token.token_endpoint, token.client_id) != (key.token_endpoint, key.client_id):
            log.info("Ignoring token cache file %s: it belongs to another client.", path.name)
            return None
        return token

    def store(self, key: TokenKey, token: CachedToken) -> None:
        """Write ``token`` for ``key`` atomically (temp file in the same directory, then rename)."""
        if self._failed:
            return
        tmp: str | None = None
        try:
            self._ensure_directory()
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".json")
            with os.fdopen(fd, "wb") as handle:
                handle.write(json.dumps(asdict(token)).encode("utf-8"))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path(key))
            tmp = None
        except OSError as exc:
            self._give_up("write", exc)
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)

    def _open_lock(self, key: TokenKey) -> int | None:
        if self._failed:
            return None
        try:
            self._ensure_directory()
            return os.open(self.directory / f"{key.digest}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            self._give_up("lock", exc)
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

    def _ensure_directory(self) -> None:
        if not self.directory.is_dir():
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(self.directory, 0o700)

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
