"""ErpNetClient against the sandbox (count, get, service document, unknown entity sets) and
against stub servers for what the sandbox does not do (a server without ``/$count``)."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from airflow_provider_erpnet.client import (
    ErpNetApiError,
    ErpNetClient,
    ErpNetConfigError,
    ErpNetSettings,
    ErpNetTransportError,
)
from airflow_provider_erpnet.client.transport import Transport
from airflow_provider_erpnet.sandbox import Sandbox
from tests.client.helpers_servers import (
    Recorded,
    Reply,
    StubServer,
    fresh_token_cache,
    identity_then,
    json_reply,
)

__all__ = ["fresh_token_cache"]  # a fixture: imported so pytest finds it

CUSTOMERS = "Crm_Sales_Customers"
ORDERS = "Crm_Sales_SalesOrders"


def test_count_matches_the_dataset_and_the_rows_read(
    erpnet_sandbox: Sandbox, sandbox_settings: ErpNetSettings
) -> None:
    with ErpNetClient(sandbox_settings) as client:
        assert client.count(CUSTOMERS) == erpnet_sandbox.dataset.count(CUSTOMERS) == 1000
        released = client.count(ORDERS, filter="State eq 'Released'")
        read = sum(1 for _ in client.iter_records(ORDERS, filter="State eq 'Released'", select="Id"))
    assert 0 < released == read < erpnet_sandbox.dataset.count(ORDERS)


def test_get_returns_the_record_shaped_like_iter_records(
    erpnet_sandbox: Sandbox, sandbox_settings: ErpNetSettings
) -> None:
    row = erpnet_sandbox.dataset.rows(CUSTOMERS)[7]
    with ErpNetClient(sandbox_settings) as client:
        record = client.get(CUSTOMERS, uuid.UUID(row["Id"]), select="Id,Number,CreditLimit")
        listed = next(
            r
            for r in client.iter_records(CUSTOMERS, select="Id,Number,CreditLimit", page_size=10)
            if r["Id"] == row["Id"]
        )
    assert record == listed
    assert (record["Id"], record["Number"]) == (row["Id"], row["Number"])
    assert isinstance(record["CreditLimit"]["Value"], (Decimal, int))
    assert record["CreditLimit"]["Value"] == row["CreditLimit"]["Value"]


def test_get_with_expand_brings_child_rows(erpnet_sandbox: Sandbox, sandbox_settings: ErpNetSettings) -> None:
    row = erpnet_sandbox.dataset.rows(ORDERS)[3]
    with ErpNetClient(sandbox_settings) as client:
        record = client.get(ORDERS, row["Id"], select="Id,DocumentNo", expand="Lines")
    assert [line["LineNo"] for line in record["Lines"]] == [line["LineNo"] for line in row["Lines"]]


def test_get_of_a_missing_id_keeps_the_api_error(sandbox_settings: ErpNetSettings) -> None:
    with ErpNetClient(sandbox_settings) as client, pytest.raises(ErpNetApiError) as raised:
        client.get(CUSTOMERS, uuid.UUID(int=1))
    assert raised.value.status == 404
    assert "Unknown entity set" not in str(raised.value)


@pytest.mark.parametrize(
    "call",
    [
        lambda client: list(client.iter_records("Crm_Sales_Customer")),
        lambda client: client.count("Crm_Sales_Customer"),
        lambda client: client.get("Crm_Sales_Customer", uuid.UUID(int=1)),
    ],
    ids=["iter_records", "count", "get"],
)
def test_unknown_entity_set_names_the_closest_match(sandbox_settings: ErpNetSettings, call) -> None:
    with ErpNetClient(sandbox_settings) as client, pytest.raises(ErpNetApiError) as raised:
        call(client)
    error = raised.value
    assert error.status == 404 and error.entity_set == "Crm_Sales_Customer"
    assert str(error).startswith("Unknown entity set 'Crm_Sales_Customer'; did you mean Crm_Sales_Customers")
    assert isinstance(error.__cause__, ErpNetApiError)


@pytest.mark.parametrize("entity_set", ["Crm_Sales_Customers/../$metadata", "Crm Sales", "", "Set(1)"])
def test_bad_entity_set_names_are_refused_before_any_request(
    erpnet_sandbox: Sandbox, sandbox_settings: ErpNetSettings, entity_set: str
) -> None:
    with ErpNetClient(sandbox_settings) as client:
        erpnet_sandbox.reset_stats()
        for call in (
            lambda: client.get(entity_set, uuid.UUID(int=1)),
            lambda: client.count(entity_set),
            lambda: client.iter_pages(entity_set),
        ):
            with pytest.raises(ErpNetConfigError, match="not an entity set name"):
                call()
    assert erpnet_sandbox.stats()["api_requests"] == 0


@pytest.mark.parametrize("id", ["1", "Crm_Sales_Customers(1)", "'; drop"])
def test_ids_that_are_not_guids_are_refused_before_any_request(
    erpnet_sandbox: Sandbox, sandbox_settings: ErpNetSettings, id: str
) -> None:
    with ErpNetClient(sandbox_settings) as client:
        erpnet_sandbox.reset_stats()
        with pytest.raises(ErpNetConfigError, match="not a GUID"):
            client.get(CUSTOMERS, id)
    assert erpnet_sandbox.stats()["api_requests"] == 0


def test_service_document_and_cached_metadata(
    erpnet_sandbox: Sandbox, sandbox_settings: ErpNetSettings
) -> None:
    with ErpNetClient(sandbox_settings) as client:
        names = {entry["name"] for entry in client.service_document()["value"]}
        erpnet_sandbox.reset_stats()
        metadata = client.metadata()
        assert client.metadata() is metadata
        assert erpnet_sandbox.stats()["api_requests"] == 1
    assert names == set(metadata.entity_sets) >= {CUSTOMERS, ORDERS}


def test_a_shared_transport_is_left_open(sandbox_settings: ErpNetSettings) -> None:
    with Transport(sandbox_settings) as transport:
        with ErpNetClient(sandbox_settings, transport=transport) as first:
            first.count(CUSTOMERS)
        with ErpNetClient(sandbox_settings, transport=transport) as second:
            second.count(CUSTOMERS)
        assert transport.auth.tokens_requested == 1


def _stub_settings(api: StubServer) -> ErpNetSettings:
    return ErpNetSettings(
        instance_url=api.url, client_id="app", client_secret="s", disk_cache=False, max_attempts=1
    )


@pytest.mark.usefixtures("fresh_token_cache")
@pytest.mark.parametrize("refusal", [404, 400, 501])
def test_count_falls_back_to_inline_count_and_remembers(refusal: int) -> None:
    def api(request: Recorded) -> Reply:
        if request.path.endswith("/$count"):
            return json_reply({"error": {"code": "NotSupported", "message": "no $count segment"}}, refusal)
        assert "%24count=true" in request.query and "%24top=0" in request.query
        assert "%24filter=Active%20eq%20true" in request.query
        return json_reply({"@odata.count": 42, "value": []})

    with StubServer(identity_then(api)) as server, ErpNetClient(_stub_settings(server)) as client:
        assert client.count("Things", filter="Active eq true") == 42
        assert client.count("Things", filter="Active eq true") == 42
    paths = [r.path for r in server.requests if r.path.startswith("/api/")]
    assert paths == [
        "/api/domain/odata/Things/$count",
        "/api/domain/odata/Things",
        "/api/domain/odata/Things",
    ]


@pytest.mark.usefixtures("fresh_token_cache")
@pytest.mark.parametrize("body", [b"many", b"-1", b""])
def test_count_that_is_not_a_number_is_an_error(body: bytes) -> None:
    reply = Reply(200, body, content_type="text/plain")
    server = StubServer(identity_then(lambda request: reply))
    client = ErpNetClient(_stub_settings(server))
    with server, client, pytest.raises(ErpNetTransportError, match="not answer with a number"):
        client.count("Things")


@pytest.mark.usefixtures("fresh_token_cache")
def test_count_accepts_a_byte_order_mark_and_whitespace() -> None:
    reply = Reply(200, "\ufeff1234\r\n".encode(), content_type="text/plain")
    server = StubServer(identity_then(lambda request: reply))
    with server, ErpNetClient(_stub_settings(server)) as client:
        assert client.count("Things") == 1234
