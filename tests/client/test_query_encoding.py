"""Query options are encoded as RFC 3986 and OData specify, so a standard server reads what was meant.

The sandbox runs each end-to-end test twice: as ERP.net (which decodes ``+`` as a space, as HTML
forms do) and in strict mode (a standard OData v4 server, where ``+`` is a plus sign). A client
that encoded spaces as ``+`` passes the first and fails the second.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from urllib.parse import unquote

import pytest

from airflow_provider_erpnet.client import ErpNetApiError, ErpNetClient, ErpNetSettings, literal
from airflow_provider_erpnet.client.querystring import encode_query, with_query
from airflow_provider_erpnet.client.transport import Transport
from airflow_provider_erpnet.operators.windows import window_for
from airflow_provider_erpnet.sandbox import Sandbox
from tests.client.helpers_servers import (
    Recorded,
    Reply,
    StubServer,
    fresh_token_cache,  # noqa: F401  (fixture)
    identity_then,
    json_reply,
)

CUSTOMERS = "Crm_Sales_Customers"
ORDERS = "Crm_Sales_SalesOrders"
both_modes = pytest.mark.parametrize("strict", [False, True], ids=["erpnet", "strict"])
AWKWARD = "Name eq 'O''Brien & Sons+1 #2 = 100% (a/b)?' and Code in ('x,y')"


def test_spaces_are_percent_20_and_every_reserved_character_is_escaped() -> None:
    encoded = encode_query({"$filter": AWKWARD, "$top": "5"})
    assert encoded == (
        "%24filter=Name%20eq%20%27O%27%27Brien%20%26%20Sons%2B1%20%232%20%3D%20100%25%20"
        "%28a%2Fb%29%3F%27%20and%20Code%20in%20%28%27x%2Cy%27%29&%24top=5"
    )
    name, _, value = encoded.partition("&")[0].partition("=")
    assert (unquote(name), unquote(value)) == ("$filter", AWKWARD)
    assert with_query("http://h/s/Set", None) == "http://h/s/Set"
    assert with_query("http://h/s/Set?a=1", {"b": "x y"}) == "http://h/s/Set?a=1&b=x%20y"
    assert with_query("http://h/s/Set?", {"b": "2"}) == "http://h/s/Set?b=2"


@pytest.mark.usefixtures("fresh_token_cache")
def test_the_transport_sends_options_as_encoded_and_next_links_verbatim(tmp_path: Path) -> None:
    link = "Things?%24top=2&%24select=PartNumber%2cName&%24skiptoken=a+b%20c"
    pages = [json_reply({"value": [{"A": 1}], "@odata.nextLink": link}), json_reply({"value": []})]

    def api(request: Recorded) -> Reply:
        return pages.pop(0)

    with StubServer(identity_then(api)) as server:
        settings = ErpNetSettings(
            instance_url=server.url, client_id="app", client_secret="s", disk_cache=False
        )
        with ErpNetClient(settings) as client:
            list(client.iter_pages("Things", filter=AWKWARD, orderby="Name desc", page_size=2))
    first, second = (r for r in server.requests if r.path.startswith("/api/"))
    assert "+" not in first.query
    assert first.query == encode_query({"$filter": AWKWARD, "$orderby": "Name desc", "$top": "2"})
    # Verbatim, '+' included; urllib3 writes percent triplets in upper case (equivalent, RFC 3986 6.2.2.1).
    assert f"{second.path}?{second.query}" == f"/api/domain/odata/{link}".replace("%2c", "%2C")


@pytest.mark.usefixtures("fresh_token_cache")
def test_a_url_with_a_query_keeps_it(tmp_path: Path) -> None:
    with StubServer(identity_then(lambda request: json_reply({"value": []}))) as server:
        settings = ErpNetSettings(
            instance_url=server.url, client_id="app", client_secret="s", disk_cache=False
        )
        with Transport(settings) as transport:
            transport.get_json("Things?custom=1", {"$filter": "A eq 'b c'"})
    (request,) = (r for r in server.requests if r.path.startswith("/api/"))
    assert request.query == "custom=1&%24filter=A%20eq%20%27b%20c%27"


@both_modes
@pytest.mark.parametrize("next_links", [True, False], ids=["next-links", "skip"])
def test_filter_orderby_and_count_with_spaces(
    erpnet_sandbox: Sandbox, sandbox_settings: ErpNetSettings, strict: bool, next_links: bool
) -> None:
    erpnet_sandbox.set_faults(strict=strict, next_links=next_links)
    rows = erpnet_sandbox.dataset.rows(CUSTOMERS)
    text = "Number ge 'C0000100' and contains(Number,'C0') and Active eq true"
    expected = sorted(
        (r for r in rows if r["Number"] >= "C0000100" and "C0" in r["Number"] and r["Active"]),
        key=lambda r: (r["Number"], r["Id"]),
        reverse=True,
    )
    assert 100 < len(expected) < len(rows)
    with ErpNetClient(sandbox_settings) as client:
        records = list(
            client.iter_records(
                CUSTOMERS, filter=text, select="Id,Number", orderby="Number desc", page_size=40
            )
        )
        counted = client.count(CUSTOMERS, filter=text)
    assert [r["Number"] for r in records] == [r["Number"] for r in expected]
    assert counted == len(records) == len(expected)
    assert erpnet_sandbox.stats()["api_by_status"].keys() == {"200"}


@both_modes
def test_an_incremental_window_reads_the_rows_of_its_hour(
    erpnet_sandbox: Sandbox, sandbox_settings: ErpNetSettings, strict: bool
) -> None:
    erpnet_sandbox.set_faults(strict=strict)
    start = dt.datetime(2026, 6, 30, 10, tzinfo=dt.timezone.utc)
    window = window_for("AggregateLastUpdateTimeUtc", start, start + dt.timedelta(hours=6), dt.timedelta(0))
    low, high = literal(window.start), literal(window.end)
    expected = [
        r["Id"] for r in erpnet_sandbox.dataset.rows(ORDERS) if low <= r["AggregateLastUpdateTimeUtc"] <= high
    ]
    assert expected
    with ErpNetClient(sandbox_settings) as client:
        ids = [r["Id"] for r in client.iter_records(ORDERS, filter=window.filter(), select="Id")]
        assert client.count(ORDERS, filter=window.filter()) == len(expected)
    assert ids == expected


def test_a_bad_filter_shows_the_servers_real_complaint(
    erpnet_sandbox: Sandbox, sandbox_settings: ErpNetSettings
) -> None:
    """Encoded as a form, the strict server would only say it found a '+'."""
    erpnet_sandbox.set_faults(strict=True)
    with ErpNetClient(sandbox_settings) as client, pytest.raises(ErpNetApiError) as raised:
        client.count(CUSTOMERS, filter="Active eq true or Active eq false")
    assert "The operator 'or' is not supported" in str(raised.value)
    assert "'+'" not in str(raised.value)


def test_partition_plans_count_and_read_on_a_standard_server(
    erpnet_sandbox: Sandbox, sandbox_settings: ErpNetSettings
) -> None:
    """The planner's $count probes and each partition's reads carry filters with spaces too."""
    erpnet_sandbox.set_faults(strict=True)
    active = "Active eq true"
    expected = sorted(r["Id"] for r in erpnet_sandbox.dataset.rows(CUSTOMERS) if r["Active"])
    with ErpNetClient(sandbox_settings) as client:
        plan = client.plan_partitions(CUSTOMERS, 3, filter=active)
        read = [
            r["Id"]
            for p in plan
            for r in client.iter_records(CUSTOMERS, filter=f"({active}) and ({p.filter})", select="Id")
        ]
    assert plan[0].total == sum(p.count for p in plan) == len(expected)
    assert sorted(read) == expected
    assert erpnet_sandbox.stats()["api_by_status"].keys() == {"200"}
