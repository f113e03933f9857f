"""Authenticated GETs against the ERP.net Domain API, with retries and readable errors.

One ``requests.Session`` per transport; every request carries the connect/read timeouts, streams
its body and reads it completely inside the retry policy (bounded in size and time, see
``client.body``), so a connection dropped mid-body is retried like a dropped connection. Tokens
travel only in the Authorization header and only to the configured API origin, checked on each
request's URL as it is sent; redirects are followed only within that origin.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from . import jsonutil, redact
from .auth import TokenProvider
from .body import BodyError
from .clock import SYSTEM_CLOCK, Clock
from .errors import ErpNetApiError, ErpNetAuthError, ErpNetConfigError, ErpNetTransportError
from .querystring import with_query
from .retry import (
    RetriesExhausted,
    RetryableStatus,
    call_with_retries,
    fetch,
    network_error,
    retry_after_seconds,
)
from .sessions import bounded_session
from .settings import ErpNetSettings
from .urls import Destination, host_of, safe_url

log = logging.getLogger(__name__)

MAX_SERVER_TEXT = 1000
MAX_REDIRECTS = 5

_STATUS_HINTS = {
    400: "ERP.net rejected the query: check $filter/$select/$expand/$orderby syntax (ERP.net filters "
    "support eq, ge, le, and, in and contains/startswith/endswith, not 'or').",
    403: "The token lacks the scope for this request: check the trusted application's Scope and "
    "scope (reading needs 'read').",
    404: "Not found: check the entity set name against $metadata (ERP.net renames entity sets "
    "between versions) and, for a single entity, that the id exists.",
    500: "ERP.net raised a domain error; its message above says which.",
}

Decode = Callable[[requests.Response, str], Any]


@dataclass(frozen=True)
class _Answer:
    """A fully read answer and the token it was sent with (kept out of ``repr``)."""

    response: requests.Response
    token: str = field(repr=False)
    value: Any


class _BearerAuth(requests.auth.AuthBase):
    """Bearer token as a requests auth object, so a ~/.netrc entry for the host cannot replace it.

    It is attached to the prepared request, whose URL is the one urllib3 sends: the destination
    check here sees exactly where the token would go.
    """

    def __init__(self, token: str, destination: Destination) -> None:
        self._token = token
        self._destination = destination

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        self._destination.check(str(request.url))
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "_BearerAuth(***)"


class Transport:
    """Sends authenticated GETs to the Domain API; see the module docstring for the guarantees."""

    def __init__(
        self,
        settings: ErpNetSettings,
        *,
        session: requests.Session | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        """``session``: pass one to share its connection pool; it is used as is, never changed
        (timeouts, TLS verification and headers travel with each request) and never closed; make
        it with ``sessions.bounded_session()`` so that ``response_timeout`` bounds response heads too.
        ``clock``: token expiry, ``Retry-After`` dates and the waits between attempts."""
        self.settings = settings
        self._owns_session = session is None
        self.session = session if session is not None else bounded_session()
        self._clock = clock
        self.auth = TokenProvider(settings, self.session, clock=clock)
        self.retries = 0
        self._api = Destination(
            settings.resolved_api_url,
            setting="api_url",
            service="Domain API",
            carries="the access token",
            allow_plain_http=settings.allow_plain_http,
        )

    def get(
        self,
        url: str,
        params: Mapping[str, str] | None = None,
        *,
        entity_set: str | None = None,
        accept: str = "application/json",
    ) -> requests.Response:
        """GET ``url`` (absolute, or relative to the API root) and return the fully read answer.

        Retries connection errors, cut-off bodies and 429/502/503/504 (honouring Retry-After),
        refreshes the token once on 401; any other non-2xx raises :class:`ErpNetApiError`.
        """
        return self._request(url, params, entity_set, accept, None).response

    def get_json(
        self,
        url: str,
        params: Mapping[str, str] | None = None,
        *,
        entity_set: str | None = None,
        decode: Callable[[bytes], Any] | None = None,
    ) -> Any:
        """Like :meth:`get`, decoded; non-integer numbers become ``decimal.Decimal``.

        ``decode`` replaces the generic JSON decoding (e.g. a typed page decoder); it must raise
        ``ValueError`` only for a body that is not valid JSON (a cut-off body never reaches it).
        """
        return self._request(url, params, entity_set, "application/json", partial(_decode_json, decode)).value

    def close(self) -> None:
        """Release pooled connections (only of a session this transport created)."""
        if self._owns_session:
            self.session.close()

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _request(
        self,
        url: str,
        params: Mapping[str, str] | None,
        entity_set: str | None,
        accept: str,
        decode: Decode | None,
    ) -> _Answer:
        full_url = self._resolve(url, params)
        target = f"GET {entity_set or urlsplit(full_url).path}"
        started = time.monotonic()
        answer = self._send_with_retries(full_url, accept, decode, target, entity_set)
        if answer.response.status_code == 401:
            log.info("%s: 401 from the API; fetching a new token and trying once more.", target)
            self.auth.invalidate(answer.token)
            answer = self._send_with_retries(full_url, accept, decode, target, entity_set)
            if answer.response.status_code == 401:
                raise self._unauthorized(entity_set)
        response = answer.response
        if not response.ok:
            raise _api_error(response, entity_set, full_url)
        if "html" not in accept and _is_html(response):
            raise _not_domain_api(full_url, response.status_code, response.headers.get("Content-Type"))
        log.debug(
            "%s: %d, %d bytes in %.2f s",
            target,
            response.status_code,
            len(response.content),
            time.monotonic() - started,
        )
        return answer

    def _send_with_retries(
        self, url: str, accept: str, decode: Decode | None, target: str, entity_set: str | None
    ) -> _Answer:
        def attempt() -> _Answer:
            token = self.auth.token()
            auth = _BearerAuth(token, self._api)
            where = url
            for _ in range(MAX_REDIRECTS + 1):
                response = fetch(self.session, self.settings, "GET", where, auth=auth, accept=accept)
                if not response.is_redirect:
                    value = decode(response, where) if decode is not None and response.ok else None
                    return _Answer(response, token, value)
                where = self._redirect_target(response, where, target)
            raise ErpNetTransportError(
                f"The ERP.net Domain API redirected {target} more than {MAX_REDIRECTS} times (a loop?); "
                "check api_url: it should name the OData service root itself.",
                url=safe_url(url),
                setting="api_url",
            )

        try:
            return call_with_retries(
                self.settings, attempt, target=target, on_retry=self._count_retry, clock=self._clock
            )
        except RetriesExhausted as exc:
            if isinstance(exc.last, RetryableStatus):
                raise _api_error(
                    exc.last.response, entity_set, url, attempts=exc.attempts, now=self._clock.time()
                ) from None
            raise network_error(exc, url, self.settings, service="Domain API", setting="api_url") from None
        except (requests.RequestException, BodyError) as exc:
            raise network_error(exc, url, self.settings, service="Domain API", setting="api_url") from None

    def _redirect_target(self, response: requests.Response, url: str, target: str) -> str:
        """Where a redirect within the API's origin leads; one to anywhere else is an error."""
        location = urljoin(url, response.headers["Location"])
        refusal = self._api.refusal(location)
        if refusal is not None:
            raise ErpNetTransportError(
                f"The ERP.net Domain API answered {target} with {response.status_code}, a redirect to "
                f"{safe_url(location)}, but {refusal.reason}. Redirects are followed only within "
                f"api_url's origin, since the data would come from a server you did not configure. "
                f"{refusal.fix}",
                url=safe_url(url),
                setting=refusal.setting,
            )
        log.debug("%s: %d redirect within the API origin", target, response.status_code)
        return location

    def _count_retry(self) -> None:
        self.retries += 1

    def _resolve(self, url: str, params: Mapping[str, str] | None) -> str:
        """Absolute URL with the query applied (RFC 3986: a space is %20, never +); a URL without
        ``params``, such as a next link, is sent as the server wrote it. Refuses any origin but the
        API's (token leak)."""
        joined = self._api.check(urljoin(self.settings.resolved_api_url, url))
        for name, value in (params or {}).items():
            _check_text(name, value)
        try:
            return str(requests.Request("GET", with_query(joined, params)).prepare().url)
        except requests.RequestException:
            # requests' own message repeats the whole URL, credentials included.
            raise ErpNetConfigError(f"{safe_url(joined)} is not a valid request URL.") from None

    def _unauthorized(self, entity_set: str | None) -> ErpNetAuthError:
        what = f" for {entity_set}" if entity_set else ""
        return ErpNetAuthError(
            f"The ERP.net Domain API at {host_of(self.settings.resolved_api_url)} answered 401{what} even "
            f"with a freshly issued token for client {self.settings.client_id!r}. Check that identity_url "
            "and api_url belong to the same ERP.net instance and that the trusted application's "
            "SystemUser is an active user.",
            error="invalid_token",
            status=401,
        )


