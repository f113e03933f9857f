"""Parse an ``erpnet`` connection (host, login, password, extras) into client settings.

No Airflow import here, so the mapping is testable without a connection or a metadata DB.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_provider_erpnet.client.errors import ErpNetConfigError
from airflow_provider_erpnet.client.settings import ErpNetSettings
from airflow_provider_erpnet.connection_fields import EXTRA_FIELDS


def _number(conn_id: str, extra: Mapping[str, Any], key: str, kind: type) -> Any:
    value = extra.get(key)
    if value in (None, ""):
        return None
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise ErpNetConfigError(
            f"Connection {conn_id!r}: extra {key!r} must be a {kind.__name__}, got {value!r}."
        ) from None


def _flag(conn_id: str, extra: Mapping[str, Any], key: str) -> bool | None:
    value = extra.get(key)
    if value in (None, ""):
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise ErpNetConfigError(f"Connection {conn_id!r}: extra {key!r} must be true or false, got {value!r}.")


def _instance_url(conn_id: str, host: str | None) -> str:
    if not host or not host.strip():
        raise ErpNetConfigError(
            f"Connection {conn_id!r} has no host: set it to the ERP.net instance URL, "
            "e.g. https://demodb.my.erp.net."
        )
    host = host.strip().rstrip("/")
    return host if "://" in host else f"https://{host}"


def settings_from_connection(
    *,
    conn_id: str,
    host: str | None,
    login: str | None,
    password: str | None,
    extra: Mapping[str, Any],
) -> ErpNetSettings:
    """Map connection fields to client settings; unknown extras are rejected so typos surface."""
    unknown = sorted(set(extra) - set(EXTRA_FIELDS))
    if unknown:
        raise ErpNetConfigError(
            f"Connection {conn_id!r} has unknown extra field(s) {', '.join(unknown)}; "
            f"supported: {', '.join(EXTRA_FIELDS)}."
        )
    if not login:
        raise ErpNetConfigError(
            f"Connection {conn_id!r} has no login: set it to the trusted application's "
            "ApplicationUri (client_id), e.g. my.trusted.app/first."
        )
    if not password:
        raise ErpNetConfigError(
            f"Connection {conn_id!r} has no password: set it to the trusted application's secret."
        )
    options: dict[str, Any] = {
        "scope": (extra.get("scope") or "").strip() or None,
        "identity_url": extra.get("identity_url") or None,
        "api_url": extra.get("api_url") or None,
        "read_timeout": _number(conn_id, extra, "timeout", float),
        "connect_timeout": _number(conn_id, extra, "connect_timeout", float),
        "page_size": _number(conn_id, extra, "page_size", int),
        "max_attempts": _number(conn_id, extra, "max_attempts", int),
        "token_file_cache": _flag(conn_id, extra, "disk_cache"),
    }
    verify_tls = _flag(conn_id, extra, "verify_tls")
    ca_bundle = extra.get("ca_bundle") or None
    if ca_bundle:
        options["verify"] = str(ca_bundle)
    elif verify_tls is not None:
        options["verify"] = verify_tls
    try:
        return ErpNetSettings(
            instance_url=_instance_url(conn_id, host),
            client_id=login,
            client_secret=password,
            **{key: value for key, value in options.items() if value is not None},
        )
    except ErpNetConfigError as exc:
        raise ErpNetConfigError(f"Connection {conn_id!r}: {exc}") from None
