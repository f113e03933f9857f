"""URL helpers that decide where a credential may go and how a URL may appear in a message.

The client secret may go only to the configured identity server's origin and the access token only
to the configured Domain API's origin. A :class:`Destination` checks a URL the way it will be
sent: the origin as urllib3 (which opens the connection) reads it must equal the origin as the
standard library reads it, and both must be the configured one; backslashes, control characters,
whitespace and user information are refused outright, since parsers disagree about them (a
backslash before ``@`` sends urllib3 to one host while ``urlsplit`` sees another). The pager's
check of ``@odata.nextLink`` and the guards on every request that carries a credential all use it,
so they cannot disagree about what "another origin" is.
"""

from __future__ import annotations

import ipaddress
import re
from typing import NamedTuple
from urllib.parse import urlsplit, urlunsplit

from urllib3.util import parse_url
from urllib3.util.url import LocationParseError

from .errors import ErpNetConfigError
from .redact import scrub

MAX_URL_QUERY = 300
_DEFAULT_PORTS = {"http": 80, "https": 443}
_UNSAFE = re.compile(r"[\x00-\x20\x7f]")


class Origin(NamedTuple):
    """Scheme, host and port: only URLs of the API's origin receive the access token."""

    scheme: str
    host: str
    port: int | None

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host}" + (f":{self.port}" if self.port else "")

    @property
    def loopback(self) -> bool:
        """Whether the host is this machine (plain http to it is not sniffable)."""
        if self.host == "localhost" or self.host.endswith(".localhost"):
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


def origin(url: str) -> Origin:
    """The origin of ``url`` as ``urlsplit`` reads it, the scheme's default port filled in."""
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unbalanced "[" in the host
        raise ErpNetConfigError(f"URL {safe_url(url)!r} cannot be parsed.") from None
    try:
        port = parts.port
    except ValueError:
        raise ErpNetConfigError(f"URL {safe_url(url)!r} has an invalid port.") from None
    return _origin(parts.scheme, parts.hostname, port)


def sent_origin(url: str) -> Origin:
    """The origin of ``url`` as urllib3 reads it: the host a request to ``url`` connects to."""
    try:
        parts = parse_url(url)
    except LocationParseError:
        raise ErpNetConfigError(f"URL {safe_url(url)!r} cannot be parsed.") from None
    return _origin(parts.scheme or "", parts.host, parts.port)


def _origin(scheme: str, host: str | None, port: int | None) -> Origin:
    scheme = scheme.lower()
    name = (host or "").strip("[]").lower().rstrip(".")
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            raise ErpNetConfigError(f"Host name {name!r} is not a valid internationalised name.") from None
    return Origin(scheme, name, port or _DEFAULT_PORTS.get(scheme))


class Refusal(NamedTuple):
    """Why a URL must not receive a credential, the setting that decides it and what to do."""

    reason: str
    setting: str
    fix: str


class Destination:
    """Where one credential may go: the origin of ``url`` (the ``setting`` that configures it).

    ``carries`` says what travels there ("the access token"), ``service`` names the server ("Domain
    API"). Plain http to a host other than this machine is refused unless ``allow_plain_http``.
    """

    def __init__(self, url: str, *, setting: str, service: str, carries: str, allow_plain_http: bool) -> None:
        self.origin = origin(url)
        self.setting = setting
        self.service = service
        self.carries = carries
        self.allow_plain_http = allow_plain_http

    def refusal(self, url: str) -> Refusal | None:
        """Why ``url`` must not receive the credential, or None when it may."""
        moved = f"If the {self.service} really lives elsewhere, set {self.setting} to it."
        reason = _unsafe_reason(url)
        if reason is not None:
            return Refusal(reason, self.setting, moved)
        seen, sent = origin(url), sent_origin(url)
        if seen != sent:
            return Refusal(f"URL parsers disagree about its host{_readings(url)}", self.setting, moved)
        if sent != self.origin:
            return Refusal(
                f"{sent} is not the configured {self.service} origin {self.origin}", self.setting, moved
            )
        if sent.scheme == "http" and not sent.loopback and not self.allow_plain_http:
            return Refusal(
                f"it is plain http to {sent.host}, where anyone on the network can read it",
                "allow_plain_http",
                f"Use https in {self.setting} (or instance_url); only on a network you trust, set "
                "allow_plain_http to true.",
            )
        return None

    def check(self, url: str) -> str:
        """``url`` if the credential may go there; otherwise raise ``ErpNetConfigError`` saying why."""
        refusal = self.refusal(url)
        if refusal is None:
            return url
        raise ErpNetConfigError(
            f"Refusing to send {self.carries} to {safe_url(url)}: {refusal.reason}. {refusal.fix}",
            setting=refusal.setting,
        )


def _unsafe_reason(url: str) -> str | None:
    """Spellings that parsers read differently, refused before any parser gets a say."""
    if "\\" in url:
        return "it contains a backslash, which URL parsers read differently" + _readings(url)
    if _UNSAFE.search(url):
        return "it contains a control character or whitespace"
    origin(url)  # an invalid port raises, saying so
    try:
        userinfo = "@" in urlsplit(url).netloc or parse_url(url).auth is not None
    except (LocationParseError, ValueError):
        return "it cannot be parsed as a URL"
    if userinfo:
        return "it carries credentials (user@host)"
    return None


def _readings(url: str) -> str:
    """ " (urllib3 connects to A, the standard library reads B)" when the two disagree."""
    try:
        seen, sent = origin(url), sent_origin(url)
    except ErpNetConfigError:
        return ""
    return "" if seen == sent else f" (urllib3 would connect to {sent}, the standard library reads {seen})"


def safe_url(url: str) -> str:
    """A URL fit for messages and logs: no credentials, no control characters, a short query."""
    try:
        parts = urlsplit(_UNSAFE.sub("", url).replace("\\", "%5C"))
    except ValueError:
        return "(a URL that cannot be parsed)"
    netloc = parts.netloc.rpartition("@")[2]
    query = parts.query
    if len(query) > MAX_URL_QUERY:
        query = f"...({len(query)} chars)"
    return scrub(urlunsplit((parts.scheme, netloc, parts.path, query, "")))


def host_of(url: str) -> str:
    """``host[:port]`` of a URL, without credentials."""
    try:
        return scrub(urlsplit(_UNSAFE.sub("", url)).netloc.rpartition("@")[2])
    except ValueError:
        return "(a host that cannot be parsed)"