def _is_html(response: requests.Response) -> bool:
    return "html" in response.headers.get("Content-Type", "").lower()


def _check_text(name: str, value: str) -> None:
    """A query option must be Unicode text; a lone surrogate (from bytes decoded with
    ``errors="surrogateescape"``, or a bad escape) cannot be encoded as UTF-8 for the URL."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ErpNetConfigError(
            f"The {name} option cannot be sent: it holds a lone surrogate "
            f"(U+{ord(value[error.start]):04X} at position {error.start}), which is not Unicode text; it "
            "usually comes from bytes decoded with errors='surrogateescape'. Decode them with their real "
            "encoding before building the query."
        ) from None


def _decode_json(decode: Callable[[bytes], Any] | None, response: requests.Response, url: str) -> Any:
    headers = response.headers
    return decode_json(
        response.content, url, response.status_code, headers.get("Content-Type"), decode=decode
    )


def decode_json(
    content: bytes,
    url: str,
    status: int = 200,
    content_type: str | None = None,
    *,
    decode: Callable[[bytes], Any] | None = None,
) -> Any:
    """A JSON body from the Domain API at ``url``; anything else raises ``ErpNetTransportError``.

    Non-integer numbers become ``decimal.Decimal``; ``decode`` (a typed page decoder) replaces the
    generic decoding and must raise ``ValueError`` only for a body that is not valid JSON.
    """
    try:
        return (decode or jsonutil.loads)(content)
    except (jsonutil.TooDeep, RecursionError):
        raise ErpNetTransportError(
            f"{safe_url(url)} answered JSON nested too deeply to decode (hundreds of levels), which no "
            "ERP.net answer needs; refusing it. Check the host in instance_url and api_url.",
            url=safe_url(url),
            setting="api_url",
        ) from None
    except ValueError:
        raise _not_domain_api(url, status, content_type) from None


def _not_domain_api(url: str, status: int, content_type: str | None) -> ErpNetTransportError:
    said = redact.server_text(content_type, 80) or "no content type"
    return ErpNetTransportError(
        f"{safe_url(url)} answered {status} with {said} instead of OData JSON: it "
        "does not look like the ERP.net Domain API (a login page or a proxy?). Check the host in "
        "instance_url and api_url: the OData service root is usually https://<instance>/api/domain/odata/.",
        url=safe_url(url),
        setting="api_url",
    )


def _api_error(
    response: requests.Response,
    entity_set: str | None,
    url: str,
    *,
    attempts: int | None = None,
    now: float | None = None,
) -> ErpNetApiError:
    """Map a non-2xx answer to ErpNetApiError, reading either of ERP.net's error envelopes."""
    status = response.status_code
    code, server_message, error_type = error_fields(response.content)
    if server_message is None and _is_html(response):
        server_message = "an HTML page instead of an OData error (check the host and api_url)"
    said = server_message or "no error message"
    details = ", ".join(
        part for part in (f"code {code}" if code else "", f"type {error_type}" if error_type else "") if part
    )
    if details:
        said = f"{said} ({details})"
    subject = entity_set or "the request"
    if attempts is not None:
        hint = f"Gave up after {attempts} attempts; the last answer was {status}. Try again later."
    else:
        hint = _STATUS_HINTS.get(status, "")
    return ErpNetApiError(
        f"ERP.net Domain API answered {status} for {subject} ({safe_url(url)}): {said}. {hint}".rstrip(),
        status=status,
        code=code,
        error_type=error_type,
        server_message=server_message,
        entity_set=entity_set,
        url=safe_url(url),
        retry_after=None
        if now is None
        else retry_after_seconds(response.headers.get("Retry-After"), now=now),
    )


def error_fields(content: bytes) -> tuple[str | None, str | None, str | None]:
    """(code, message, type) from ``{"error": {...}}`` or a top-level ``{"message", ...}`` body.

    Whatever the bytes, this returns: each field is server text made safe for a message
    (``redact.server_text``), or None.
    """
    try:
        body = jsonutil.loads(content)
    except ValueError:
        return None, None, None
    if not isinstance(body, dict):
        return None, None, None
    inner = body["error"] if isinstance(body.get("error"), dict) else body
    message = inner.get("message")
    if isinstance(message, dict):  # OData v3 style {"lang": ..., "value": ...}
        message = message.get("value")
    return _text(inner.get("code")), _text(message), _text(inner.get("type"))


def _text(value: object) -> str | None:
    return redact.server_text(value, MAX_SERVER_TEXT)
