"""Connection fields -> client settings: defaults, overrides and actionable errors."""

from __future__ import annotations

import pytest

from airflow_provider_erpnet.client.errors import ErpNetConfigError
from airflow_provider_erpnet.hooks.connection_extras import settings_from_connection

SECRET = "s3cr3t-value-never-shown"


def parse(host: str | None = "https://demodb.my.erp.net", **extra: object):
    return settings_from_connection(
        conn_id="erpnet_x", host=host, login="my.trusted.app/first", password=SECRET, extra=extra
    )


def test_defaults_follow_erpnet_layout() -> None:
    settings = parse()
    assert settings.resolved_identity_url == "https://demodb.my.erp.net/id"
    assert settings.resolved_api_url == "https://demodb.my.erp.net/api/domain/odata/"
    assert settings.scope is None
    assert settings.page_size == 1000
    assert settings.token_file_cache is True
    assert settings.verify is True


def test_host_without_scheme_gets_https() -> None:
    assert parse(host="demodb.my.erp.net/").instance_url.startswith("https://demodb.my.erp.net")


def test_extras_override_defaults() -> None:
    settings = parse(
        scope="read",
        api_url="https://erpapi.example.com/api/domain/odata",
        identity_url="https://id.example.com/id",
        timeout="30",
        connect_timeout=5,
        page_size="500",
        max_attempts=3,
        disk_cache="false",
        verify_tls=False,
    )
    assert settings.scope == "read"
    assert settings.resolved_api_url == "https://erpapi.example.com/api/domain/odata/"
    assert settings.resolved_identity_url == "https://id.example.com/id"
    assert (settings.read_timeout, settings.connect_timeout) == (30.0, 5.0)
    assert (settings.page_size, settings.max_attempts) == (500, 3)
    assert settings.token_file_cache is False
    assert settings.verify is False


def test_ca_bundle_wins_over_flag() -> None:
    assert parse(verify_tls=True, ca_bundle="/etc/ssl/erp.pem").verify == "/etc/ssl/erp.pem"


@pytest.mark.parametrize(
    ("host", "extra", "needle"),
    [
        (None, {}, "no host"),
        ("https://x.example", {"scop": "read"}, "unknown extra field(s) scop"),
        ("https://x.example", {"page_size": "many"}, "'page_size' must be a int"),
        ("https://x.example", {"page_size": 5000}, "page_size"),
        ("https://x.example", {"disk_cache": "maybe"}, "'disk_cache' must be true or false"),
    ],
)
def test_bad_fields_raise_clear_errors(host: str | None, extra: dict, needle: str) -> None:
    with pytest.raises(ErpNetConfigError) as info:
        parse(host=host, **extra)
    assert needle in str(info.value)
    assert "erpnet_x" in str(info.value)
    assert SECRET not in str(info.value)


def test_missing_login_and_password_are_named() -> None:
    with pytest.raises(ErpNetConfigError, match="no login"):
        settings_from_connection(conn_id="c", host="https://x.example", login=None, password="p", extra={})
    with pytest.raises(ErpNetConfigError, match="no password"):
        settings_from_connection(conn_id="c", host="https://x.example", login="app", password="", extra={})


def test_secret_is_not_in_repr() -> None:
    assert SECRET not in repr(parse())
