"""The one retry policy for every HTTP call to ERP.net, and what to say when it gives up.

Both the token endpoint and the Domain API use it, so throttling, dropped connections and cut-off
bodies are handled the same way everywhere. The policy is tenacity data (stop, wait, predicate),
not a loop: an attempt is a function that sends one request, reads the whole body and raises
:class:`RetryableStatus` or :class:`TruncatedBody` when another attempt may succeed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import TypeVar

import requests
import tenacity

from .body import (
    ACCEPT_ENCODING,
    BodyError,
    DeadlineExceeded,
    ResponseTooLarge,
    TruncatedBody,
    UndecodableBody,
    read_body,
)
from .clock import SYSTEM_CLOCK, Clock
from .errors import ErpNetTransportError
from .sessions import head_deadline
from .settings import ErpNetSettings
from .urls import host_of, safe_url

log = logging.getLogger(__name__)

T = TypeVar("T")

RETRY_STATUSES = frozenset({429, 502, 503, 504})
BACKOFF_BASE = 0.5
# A read timeout usually means the query is too heavy, not that the network blinked: retrying it
# max_attempts times would block a worker for max_attempts x read_timeout.
READ_TIMEOUT_ATTEMPTS = 3


class RetryableStatus(Exception):
    """The server answered a status worth another attempt (throttled, gateway trouble)."""

    def __init__(self, response: requests.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


class RetriesExhausted(Exception):
    """Every allowed attempt failed; ``last`` is the final failure."""

    def __init__(self, last: BaseException, attempts: int) -> None:
        super().__init__(f"{attempts} attempts failed, last: {describe(last)}")
        self.last = last
        self.attempts = attempts


def is_retryable(exc: BaseException) -> bool:
    """Failures another identical request may not hit: transient network trouble and overload."""
    if isinstance(exc, requests.exceptions.SSLError):
        return False
    return isinstance(
        exc,
        RetryableStatus
        | TruncatedBody
        | requests.ConnectionError
        | requests.Timeout
        | requests.exceptions.ChunkedEncodingError,
    )


def describe(exc: BaseException) -> str:
    """Short name of a failure for logs and messages: a status or an exception class."""
    return str(exc) if isinstance(exc, RetryableStatus) else type(exc).__name__


def retry_after_seconds(value: str | None, *, now: float) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or HTTP-date), None if absent/invalid."""
    if not value or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


class _WaitRetryAfterOrBackoff(tenacity.wait.wait_base):
    """Honour the server's Retry-After; otherwise exponential backoff with full jitter."""

    def __init__(self, cap: float, clock: Clock) -> None:
        self.cap = cap
        self.clock = clock
        self.backoff = tenacity.wait_random_exponential(multiplier=BACKOFF_BASE, max=cap)

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(exc, RetryableStatus):
            asked = retry_after_seconds(exc.response.headers.get("Retry-After"), now=self.clock.time())
            if asked is not None:
                return min(asked, self.cap)
        return self.backoff(retry_state)


class _StopOnRepeatedReadTimeout(tenacity.stop.stop_base):
    """Stop once a read timeout happens at or after attempt READ_TIMEOUT_ATTEMPTS."""

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        return isinstance(exc, requests.ReadTimeout) and retry_state.attempt_number >= READ_TIMEOUT_ATTEMPTS


def _exhausted(retry_state: tenacity.RetryCallState) -> None:
    last = retry_state.outcome.exception()  # type: ignore[union-attr]  # set once an attempt ran
    raise RetriesExhausted(last, retry_state.attempt_number) from last


def call_with_retries(
    settings: ErpNetSettings,
    attempt: Callable[[], T],
    *,
    target: str,
    on_retry: Callable[[], None] | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> T:
    """Run ``attempt`` under the retry policy; raise :class:`RetriesExhausted` when it gives up.

    Failures that are not retryable propagate unchanged on the attempt they happen. ``clock``
    dates ``Retry-After`` and does the waiting.
    """

    def before_sleep(retry_state: tenacity.RetryCallState) -> None:
        if on_retry is not None:
            on_retry()
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        level = (
            logging.INFO
            if isinstance(exc, RetryableStatus) and exc.response.status_code == 429
            else logging.WARNING
        )
        log.log(
            level,
            "%s: attempt %d of %d failed (%s); retrying in %.2f s",
            target,
            retry_state.attempt_number,
            settings.max_attempts,
            describe(exc) if exc else "no outcome",
            retry_state.next_action.sleep if retry_state.next_action else 0.0,
        )

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(settings.max_attempts) | _StopOnRepeatedReadTimeout(),
        wait=_WaitRetryAfterOrBackoff(settings.max_wait, clock),
        sleep=clock.sleep,
        retry=tenacity.retry_if_exception(is_retryable),
        before_sleep=before_sleep,
        retry_error_callback=_exhausted,
    )
    return retrying(attempt)


