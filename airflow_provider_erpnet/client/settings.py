"""Everything an ERP.net client needs, validated once so later code can trust it."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from airflow_provider_erpnet import __version__

from .errors import ErpNetConfigError

MAX_PAGE_SIZE = 1000
# A 1000-row page of wide ERP.net records is a few MB; $metadata of a large instance tens of MB.
DEFAULT_MAX_RESPONSE_MB = 256.0
DEFAULT_RESPONSE_TIMEOUT = 600.0


@dataclass(frozen=True)
class ErpNetSettings:
    """Connection settings of one ERP.net instance and trusted application.

    Each field has the name the connection extras and the connection form use, so one word names a
    setting everywhere; errors about a field carry that name in ``ErpNetConfigError.setting``.
    ``client_secret`` is left out of ``repr`` so settings can be logged or shown in tracebacks.
    Unset URLs resolve to the standard ERP.net layout under ``instance_url``.
    """

    instance_url: str
    client_id: str
    client_secret: str = field(repr=False)
    scope: str | None = None
    identity_url: str | None = None
    api_url: str | None = None
    read_timeout: float = 120.0
    connect_timeout: float = 10.0
    verify_tls: bool = True
    ca_bundle: str | None = None
    page_size: int = MAX_PAGE_SIZE
    max_attempts: int = 8
    max_wait: float = 60.0
    disk_cache: bool = True
    disk_cache_dir: str | None = None
    max_response_mb: float = DEFAULT_MAX_RESPONSE_MB
    response_timeout: float = DEFAULT_RESPONSE_TIMEOUT
    allow_plain_http: bool = False

    def __post_init__(self) -> None:
        _check_url("instance_url", self.instance_url)
        for name in ("identity_url", "api_url"):
            value = getattr(self, name)
            if value is not None:
                _check_url(name, value)
        if not self.client_id or not self.client_id.strip():
            raise ErpNetConfigError(
                "client_id is empty: set it to the trusted application's ApplicationUri, "
                "e.g. my.trusted.app/first.",
                setting="client_id",
            )
        if not self.client_secret:
            raise ErpNetConfigError(
                "client_secret is empty: set it to the trusted application's secret.", setting="client_secret"
            )
        if not 1 <= self.page_size <= MAX_PAGE_SIZE:
            raise ErpNetConfigError(
                f"page_size must be between 1 and {MAX_PAGE_SIZE} (ERP.net's recommended maximum), "
                f"got {self.page_size}.",
                setting="page_size",
            )
        for name in ("read_timeout", "connect_timeout", "response_timeout", "max_response_mb"):
            if not getattr(self, name) > 0:
                unit = "megabytes" if name == "max_response_mb" else "seconds"
                raise ErpNetConfigError(
                    f"{name} must be a positive number of {unit}, got {getattr(self, name)}.", setting=name
                )
        if self.max_attempts < 1:
            raise ErpNetConfigError(
                f"max_attempts must be at least 1 (no retries), got {self.max_attempts}.",
                setting="max_attempts",
            )
        if not self.max_wait >= 0:
            raise ErpNetConfigError(
                f"max_wait must be zero or more seconds, got {self.max_wait}.", setting="max_wait"
            )

    @property
    def requests_verify(self) -> bool | str:
        """What ``requests`` takes as ``verify``: the CA bundle path when set, else ``verify_tls``."""
        return self.ca_bundle or self.verify_tls

    @property
    def max_response_bytes(self) -> int:
        """``max_response_mb`` in bytes: the most one decoded answer may hold."""
        return int(self.max_response_mb * (1 << 20))

    @property
    def resolved_identity_url(self) -> str:
        """Identity server root without a trailing slash, e.g. ``https://x.my.erp.net/id``."""
        return (self.identity_url or f"{self.instance_url.rstrip('/')}/id").rstrip("/")

    @property
    def resolved_api_url(self) -> str:
        """OData service root, always ending with "/" so entity sets join onto it."""
        url = self.api_url or f"{self.instance_url.rstrip('/')}/api/domain/odata/"
        return url if url.endswith("/") else f"{url}/"

    @property
    def user_agent(self) -> str:
        """Sent with every request so ERP.net administrators can tell where calls come from."""
        return f"airflow-provider-erpnet/{__version__}"


def _check_url(name: str, value: str) -> None:
    parts = urlsplit(value or "")
    if "@" in parts.netloc:
        raise ErpNetConfigError(
            f"{name} must not contain credentials (user:password@); put the trusted application's "
            "ApplicationUri in client_id and its secret in client_secret.",
            setting=name,
        )
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ErpNetConfigError(
            f"{name} must be an http(s) URL with a host, e.g. https://demodb.my.erp.net; got {value!r}.",
            setting=name,
        )
    try:
        valid_port = parts.port != 0  # urlsplit checks the port only when asked for it
    except ValueError:
        valid_port = False
    if not valid_port:
        raise ErpNetConfigError(f"{name} has an invalid port (use 1..65535); got {value!r}.", setting=name)
