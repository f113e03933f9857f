"""ErpNetSettings: validation, resolved URLs, and no secret in repr."""

from __future__ import annotations

import dataclasses

import pytest

from airflow_provider_erpnet import __version__
from airflow_provider_erpnet.client.errors import ErpNetConfigError
from airflow_provider_erpnet.client.settings import ErpNetSettings

SECRET = "s3cr3t-value-never-shown"


def make(**changes: object) -> ErpNetSettings:
    values: dict[str, object] = {
        "instance_url": "https://demodb.my.erp.net",
        "client_id": "my.trusted.app/first",
        "client_secret": SECRET,
    }
    values.update(changes)
    return ErpNetSettings(**values)  # type: ignore[arg-type]


def test_defaults_resolve_to_the_standard_erpnet_layout() -> None:
    settings = make(instance_url="https://demodb.my.erp.net/")
    assert settings.resolved_identity_url == "https://demodb.my.erp.net/id"
    assert settings.resolved_api_url == "https://demodb.my.erp.net/api/domain/odata/"
    assert settings.user_agent == f"airflow-provider-erpnet/{__version__}"


def test_explicit_urls_win_and_the_api_url_gets_a_trailing_slash() -> None:
    settings = make(identity_url="https://id.example.com/id/", api_url="https://erpapi.example.com/odata")
    assert settings.resolved_identity_url == "https://id.example.com/id"
    assert settings.resolved_api_url == "https://erpapi.example.com/odata/"


def test_secret_is_not_in_repr_or_str() -> None:
    settings = make()
    assert SECRET not in repr(settings)
    assert SECRET not in str(settings)
    assert "my.trusted.app/first" in repr(settings)


def test_settings_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        make().page_size = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"instance_url": "demodb.my.erp.net"}, "instance_url must be an http(s) URL"),
        ({"instance_url": "ftp://demodb.my.erp.net"}, "instance_url must be an http(s) URL"),
        ({"instance_url": "https://"}, "instance_url must be an http(s) URL"),
        ({"api_url": "not a url"}, "api_url must be an http(s) URL"),
        ({"identity_url": "file:///id"}, "identity_url must be an http(s) URL"),
        ({"instance_url": "https://demodb.my.erp.net:99999"}, "instance_url has an invalid port"),
        ({"api_url": "http://127.0.0.1:odata/"}, "api_url has an invalid port"),
        ({"page_size": 0}, "page_size must be between 1 and 1000"),
        ({"page_size": 1001}, "page_size must be between 1 and 1000"),
        ({"connect_timeout": 0}, "connect_timeout must be a positive"),
        ({"read_timeout": -1.0}, "read_timeout must be a positive"),
        ({"max_attempts": 0}, "max_attempts must be at least 1"),
        ({"max_wait": -1}, "max_wait must be zero or more"),
        ({"client_id": " "}, "client_id is empty"),
        ({"client_secret": ""}, "client_secret is empty"),
    ],
)
def test_invalid_settings_say_what_to_fix(changes: dict[str, object], expected: str) -> None:
    with pytest.raises(ErpNetConfigError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        make(**changes)


def test_credentials_in_a_url_are_refused_without_echoing_them() -> None:
    with pytest.raises(ErpNetConfigError, match="must not contain credentials") as info:
        make(instance_url=f"https://user:{SECRET}@demodb.my.erp.net")
    assert SECRET not in str(info.value)


def test_boundaries_are_accepted() -> None:
    settings = make(page_size=1, max_attempts=1, max_wait=0, ca_bundle="/etc/ssl/certs/ca.pem")
    assert (settings.page_size, settings.max_attempts, settings.requests_verify) == (
        1,
        1,
        "/etc/ssl/certs/ca.pem",
    )
    assert make(page_size=1000).page_size == 1000
