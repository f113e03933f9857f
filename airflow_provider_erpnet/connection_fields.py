"""The ``erpnet`` connection's extra fields, declared once for the UI form and the hook.

Plain data with no imports: Airflow imports ``get_provider_info`` while it loads its own
configuration, so nothing reachable from there may import Airflow, requests or the client.
Each extra has the name of the ``ErpNetSettings`` field it sets, so one word names a setting from
the form down to the client. Extra names avoid "token" and "secret": Airflow masks any extra whose
key contains them, and these values are not secret (the secret is the connection's password).
"""

from __future__ import annotations

from typing import Any

EXTRA_FIELDS: dict[str, dict[str, Any]] = {
    "scope": {
        "label": "Scope",
        "description": "Space-separated scopes to request, e.g. 'read'. Empty: every scope the "
        "trusted application allows.",
        "schema": {"type": ["string", "null"]},
    },
    "identity_url": {
        "label": "Identity server URL",
        "description": "Default: <instance URL>/id. The token endpoint is read from its discovery document.",
        "schema": {"type": ["string", "null"], "format": "url"},
    },
    "api_url": {
        "label": "Domain API URL",
        "description": "OData service root. Default: <instance URL>/api/domain/odata/. Set it when "
        "the API site lives on another host.",
        "schema": {"type": ["string", "null"], "format": "url"},
    },
    "read_timeout": {
        "label": "Read timeout (seconds)",
        "description": "How long to wait for one page before retrying.",
        "schema": {"type": ["number", "null"], "default": 120, "minimum": 1},
    },
    "connect_timeout": {
        "label": "Connect timeout (seconds)",
        "schema": {"type": ["number", "null"], "default": 10, "minimum": 1},
    },
    "verify_tls": {
        "label": "Verify TLS certificates",
        "description": "Turn off only for test instances with self-signed certificates.",
        "schema": {"type": ["boolean", "null"], "default": True},
    },
    "ca_bundle": {
        "label": "CA bundle path",
        "description": "Path to a PEM bundle used to verify the server instead of the system store.",
        "schema": {"type": ["string", "null"]},
    },
    "page_size": {
        "label": "Page size",
        "description": "Rows per OData page ($top), at most 1000 as ERP.net recommends.",
        "schema": {"type": ["integer", "null"], "default": 1000, "minimum": 1, "maximum": 1000},
    },
    "max_attempts": {
        "label": "Attempts per request",
        "description": "Attempts per request, the first one included; throttling (429), 502/503/504 "
        "and dropped connections are retried.",
        "schema": {"type": ["integer", "null"], "default": 8, "minimum": 1},
    },
    "max_wait": {
        "label": "Longest wait between attempts (seconds)",
        "description": "Cap for the server's Retry-After and for the backoff between attempts.",
        "schema": {"type": ["number", "null"], "default": 60, "minimum": 0},
    },
    "disk_cache": {
        "label": "Share access tokens between tasks on this machine",
        "description": "Each new ERP.net token takes a licence slot; a 0600 file cache lets tasks reuse one.",
        "schema": {"type": ["boolean", "null"], "default": True},
    },
    "disk_cache_dir": {
        "label": "Token cache directory",
        "description": "Where the shared token files live. Default: $XDG_CACHE_HOME (or ~/.cache)"
        "/airflow-provider-erpnet/tokens.",
        "schema": {"type": ["string", "null"]},
    },
    "max_response_mb": {
        "label": "Largest answer (MiB)",
        "description": "The most one answer may hold once decompressed; a larger one fails the request "
        "instead of filling the worker's memory. A 1000-row page is a few MiB.",
        "schema": {"type": ["number", "null"], "default": 256, "minimum": 1},
    },
    "response_timeout": {
        "label": "Response deadline (seconds)",
        "description": "The longest one answer may take, from sending the request to its last byte, "
        "however steadily the server trickles it (read timeout applies to each read).",
        "schema": {"type": ["number", "null"], "default": 600, "minimum": 1},
    },
    "allow_plain_http": {
        "label": "Allow plain http to other hosts",
        "description": "Send the client secret and tokens over unencrypted http to a host other than this "
        "machine. Only for test instances on a network you trust.",
        "schema": {"type": ["boolean", "null"], "default": False},
    },
}

# Extra names of earlier releases -> today's name. Old connections keep working, with a warning.
RENAMED_EXTRAS: dict[str, str] = {"timeout": "read_timeout"}

# The connection's own fields as the form labels them, by the ErpNetSettings field each one sets.
CONNECTION_FIELDS: dict[str, tuple[str, str]] = {
    "instance_url": ("host", "ERP.net instance URL"),
    "client_id": ("login", "Application URI (client_id)"),
    "client_secret": ("password", "Client secret"),
}


def form_label(setting: str) -> str | None:
    """How the connection form names ``setting`` (an ``ErpNetSettings`` field), None if it has no field.

    Extras keep their name beside the label, for whoever writes the connection as JSON.
    """
    if setting in CONNECTION_FIELDS:
        return CONNECTION_FIELDS[setting][1]
    if setting in EXTRA_FIELDS:
        return f"{EXTRA_FIELDS[setting]['label']} ({setting})"
    return None
