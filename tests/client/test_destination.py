"""Where a credential may go, checked on the URL as urllib3 will send it (defects 1 and 3 of issue 8).

The HTTP-level cases (next links, redirects, discovery) are in tests/hostile; here each rule of
``Destination`` on its own, and the token guard on a prepared request.
"""

from __future__ import annotations

import pytest
import requests

from airflow_provider_erpnet.client import ErpNetConfigError, ErpNetSettings
from airflow_provider_erpnet.client.transport import Transport, _BearerAuth
from airflow_provider_erpnet.client.urls import Destination, origin, sent_origin
from tests.client.helpers_servers import StubServer, fresh_token_cache, identity_then, json_reply

__all__ = ["fresh_token_cache"]

API = "http://127.0.0.1:8080/api/domain/odata/"


def destination(url: str = API, *, allow_plain_http: bool = False) -> Destination:
    return Destination(
        url,
        setting="api_url",
        service="Domain API",
        carries="the access token",
        allow_plain_http=allow_plain_http,
    )


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:9999\\@127.0.0.1:8080/api/domain/odata/X", "backslash"),
        ("http://127.0.0.1:8080\\.evil/api/domain/odata/X", "backslash"),
        ("http://me@127.0.0.1:8080/api/domain/odata/X", "credentials"),
        ("http://127.0.0.1:8080@127.0.0.1:9999/api/domain/odata/X", "credentials"),
        ("http://127.0.0.1:8080/api/domain/odata/X\r\nHost: evil", "control character"),
        ("http://127.0.0.1:8080/api/domain/odata/X Y", "whitespace"),
        ("http://127.0.0.1:8080\t/api/domain/odata/X", "control character"),
        ("http://127.0.0.1:9999/api/domain/odata/X", "not the configured Domain API origin"),
        ("https://127.0.0.1:8080/api/domain/odata/X", "not the configured Domain API origin"),
        ("http://localhost:8080/api/domain/odata/X", "not the configured Domain API origin"),
        ("ftp://127.0.0.1:8080/api/domain/odata/X", "not the configured Domain API origin"),
    ],
)
def test_refused_urls_say_why(url: str, reason: str) -> None:
    refusal = destination().refusal(url)
    assert refusal is not None and reason in refusal.reason
    with pytest.raises(ErpNetConfigError, match="Refusing to send the access token") as raised:
        destination().check(url)
    assert raised.value.setting == "api_url"


def test_the_api_origin_itself_passes_in_any_spelling() -> None:
    for url in (f"{API}Things?$top=2", "HTTP://127.0.0.1:8080/x", "http://127.0.0.1:8080/a%5Cb?q=%40"):
        assert destination().refusal(url) is None, url
    https = destination("https://Erp.Example.com/api/")
    assert https.refusal("https://erp.example.com:443/api/Things") is None


def test_a_backslash_reports_where_each_parser_would_go() -> None:
    refusal = destination().refusal("http://127.0.0.1:9999\\@127.0.0.1:8080/api/domain/odata/X")
    assert refusal is not None
    assert "urllib3 would connect to http://127.0.0.1:9999" in refusal.reason
    assert "the standard library reads http://127.0.0.1:8080" in refusal.reason


def test_the_two_parsers_agree_on_what_passes() -> None:
    url = "http://127.0.0.1:9999\\@127.0.0.1:8080/x"
    assert origin(url) != sent_origin(url)  # the disagreement defect 1 exploited


@pytest.mark.parametrize("host", ["erp.example.com", "10.0.0.5", "[fd00::1]"])
def test_plain_http_to_another_machine_needs_allow_plain_http(host: str) -> None:
    url = f"http://{host}/api/domain/odata/"
    with pytest.raises(ErpNetConfigError, match="plain http") as raised:
        destination(url).check(f"{url}Things")
    assert raised.value.setting == "allow_plain_http"
    assert "allow_plain_http" in str(raised.value)
    assert destination(url, allow_plain_http=True).refusal(f"{url}Things") is None


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "localhost", "[::1]", "api.localhost"])
def test_plain_http_to_this_machine_is_fine(host: str) -> None:
    url = f"http://{host}:8080/odata/"
    assert destination(url).refusal(f"{url}Things") is None


def test_the_token_guard_checks_the_prepared_url() -> None:
    """The guard sits on the prepared request, so it sees the URL urllib3 sends, whatever built it."""
    auth = _BearerAuth("the-token", destination())
    elsewhere = requests.Request("GET", "http://127.0.0.1:9999/api/domain/odata/X").prepare()
    with pytest.raises(ErpNetConfigError, match=r"127\.0\.0\.1:9999"):
        auth(elsewhere)
    assert "Authorization" not in elsewhere.headers
    home = auth(requests.Request("GET", f"{API}X", params={"$filter": "a eq 'b'"}).prepare())
    assert home.headers["Authorization"] == "Bearer the-token"


@pytest.mark.usefixtures("fresh_token_cache")
def test_a_backslash_url_given_to_the_transport_reaches_no_one() -> None:
    """Defect 1 at the transport: the URL urlsplit thinks is the API's goes nowhere."""
    with (
        StubServer(lambda request: json_reply({"value": []})) as foreign,
        StubServer(identity_then(lambda request: json_reply({"value": []}))) as api,
    ):
        settings = ErpNetSettings(
            instance_url=api.url, client_id="app", client_secret="guard-secret-2", disk_cache=False
        )
        foreign_port = foreign.url.rsplit(":", 1)[1]
        url = f"http://127.0.0.1:{foreign_port}\\@{api.url.split('//')[1]}/api/domain/odata/Things"
        with Transport(settings) as transport, pytest.raises(ErpNetConfigError, match="backslash"):
            transport.get_json(url)
    assert foreign.requests == []
    assert [r.path for r in api.requests] == []
