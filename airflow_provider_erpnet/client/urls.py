"""URL helpers that decide where a bearer token may go and how a URL may appear in a message.

One definition of an origin serves both token guards (the pager's check of ``@odata.nextLink`` and
the transport's check of every URL it sends a token to), so they cannot disagree about what
"another origin" is.
"""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import urlsplit, urlunsplit

from .errors import ErpNetConfigError

MAX_URL_QUERY = 300
_DEFAULT_PORTS = {"http": 80, "https": 443}


class Origin(NamedTuple):
    """Scheme, host and port: only URLs of the API's origin receive the access token."""

    scheme: str
    host: str
    port: int | None

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


def origin(url: str) -> Origin:
    """The origin of ``url`` with the scheme's default port filled in (``https://h`` is port 443)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        raise ErpNetConfigError(f"URL {safe_url(url)!r} has an invalid port.") from None
    return Origin(scheme, (parts.hostname or "").lower(), port or _DEFAULT_PORTS.get(scheme))


def safe_url(url: str) -> str:
    """A URL fit for messages and logs: no credentials, no query longer than MAX_URL_QUERY chars."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    query = parts.query
    if len(query) > MAX_URL_QUERY:
        query = f"...({len(query)} chars)"
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def host_of(url: str) -> str:
    """``host[:port]`` of a URL, without credentials."""
    return urlsplit(url).netloc.rpartition("@")[2]
