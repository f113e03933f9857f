"""Next links are followed verbatim, and never to another origin: the bearer token stays home.

A stub "Domain API" (which also serves discovery and tokens) answers page 1 with a next link chosen
by the test; a second stub records whatever reaches it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from airflow_provider_erpnet.client import (
    ErpNetClient,
    ErpNetConfigError,
    ErpNetSettings,
    ErpNetTransportError,
)
from airflow_provider_erpnet.client.transport import Transport
from airflow_provider_erpnet.client.urls import origin
from tests.client.helpers_servers import (
    Recorded,
    StubServer,
    fresh_token_cache,
    identity_then,
    json_reply,
)

__all__ = ["fresh_token_cache"]  # a fixture: imported so pytest finds it

pytestmark = pytest.mark.usefixtures("fresh_token_cache")


def _client(api: StubServer) -> ErpNetClient:
    settings = ErpNetSettings(
        instance_url=api.url,
        client_id="my.trusted.app/first",
        client_secret="stub-secret",
        api_url=f"{api.url}/odata/",
        disk_cache=False,
        max_attempts=1,
    )
    return ErpNetClient(settings)


def _api_requests(api: StubServer) -> list[Recorded]:
    return [r for r in api.requests if r.path.startswith("/odata/")]


def _pages(route: Callable[[Recorded], dict]) -> StubServer:
    """A stub API answering each OData GET with ``route(request)`` as JSON."""
    return StubServer(identity_then(lambda request: json_reply(route(request))))


@pytest.fixture
def recorder() -> Iterator[StubServer]:
    with StubServer(lambda request: json_reply({"value": [{"Id": "stolen"}]})) as server:
        yield server


@pytest.mark.parametrize(
    "foreign",
    [
        "http://127.0.0.1:{recorder}/odata/Things?$skiptoken=1",  # same host, other port
        "http://localhost:{recorder}/odata/Things?$skiptoken=1",  # other host name
        "https://127.0.0.1:{api}/odata/Things?$skiptoken=1",  # same host and port, other scheme
    ],
)
def test_next_link_to_another_origin_is_refused_before_any_request(
    recorder: StubServer, foreign: str
) -> None:
    links: list[str] = []
    with _pages(lambda request: {"value": [{"Id": "a"}, {"Id": "b"}], "@odata.nextLink": links[0]}) as api:
        api_port = api.url.rsplit(":", 1)[1]
        recorder_port = recorder.url.rsplit(":", 1)[1]
        links.append(foreign.format(recorder=recorder_port, api=api_port))
        with _client(api) as client:
            pages = client.iter_pages("Things", page_size=2)
            assert len(next(pages).records) == 2
            with pytest.raises(ErpNetConfigError) as raised:
                next(pages)
        assert len(_api_requests(api)) == 1
    assert recorder.requests == []
    message = str(raised.value)
    assert "Things" in message and "not the configured Domain API origin" in message
    foreign_origin = links[0].split("/odata/")[0]
    scheme, host_port = foreign_origin.split("://")
    assert f"{scheme}://{host_port}" in message


def test_same_origin_next_link_is_followed_verbatim_with_the_token() -> None:
    # The link is opaque: options, order and escapes reach the server as sent. requests upper-cases
    # percent-escapes (%2c -> %2C), an equivalent spelling under RFC 3986 section 6.2.2.1.
    link_query = "%24top=2&%24select=PartNumber%2cName&%24skiptoken=d8372f13"
    sent_query = "%24top=2&%24select=PartNumber%2CName&%24skiptoken=d8372f13"

    def route(request: Recorded) -> dict:
        if request.query == sent_query:
            return {"value": [{"Id": "c"}]}
        return {
            "value": [{"Id": "a"}, {"Id": "b"}],
            "@odata.nextLink": f"{api.url}/odata/Things?{link_query}",
        }

    with _pages(route) as api, _client(api) as client:
        records = client.iter_records("Things", page_size=2, select="PartNumber,Name")
        assert [record["Id"] for record in records] == ["a", "b", "c"]
    first, second = _api_requests(api)
    assert first.path == "/odata/Things" and "%24top=2" in first.query
    assert (second.path, second.query) == ("/odata/Things", sent_query)
    token = first.headers["Authorization"]
    assert token.startswith("Bearer stub-token") and second.headers["Authorization"] == token


def test_relative_next_link_resolves_against_the_service_root() -> None:
    def route(request: Recorded) -> dict:
        if "skiptoken" in request.query:
            return {"value": [{"Id": "b"}]}
        return {"value": [{"Id": "a"}], "@odata.nextLink": "Things?$top=1&$skiptoken=a"}

    with _pages(route) as api, _client(api) as client:
        assert [r["Id"] for r in client.iter_records("Things", page_size=1)] == ["a", "b"]
    second = _api_requests(api)[1]
    assert (second.path, second.query) == ("/odata/Things", "$top=1&$skiptoken=a")


def test_a_repeated_next_link_stops_instead_of_looping() -> None:
    def route(request: Recorded) -> dict:
        return {"value": [{"Id": "a"}], "@odata.nextLink": f"{api.url}/odata/Things?$skiptoken=a"}

    with _pages(route) as api, _client(api) as client, pytest.raises(ErpNetTransportError, match="twice"):
        list(client.iter_pages("Things", page_size=1))
    assert len(_api_requests(api)) == 2


@pytest.mark.parametrize(
    "body",
    [{"items": []}, [1, 2], {"value": [], "@odata.nextLink": 5}],
    ids=["no value list", "not an object", "non-string next link"],
)
def test_a_body_that_is_not_an_odata_collection_is_an_error(body: object) -> None:
    api = StubServer(identity_then(lambda request: json_reply(body)))
    with api, _client(api) as client, pytest.raises(ErpNetTransportError, match="Page 1 of Things"):
        list(client.iter_pages("Things"))


def test_paging_stops_at_a_page_without_a_next_link_once_links_were_sent() -> None:
    """A server that sends next links omits one only on the last page, even a full one."""

    def route(request: Recorded) -> dict:
        if "skiptoken" in request.query:
            return {"value": [{"Id": "c"}, {"Id": "d"}]}
        return {"value": [{"Id": "a"}, {"Id": "b"}], "@odata.nextLink": "Things?$top=2&$skiptoken=b"}

    with _pages(route) as api, _client(api) as client:
        assert [p.number for p in client.iter_pages("Things", page_size=2)] == [1, 2]
    assert len(_api_requests(api)) == 2


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://Demo.My.ERP.net/api/domain/odata/", ("https", "demo.my.erp.net", 443)),
        ("HTTP://127.0.0.1/odata/Things?$skiptoken=1", ("http", "127.0.0.1", 80)),
        ("http://user:pw@127.0.0.1:8080/odata/", ("http", "127.0.0.1", 8080)),
    ],
)
def test_origin_is_scheme_host_and_port_with_defaults_filled_in(url: str, expected: tuple) -> None:
    assert origin(url) == expected
    assert origin(url) == origin(f"{expected[0]}://{expected[1]}:{expected[2]}/elsewhere")


def test_a_url_with_an_invalid_port_is_refused_before_any_request() -> None:
    settings = ErpNetSettings(
        instance_url="http://127.0.0.1:9",
        client_id="app",
        client_secret="stub-secret",
        disk_cache=False,
    )
    with Transport(settings) as transport, pytest.raises(ErpNetConfigError, match="invalid port") as raised:
        transport.get_json("http://user:pw@127.0.0.1:99999/api/domain/odata/Things")
    assert "pw" not in str(raised.value)
    assert transport.auth.tokens_requested == 0
