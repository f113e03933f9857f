"""Parse an ``erpnet`` connection (host, login, password, extras) into client settings.

Extras carry the ``ErpNetSettings`` field names, so parsing is a lookup, not a translation. No
Airflow connection or metadata DB is needed here, so the mapping is testable on its own.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from airflow.exceptions import AirflowProviderDeprecationWarning

from airflow_provider_erpnet.client.errors import ErpNetConfigError, ErpNetError
from airflow_provider_erpnet.client.settings import ErpNetSettings
from airflow_provider_erpnet.connection_fields import EXTRA_FIELDS, RENAMED_EXTRAS, form_label

_NUMBER_WORDS = {int: "an integer", float: "a number"}


def in_form_terms(error: ErpNetError) -> str:
    """The error's message with the setting it is about named as the connection form labels it.

    ``Identity server URL (identity_url) must be an http(s) URL ...`` instead of ``identity_url must
    be ...``: a person at the form sees the field to fix, one writing JSON sees the extra's name.
    """
    message = str(error)
    label = form_label(error.setting) if error.setting else None
    if label is None:
        return message
    if message.startswith(f"{error.setting} "):
        return f"{label}{message[len(error.setting) :]}"
    return f"{label}: {message}"


def settings_from_connection(
    *,
    conn_id: str | None,
    host: str | None,
    login: str | None,
    password: str | None,
    extra: Mapping[str, Any],
) -> ErpNetSettings:
    """Map connection fields to client settings; unknown extras are rejected so typos surface.

    Errors are worded in the form's terms and start with ``Connection '<conn_id>'`` when a
    ``conn_id`` is given (leave it out where the id means nothing to the reader, such as the
    temporary id of the UI's connection test). They keep ``setting`` for callers that re-word them.
    """
    try:
        return _settings(host, login, password, _current_names(extra))
    except ErpNetConfigError as exc:
        where = f"Connection {conn_id!r}: " if conn_id else ""
        raise ErpNetConfigError(f"{where}{in_form_terms(exc)}", setting=exc.setting) from None


def _current_names(extra: Mapping[str, Any]) -> dict[str, Any]:
    """The extras under today's names; an old name still works, with a deprecation warning."""
    current = dict(extra)
    for old, new in RENAMED_EXTRAS.items():
        if old not in current:
            continue
        if new in current:
            raise ErpNetConfigError(
                f"{new} is set twice: as {new!r} and under its old name {old!r}; remove {old!r}.",
                setting=new,
            )
        warnings.warn(
            f"The erpnet connection extra {old!r} is now called {new!r}; rename it in the connection "
            "(the old name will stop working in a future release).",
            AirflowProviderDeprecationWarning,
            stacklevel=2,
        )
        current[new] = current.pop(old)
    unknown = sorted(set(current) - set(EXTRA_FIELDS))
    if unknown:
        raise ErpNetConfigError(
            f"unknown extra field(s) {', '.join(unknown)}; supported: {', '.join(EXTRA_FIELDS)}."
        )
    return current


def _settings(
    host: str | None, login: str | None, password: str | None, extra: Mapping[str, Any]
) -> ErpNetSettings:
    if not host or not host.strip():
        raise ErpNetConfigError(
            "instance_url is empty (the connection has no host): set it to the ERP.net instance URL, "
            "e.g. https://demodb.my.erp.net.",
            setting="instance_url",
        )
    if not login:
        raise ErpNetConfigError(
            "client_id is empty (the connection has no login): set it to the trusted application's "
            "ApplicationUri, e.g. my.trusted.app/first.",
            setting="client_id",
        )
    if not password:
        raise ErpNetConfigError(
            "client_secret is empty (the connection has no password): set it to the trusted "
            "application's secret.",
            setting="client_secret",
        )
    options: dict[str, Any] = {
        "scope": (extra.get("scope") or "").strip() or None,
        "identity_url": extra.get("identity_url") or None,
        "api_url": extra.get("api_url") or None,
        "read_timeout": _number(extra, "read_timeout", float),
        "connect_timeout": _number(extra, "connect_timeout", float),
        "verify_tls": _flag(extra, "verify_tls"),
        "ca_bundle": str(extra["ca_bundle"]) if extra.get("ca_bundle") else None,
        "page_size": _number(extra, "page_size", int),
        "max_attempts": _number(extra, "max_attempts", int),
        "max_wait": _number(extra, "max_wait", float),
        "disk_cache": _flag(extra, "disk_cache"),
        "disk_cache_dir": str(extra["disk_cache_dir"]) if extra.get("disk_cache_dir") else None,
        "max_response_mb": _number(extra, "max_response_mb", float),
        "response_timeout": _number(extra, "response_timeout", float),
        "allow_plain_http": _flag(extra, "allow_plain_http"),
    }
    host = host.strip().rstrip("/")
    return ErpNetSettings(
        instance_url=host if "://" in host else f"https://{host}",
        client_id=login,
        client_secret=password,
        **{key: value for key, value in options.items() if value is not None},
    )


def _number(extra: Mapping[str, Any], key: str, kind: type) -> Any:
    value = extra.get(key)
    if value in (None, ""):
        return None
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise ErpNetConfigError(f"{key} must be {_NUMBER_WORDS[kind]}, got {value!r}.", setting=key) from None


def _flag(extra: Mapping[str, Any], key: str) -> bool | None:
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
    raise ErpNetConfigError(f"{key} must be true or false, got {value!r}.", setting=key)
