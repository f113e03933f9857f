"""Errors raised by the ERP.net client.

One base class so callers can catch everything from this package; subclasses exist only where a
caller reacts differently. Messages name the problem and the fix and never contain a secret or a
token: callers may log them verbatim. An error caused by one setting names it by its field name
(``api_url``, ``read_timeout``, ...: the ``ErpNetSettings`` field, which is also the connection
extra's name) in ``setting``, so an adapter can word it in its own terms, e.g. a form label.
"""

from __future__ import annotations


class ErpNetError(Exception):
    """Base class of every error this package raises."""

    def __init__(self, message: str = "", *, setting: str | None = None) -> None:
        super().__init__(message)
        self.setting = setting


class ErpNetConfigError(ErpNetError):
    """The request cannot be sent as configured: fix the connection, the DAG or the query."""


class ErpNetAuthError(ErpNetError):
    """The identity server refused to issue a token (OAuth2 error such as ``invalid_client``)."""

    def __init__(
        self,
        message: str,
        *,
        error: str | None = None,
        status: int | None = None,
        setting: str | None = None,
    ) -> None:
        super().__init__(message, setting=setting)
        self.error = error
        self.status = status


class ErpNetTransportError(ErpNetError):
    """The server could not be reached or answered something that is not ERP.net (after retries)."""

    def __init__(self, message: str, *, url: str | None = None, setting: str | None = None) -> None:
        super().__init__(message, setting=setting)
        self.url = url


class ErpNetApiError(ErpNetError):
    """The Domain API answered with an error status; carries what ERP.net said about it."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        code: str | None = None,
        error_type: str | None = None,
        server_message: str | None = None,
        entity_set: str | None = None,
        url: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.error_type = error_type
        self.server_message = server_message
        self.entity_set = entity_set
        self.url = url
        # Seconds the server's Retry-After asked for, when it throttled the last attempt: a caller
        # that polls (the changes trigger) waits that long before asking again.
        self.retry_after = retry_after


class ErpNetIncompleteError(ErpNetError):
    """An extraction wrote a different number of rows than the server counts for the same query."""