def fetch(
    session: requests.Session,
    settings: ErpNetSettings,
    method: str,
    url: str,
    *,
    auth: requests.auth.AuthBase,
    accept: str,
    data: dict[str, str] | None = None,
) -> requests.Response:
    """One attempt: send, never follow a redirect, read the whole answer within the settings' bounds
    (its head too, on a session from ``sessions.bounded_session``).

    The body is read here, inside the attempt, so a connection dropped mid-body fails this attempt
    and the retry policy can try again. Raises ``RetryableStatus`` for 429/502/503/504, the body
    errors of ``client.body`` and whatever ``requests`` raises.
    """
    # Real time, not the injectable clock: the deadline ends real socket reads.
    deadline = time.monotonic() + settings.response_timeout
    with head_deadline(deadline) as head:
        try:
            response = session.request(
                method,
                url,
                data=data,
                headers={
                    "Accept": accept,
                    "Accept-Encoding": ACCEPT_ENCODING,
                    "User-Agent": settings.user_agent,
                },
                auth=auth,
                timeout=(settings.connect_timeout, min(settings.read_timeout, settings.response_timeout)),
                verify=settings.requests_verify,
                stream=True,
                allow_redirects=False,
            )
        except requests.RequestException:
            if head.fired:  # the watchdog cut a status line or headers that kept trickling in
                raise DeadlineExceeded() from None
            raise
    read_body(response, max_bytes=settings.max_response_bytes, deadline=deadline)
    if response.status_code in RETRY_STATUSES:
        raise RetryableStatus(response)
    return response


def network_error(
    exc: RetriesExhausted | BodyError | BaseException,
    url: str,
    settings: ErpNetSettings,
    *,
    service: str,
    setting: str,
) -> ErpNetTransportError:
    """An actionable error for a failure that is not an HTTP answer (after retries, if any).

    ``service`` names what was called ("identity server", "Domain API"); ``setting`` the
    configuration value that points at it ("identity_url", "api_url"). The error's ``setting`` is
    the one to change: the timeout that ran out, the CA bundle, or else the URL.
    """
    attempts = exc.attempts if isinstance(exc, RetriesExhausted) else 1
    last = exc.last if isinstance(exc, RetriesExhausted) else exc
    host = host_of(url)
    tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
    to_change = setting
    if isinstance(last, requests.ConnectTimeout):
        text = (
            f"Could not connect to the ERP.net {service} at {host} within {settings.connect_timeout:g} s "
            f"({tries}). Check the host name and port in {setting} / instance_url, firewalls and proxies; "
            "raise connect_timeout if the network is slow."
        )
    elif isinstance(last, requests.ReadTimeout):
        text = (
            f"The ERP.net {service} at {host} accepted the connection but the read timed out after "
            f"{settings.read_timeout:g} s ({tries}). If the server is slow for this request, raise "
            "read_timeout"
            + (
                ", or make the query lighter (smaller page_size, fewer $expand)."
                if service == "Domain API"
                else "."
            )
        )
        to_change = "read_timeout"
    elif isinstance(last, requests.exceptions.SSLError):
        text = (
            f"The TLS handshake with the ERP.net {service} at {host} failed ({_root_reason(last)}). "
            "If the server uses a private CA, set ca_bundle to its CA bundle path; check that the "
            "URL's scheme and port are right."
        )
        to_change = "ca_bundle"
    elif isinstance(last, ResponseTooLarge):
        text = (
            f"The ERP.net {service} at {host} answered more than {settings.max_response_mb:g} MiB "
            "(decoded) to one request; stopped reading. If answers this large are expected (a huge "
            "$metadata, very wide rows), raise max_response_mb; for pages, a smaller page_size helps too."
        )
        to_change = "max_response_mb"
    elif isinstance(last, DeadlineExceeded):
        text = (
            f"The ERP.net {service} at {host} did not finish its answer within response_timeout "
            f"({settings.response_timeout:g} s), although it kept sending; stopped reading. If the server is "
            "only slow, raise response_timeout" + (" or lower page_size." if service == "Domain API" else ".")
        )
        to_change = "response_timeout"
    elif isinstance(last, UndecodableBody):
        text = (
            f"The ERP.net {service} at {host} sent a body that cannot be decoded: {last} "
            "(Content-Encoding). A proxy may be altering answers; check the host in instance_url and "
            f"{setting}."
        )
    elif isinstance(last, TruncatedBody | requests.exceptions.ChunkedEncodingError):
        text = (
            f"The ERP.net {service} at {host} cut off its answer {tries} in a row. A proxy or load "
            "balancer may be dropping long responses; try again, or lower page_size."
        )
    else:
        text = (
            f"Could not reach the ERP.net {service} at {host} ({_root_reason(last)}; {tries}). Check "
            f"that {setting} / instance_url names the right host and port and that this machine can "
            "reach it (DNS, firewall, proxy)."
        )
    return ErpNetTransportError(text, url=safe_url(url), setting=to_change)


def _root_reason(exc: BaseException) -> str:
    """The innermost cause's class and OS message; never str() of a wrapper (it embeds the URL)."""
    seen: set[int] = set()
    current: BaseException = exc
    while id(current) not in seen:
        seen.add(id(current))
        inner = getattr(current, "reason", None)
        if not isinstance(inner, BaseException):
            first = current.args[0] if current.args else None
            inner = first if isinstance(first, BaseException) else (current.__cause__ or current.__context__)
        if inner is None:
            break
        current = inner
    strerror = getattr(current, "strerror", None)
    return f"{type(current).__name__}: {strerror}" if strerror else type(current).__name__
