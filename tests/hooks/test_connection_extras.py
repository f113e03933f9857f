"""Connection fields -> client settings: defaults, overrides and actionable errors."""

from __future__ import annotations

import dataclasses

import pytest
from airflow.exceptions import AirflowProviderDeprecationWarning

from airflow_provider_erpnet.client.errors import ErpNetConfigError, ErpNetTransportError
from airflow_provider_erpnet.client.settings import ErpNetSettings
from airflow_provider_erpnet.connection_fields import CONNECTION_FIELDS, EXTRA_FIELDS
from airflow_provider_erpnet.hooks.connection_extras import in_form_terms, settings_from_connection

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
    assert settings.disk_cache is True
    assert settings.requests_verify is True


def test_host_without_scheme_gets_https() -> None:
    assert parse(host="demodb.my.erp.net/").instance_url.startswith("https://demodb.my.erp.net")


def test_extras_override_defaults() -> None:
    settings = parse(
        scope="read",
        api_url="https://erpapi.example.com/api/domain/odata",
        identity_url="https://id.example.com/id",
        read_timeout="30",
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
    assert settings.disk_cache is False
    assert settings.requests_verify is False


def test_ca_bundle_wins_over_flag() -> None:
    assert parse(verify_tls=True, ca_bundle="/etc/ssl/erp.pem").requests_verify == "/etc/ssl/erp.pem"


@pytest.mark.parametrize(
    ("host", "extra", "needle"),
    [
        (None, {}, "no host"),
        ("https://x.example", {"scop": "read"}, "unknown extra field(s) scop"),
        ("https://x.example", {"page_size": "many"}, "Page size (page_size) must be an integer"),
        ("https://x.example", {"page_size": 5000}, "page_size"),
        ("https://x.example", {"disk_cache": "maybe"}, "(disk_cache) must be true or false"),
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


def test_every_setting_has_one_name_from_the_form_to_the_client() -> None:
    """The extras are exactly the ErpNetSettings fields the connection's own fields do not set."""
    fields = {field.name for field in dataclasses.fields(ErpNetSettings)}
    assert set(EXTRA_FIELDS) == fields - set(CONNECTION_FIELDS)
    assert set(CONNECTION_FIELDS) <= fields


def test_every_extra_is_parsed_under_its_own_name(tmp_path) -> None:
    values = {
        "scope": "read",
        "identity_url": "https://id.example.com/id",
        "api_url": "https://api.example.com/odata/",
        "read_timeout": 31.0,
        "connect_timeout": 4.0,
        "verify_tls": False,
        "ca_bundle": str(tmp_path / "ca.pem"),
        "page_size": 250,
        "max_attempts": 3,
        "max_wait": 7.5,
        "disk_cache": False,
        "disk_cache_dir": str(tmp_path / "tokens"),
        "max_response_mb": 64.0,
        "response_timeout": 90.0,
        "allow_plain_http": True,
    }
    assert set(values) == set(EXTRA_FIELDS)
    settings = parse(**values)
    assert {name: getattr(settings, name) for name in values} == values


def test_an_old_extra_name_still_works_with_a_deprecation_warning() -> None:
    with pytest.warns(AirflowProviderDeprecationWarning, match="'timeout' is now called 'read_timeout'"):
        settings = parse(timeout="45")
    assert settings.read_timeout == 45.0


def test_an_old_and_a_new_name_together_are_refused() -> None:
    with pytest.raises(ErpNetConfigError, match="remove 'timeout'") as info:
        parse(timeout="45", read_timeout="30")
    assert info.value.setting == "read_timeout"


def test_errors_name_the_form_field_and_keep_the_setting() -> None:
    with pytest.raises(ErpNetConfigError) as info:
        settings_from_connection(
            conn_id=None,
            host="https://x.example",
            login="app",
            password=SECRET,
            extra={"identity_url": "ftp://id.example"},
        )
    message = str(info.value)
    assert message.startswith("Identity server URL (identity_url) must be an http(s) URL")
    assert "Connection" not in message
    assert info.value.setting == "identity_url"


def test_connection_fields_are_named_by_their_form_label() -> None:
    with pytest.raises(ErpNetConfigError) as info:
        settings_from_connection(conn_id="c", host="https://x.example", login="", password="p", extra={})
    assert str(info.value).startswith("Connection 'c': Application URI (client_id) is empty")


@pytest.mark.parametrize(
    ("setting", "message", "worded"),
    [
        ("api_url", "api_url must be set", "Domain API URL (api_url) must be set"),
        ("read_timeout", "The read timed out", "Read timeout (seconds) (read_timeout): The read timed out"),
        ("instance_url", "Could not reach x", "ERP.net instance URL: Could not reach x"),
        (None, "Something else", "Something else"),
        ("not_a_field", "not_a_field is odd", "not_a_field is odd"),
    ],
)
def test_in_form_terms(setting: str | None, message: str, worded: str) -> None:
    assert in_form_terms(ErpNetTransportError(message, setting=setting)) == worded
