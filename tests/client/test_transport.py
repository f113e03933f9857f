"""Transport against tiny local servers: auth header, retries, Retry-After, 401 refresh, error mapping."""

from __future__ import annotations

import gzip
import json
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from decimal import Decimal
from email.utils import format_datetime
from pathlib import Path

import pytest
import requests

from airflow_provider_erpnet.client.clock import SYSTEM_CLOCK, Clock, ManualClock
from airflow_provider_erpnet.client.errors import (
    ErpNetApiError,
    ErpNetAuthError,
    ErpNetConfigError,
    ErpNetTransportError,
)
from airflow_provider_erpnet.client.retry import retry_after_seconds
from airflow_provider_erpnet.client.settings import ErpNetSettings
from airflow_provider_erpnet.client.transport import Transport
from airflow_provider_erpnet.sandbox import DEFAULT_CLIENT_ID, DEFAULT_SECRET, Sandbox
from tests.client.helpers_servers import (
    FakeIdentity,
    Handler,
    Recorded,
    Reply,
    SilentServer,
    StubServer,
    assert_no_leak,
    fresh_token_cache,  # noqa: F401  (fixture)
    html_reply,
    identity_then,
    json_reply,
    refused_port_url,
)

pytestmark = pytest.mark.usefixtures("fresh_token_cache")

SECRET = "transport-secret-91c"
API = "/api/domain/odata/"
OK = json_reply({"value": []})


def settings_for(url: str, tmp_path: Path, **changes: object) -> ErpNetSettings:
    values: dict[str, object] = {
        "instance_url": url,
        "client_id": "my.trusted.app/first",
        "client_secret": SECRET,
        "disk_cache_dir": str(tmp_path / "tokens"),
        "max_wait": 0.05,
    }
    values.update(changes)
    return ErpNetSettings(**values)  # type: ignore[arg-type]


def scripted(*replies: Reply, then: Reply = OK) -> Callable[[Recorded], Reply]:
    """API handler answering ``replies`` in order, then ``then`` forever."""
    queue = list(replies)
    return lambda request: queue.pop(0) if queue else then


@contextmanager
def stub_api(
    tmp_path: Path,
    api: Handler,
    identity: FakeIdentity | None = None,
    *,
    clock: Clock = SYSTEM_CLOCK,
    **changes: object,
) -> Iterator[tuple[StubServer, Transport]]:
    """A stub instance (identity under /id, ``api`` elsewhere) and a transport talking to it."""
    with (
        StubServer(identity_then(api, identity)) as server,
        Transport(settings_for(server.url, tmp_path, **changes), clock=clock) as transport,
    ):
        yield server, transport


def api_requests(server: StubServer) -> list[Recorded]:
    return [r for r in server.requests if r.path.startswith(API)]


def test_get_json_keeps_decimals_exact_and_sends_the_token_only_in_the_header(tmp_path: Path) -> None:
    body = (
        b'{"value": [{"Amount": 123456789012345678.123456789012345678, "Rate": 0.1, "Big": 1.10, "Qty": 3}]}'
    )
    identity = FakeIdentity()
    with stub_api(tmp_path, scripted(then=Reply(body=body)), identity) as (server, transport):
        doc = transport.get_json("Crm_Sales_Customers", {"$top": "1"}, entity_set="Crm_Sales_Customers")
    row = doc["value"][0]
    assert row["Amount"] == Decimal("123456789012345678.123456789012345678")
    assert str(row["Amount"]) == "123456789012345678.123456789012345678"
    assert (row["Rate"], str(row["Big"]), row["Qty"]) == (Decimal("0.1"), "1.10", 3)
    assert type(row["Qty"]) is int
    (request,) = api_requests(server)
    assert (request.path, request.query) == (f"{API}Crm_Sales_Customers", "%24top=1")
    assert request.headers["Authorization"] == f"Bearer {identity.issued[0]}"
    assert request.headers["User-Agent"].startswith("airflow-provider-erpnet/")
    assert request.headers["Accept"] == "application/json"
    assert identity.issued[0] not in request.path + request.query


def test_one_401_refreshes_the_token_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    identity = FakeIdentity()
    unauthorized = json_reply({"error": {"code": "Unauthorized", "message": "expired"}}, status=401)
    with stub_api(tmp_path, scripted(unauthorized), identity) as (server, transport):
        assert transport.get_json("Crm_Sales_Customers") == {"value": []}
    first, second = api_requests(server)
    assert first.headers["Authorization"] != second.headers["Authorization"]
    assert second.headers["Authorization"] == f"Bearer {identity.issued[1]}"
    assert len(identity.issued) == 2
    assert_no_leak(Exception(), caplog.text, SECRET, *identity.issued)


def test_a_second_401_is_an_auth_error(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    identity = FakeIdentity()
    unauthorized = json_reply({"message": "nope"}, status=401)
    with (
        stub_api(tmp_path, scripted(then=unauthorized), identity) as (server, transport),
        pytest.raises(ErpNetAuthError, match="401 for Crm_Sales_Customers") as info,
    ):
        transport.get_json("Crm_Sales_Customers", entity_set="Crm_Sales_Customers")
    assert info.value.status == 401
    assert len(api_requests(server)) == 2
    assert_no_leak(info.value, caplog.text, SECRET, *identity.issued)


@pytest.mark.parametrize(
    ("retry_after", "expected_wait"),
    [("1", 1.0), ("3600", 0.05), ("soon", None)],
    ids=["seconds", "capped-at-max_wait", "unparsable-falls-back-to-backoff"],
)
def test_retry_after_seconds_is_honoured(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, retry_after: str, expected_wait: float | None
) -> None:
    caplog.set_level(logging.INFO)
    throttled = json_reply(
        {"error": {"code": "TooMany", "message": "slow down"}}, 429, {"Retry-After": retry_after}
    )
    max_wait = 2 if expected_wait == 1.0 else 0.05
    with stub_api(tmp_path, scripted(throttled), max_wait=max_wait) as (_, transport):
        assert transport.get_json("Crm_Sales_Customers") == {"value": []}
        assert transport.retries == 1
    (wait,) = retry_waits(caplog)
    if expected_wait is None:
        assert 0 <= wait <= 0.05
    else:
        assert wait == expected_wait


def test_retry_after_http_date_is_honoured(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The date is counted from the transport's clock, which also does the waiting: no real sleep."""
    caplog.set_level(logging.INFO)
    clock = ManualClock()
    when = format_datetime(datetime.fromtimestamp(clock.time() + 7, timezone.utc), usegmt=True)
    throttled = json_reply({"message": "slow down"}, 429, {"Retry-After": when})
    with stub_api(tmp_path, scripted(throttled), max_wait=10, clock=clock) as (_, transport):
        assert transport.get_json("Crm_Sales_Customers") == {"value": []}
        assert transport.retries == 1
    assert retry_waits(caplog) == [7.0]
    assert clock.slept == [7.0]


def test_retry_after_parsing() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc).timestamp()
    assert retry_after_seconds("7", now=now) == 7.0
    assert retry_after_seconds(" 0 ", now=now) == 0.0
    assert retry_after_seconds("Thu, 01 Jan 2026 12:00:30 GMT", now=now) == 30.0
    assert retry_after_seconds("Thu, 01 Jan 2026 11:59:00 GMT", now=now) == 0.0  # in the past
    for invalid in (None, "", "-5", "1.5", "later", "Thu, 01 Jan 2026 12:00:30"):
        assert retry_after_seconds(invalid, now=now) is None


@pytest.mark.parametrize(
    "fault",
    [
        json_reply({"error": {"code": "", "message": "busy"}}, 503),
        json_reply({"message": "bad gateway"}, 502),
        json_reply({"message": "gateway timeout"}, 504),
        Reply(drop=True),
        Reply(body=json.dumps({"value": [{"Id": "x" * 200}]}).encode(), cut_to=50),
    ],
    ids=["503", "502", "504", "drop", "truncate"],
)
def test_transient_faults_are_retried_to_success(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, fault: Reply
) -> None:
    caplog.set_level(logging.INFO)
    with stub_api(tmp_path, scripted(fault, fault)) as (server, transport):
        assert transport.get_json("Crm_Sales_Customers") == {"value": []}
        assert transport.retries == 2
    assert len(api_requests(server)) == 3
    assert "attempt 2 of 8 failed" in caplog.text


def test_exhausted_503_names_attempts_and_status(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    busy = json_reply({"error": {"code": "ServiceUnavailable", "message": "busy", "type": "X.Busy"}}, 503)
    identity = FakeIdentity()
    with (
        stub_api(tmp_path, scripted(then=busy), identity, max_attempts=3) as (server, transport),
        pytest.raises(ErpNetApiError) as info,
    ):
        transport.get_json("Crm_Sales_Customers", entity_set="Crm_Sales_Customers")
    error = info.value
    assert (error.status, error.code, error.error_type, error.server_message) == (
        503,
        "ServiceUnavailable",
        "X.Busy",
        "busy",
    )
    assert "Gave up after 3 attempts; the last answer was 503" in str(error)
    assert len(api_requests(server)) == 3
    assert_no_leak(error, caplog.text, SECRET, *identity.issued)


def test_always_truncated_body_is_a_transport_error(tmp_path: Path) -> None:
    cut = Reply(body=b'{"value": [1, 2, 3, 4, 5, 6, 7, 8]}', cut_to=5)
    with (
        stub_api(tmp_path, scripted(then=cut), max_attempts=2) as (_, transport),
        pytest.raises(ErpNetTransportError, match="cut off its answer 2 attempts in a row"),
    ):
        transport.get_json("Crm_Sales_Customers")


@pytest.mark.parametrize(
    "cut",
    [
        Reply(body=b'{"value": [1, 2, 3, 4, 5, 6, 7, 8]}', cut_to=11),
        Reply(body=gzip.compress(b'{"value": []}' * 100), headers={"Content-Encoding": "gzip"}, cut_to=20),
    ],
    ids=["plain", "gzip"],
)
def test_a_body_cut_short_is_retried_then_explained(tmp_path: Path, cut: Reply) -> None:
    """Shorter than its Content-Length, or a gzip stream without its end: another attempt may do."""
    with (
        stub_api(tmp_path, scripted(cut, then=cut), max_attempts=3) as (server, transport),
        pytest.raises(ErpNetTransportError, match="cut off its answer 3 attempts in a row"),
    ):
        transport.get_json("Crm_Sales_Customers")
    assert len(api_requests(server)) == 3


def test_a_body_cut_once_succeeds_on_the_next_attempt(tmp_path: Path) -> None:
    cut = Reply(body=b'{"value": [1, 2, 3, 4, 5, 6, 7, 8]}', cut_to=11)
    with stub_api(tmp_path, scripted(cut), max_attempts=2) as (server, transport):
        assert transport.get_json("Crm_Sales_Customers") == {"value": []}
    assert len(api_requests(server)) == 2


@pytest.mark.parametrize(
    "body",
    [
        {"error": {"code": "E42", "message": "Entity set renamed", "type": "Aloe.Some.Exception"}},
        {"code": "E42", "message": "Entity set renamed", "type": "Aloe.Some.Exception", "info": "x"},
    ],
    ids=["wrapped", "top-level"],
)
def test_both_error_envelopes_are_read(tmp_path: Path, body: dict[str, object]) -> None:
    with (
        stub_api(tmp_path, scripted(then=json_reply(body, 500))) as (server, transport),
        pytest.raises(ErpNetApiError) as info,
    ):
        transport.get_json("Crm_Sales_Customers", entity_set="Crm_Sales_Customers")
    error = info.value
    assert (error.status, error.code, error.server_message, error.error_type) == (
        500,
        "E42",
        "Entity set renamed",
        "Aloe.Some.Exception",
    )
    assert error.entity_set == "Crm_Sales_Customers"
    assert "answered 500 for Crm_Sales_Customers" in str(error)
    assert "Entity set renamed (code E42, type Aloe.Some.Exception)" in str(error)
    assert len(api_requests(server)) == 1  # not retried


@pytest.mark.parametrize(
    ("status", "hint"),
    [(400, "check $filter"), (403, "lacks the scope"), (404, "check the entity set name against $metadata")],
)
def test_status_hints(tmp_path: Path, status: int, hint: str) -> None:
    odata_error = json_reply({"error": {"code": "", "message": "The server says no"}}, status)
    with (
        stub_api(tmp_path, scripted(then=odata_error)) as (_, transport),
        pytest.raises(ErpNetApiError) as info,
    ):
        transport.get_json("Crm_Sales_Customers", entity_set="Crm_Sales_Customers")
    assert info.value.code is None
    assert info.value.server_message == "The server says no"
    assert hint in str(info.value)


def test_long_queries_are_shortened_in_errors(tmp_path: Path) -> None:
    long_filter = "Number eq '" + "9" * 600 + "'"
    with (
        stub_api(tmp_path, scripted(then=json_reply({"message": "bad"}, 400))) as (_, transport),
        pytest.raises(ErpNetApiError) as info,
    ):
        transport.get_json("Crm_Sales_Customers", {"$filter": long_filter})
    assert "9" * 100 not in str(info.value)
    assert info.value.url is not None and "chars)" in info.value.url


@pytest.mark.parametrize("method", ["get", "get_json"])
def test_html_answer_is_not_the_domain_api(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, method: str
) -> None:
    caplog.set_level(logging.DEBUG)
    identity = FakeIdentity()
    with (
        stub_api(tmp_path, scripted(then=html_reply()), identity) as (_, transport),
        pytest.raises(ErpNetTransportError, match=r"does not look like the ERP\.net Domain API") as info,
    ):
        getattr(transport, method)("Crm_Sales_Customers")
    assert "api_url" in str(info.value)
    assert_no_leak(info.value, caplog.text, SECRET, *identity.issued)


def test_html_error_page_is_an_api_error_that_says_so(tmp_path: Path) -> None:
    with (
        stub_api(tmp_path, scripted(then=html_reply(404))) as (_, transport),
        pytest.raises(ErpNetApiError, match="an HTML page instead of an OData error") as info,
    ):
        transport.get_json("Nope")
    assert info.value.status == 404


def test_xml_accept_passes_through(tmp_path: Path) -> None:
    edmx = Reply(body=b"<edmx:Edmx Version='4.0'/>", content_type="application/xml")
    with stub_api(tmp_path, scripted(then=edmx)) as (server, transport):
        response = transport.get("$metadata", accept="application/xml")
    assert response.content == b"<edmx:Edmx Version='4.0'/>"
    assert api_requests(server)[0].headers["Accept"] == "application/xml"


def test_token_is_never_sent_to_another_origin(tmp_path: Path) -> None:
    with (
        StubServer(scripted()) as other,
        stub_api(tmp_path, scripted()) as (_, transport),
        pytest.raises(ErpNetConfigError, match="Refusing to send the access token"),
    ):
        transport.get_json(f"{other.url}{API}Crm_Sales_Customers")
    assert other.requests == []


def test_api_read_timeout_retries_a_few_times_then_explains(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    identity = FakeIdentity()
    with (
        SilentServer() as silent,
        stub_api(tmp_path, scripted(), identity, api_url=f"{silent.url}{API}", read_timeout=0.2) as (
            _,
            transport,
        ),
        pytest.raises(ErpNetTransportError) as info,
    ):
        transport.get_json("Crm_Sales_Customers")
    message = str(info.value)
    assert "read timed out after 0.2 s (3 attempts)" in message  # capped below max_attempts=8
    assert "read_timeout" in message and "page_size" in message
    assert_no_leak(info.value, caplog.text, SECRET, *identity.issued)


def test_unreachable_api(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    identity = FakeIdentity()
    with (
        refused_port_url() as closed,
        stub_api(tmp_path, scripted(), identity, api_url=f"{closed}{API}", max_attempts=2) as (_, transport),
        pytest.raises(ErpNetTransportError) as info,
    ):
        transport.get_json("Crm_Sales_Customers")
    message = str(info.value)
    assert closed.removeprefix("http://") in message and "api_url" in message and "2 attempts" in message
    assert len(identity.issued) == 1
    assert_no_leak(info.value, caplog.text, SECRET, *identity.issued)


def retry_waits(caplog: pytest.LogCaptureFixture) -> list[float]:
    """The wait (seconds) each retry log line announced."""
    return [float(r.args[-1]) for r in caplog.records if "retrying in" in r.getMessage()]  # type: ignore[index]


def sandbox_transport(sandbox: Sandbox, tmp_path: Path, **changes: object) -> Transport:
    defaults: dict[str, object] = {"client_id": DEFAULT_CLIENT_ID, "client_secret": DEFAULT_SECRET}
    return Transport(settings_for(sandbox.base_url, tmp_path, **{**defaults, **changes}))


def test_sandbox_faults_are_retried_to_success(
    erpnet_sandbox_factory: Callable[..., Sandbox], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sandbox = erpnet_sandbox_factory(
        rate_429=0.15, retry_after=0, rate_503=0.15, rate_drop=0.1, rate_truncate=0.1
    )
    with sandbox_transport(sandbox, tmp_path) as transport:
        pages = [
            transport.get_json("Crm_Sales_Customers", {"$top": "20", "$skip": str(20 * n)}) for n in range(25)
        ]
        token = transport.auth.token()
    assert all(len(page["value"]) == 20 for page in pages)
    faults = sandbox.stats()["faults_injected"]
    assert all(faults[kind] > 0 for kind in ("429", "503", "drop", "truncate")), faults
    assert transport.retries == sum(faults.values())  # each fault cost exactly one retry
    assert sandbox.stats()["tokens_issued"] == 1
    assert_no_leak(Exception(), caplog.text, DEFAULT_SECRET, token)


def test_sandbox_retry_after_is_honoured_then_exhausted(
    erpnet_sandbox_factory: Callable[..., Sandbox], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    sandbox = erpnet_sandbox_factory(rate_429=1.0, retry_after=1)
    with sandbox_transport(sandbox, tmp_path, max_attempts=2, max_wait=5) as transport:
        with pytest.raises(ErpNetApiError, match="Gave up after 2 attempts; the last answer was 429") as info:
            transport.get_json("Crm_Sales_Customers", {"$top": "1"}, entity_set="Crm_Sales_Customers")
        assert retry_waits(caplog) == [1.0]
        sandbox.set_faults(rate_429=0.0)
        assert len(transport.get_json("Crm_Sales_Customers", {"$top": "1"})["value"]) == 1
    assert info.value.status == 429


def test_sandbox_revoke_mid_run_costs_exactly_one_token(erpnet_sandbox: Sandbox, tmp_path: Path) -> None:
    transports = [sandbox_transport(erpnet_sandbox, tmp_path) for _ in range(8)]
    try:
        for transport in transports:
            transport.get_json("Crm_Sales_Customers", {"$top": "1"})
        assert erpnet_sandbox.stats()["tokens_issued"] == 1
        erpnet_sandbox.revoke_tokens()
        start = threading.Barrier(len(transports))

        def read(transport: Transport) -> None:
            start.wait()
            for _ in range(3):
                transport.get_json("Crm_Sales_Customers", {"$top": "1"})

        threads = [threading.Thread(target=read, args=(t,)) for t in transports]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for transport in transports:
            transport.close()
    stats = erpnet_sandbox.stats()
    assert stats["tokens_issued"] == 2
    assert stats["api_by_status"]["200"] == len(transports) * 4
    assert 1 <= stats["api_by_status"]["401"] <= len(transports)


def test_sandbox_missing_scope_is_a_403_with_the_scope_hint(erpnet_sandbox: Sandbox, tmp_path: Path) -> None:
    with (
        sandbox_transport(erpnet_sandbox, tmp_path, client_id="my.trusted.app/writeonly") as transport,
        pytest.raises(ErpNetApiError, match="lacks the scope") as info,
    ):
        transport.get_json("Crm_Sales_Customers", {"$top": "1"}, entity_set="Crm_Sales_Customers")
    assert info.value.status == 403
    assert info.value.entity_set == "Crm_Sales_Customers"


def test_sandbox_unknown_entity_set_is_a_404_with_a_hint(erpnet_sandbox: Sandbox, tmp_path: Path) -> None:
    with (
        sandbox_transport(erpnet_sandbox, tmp_path) as transport,
        pytest.raises(ErpNetApiError, match="check the entity set name") as info,
    ):
        transport.get_json("Crm_Sales_Customerz", entity_set="Crm_Sales_Customerz")
    assert info.value.status == 404
    assert info.value.server_message


def test_a_session_passed_in_is_used_but_never_changed(tmp_path: Path) -> None:
    """The caller's session keeps its headers and TLS setting; ours travel with each request."""
    session = requests.Session()
    session.headers["User-Agent"] = "caller-agent/1"
    headers_before = dict(session.headers)
    identity = FakeIdentity()
    with StubServer(identity_then(scripted(), identity)) as server:
        settings = settings_for(server.url, tmp_path, verify_tls=False)
        with Transport(settings, session=session) as transport:
            transport.get_json("Crm_Sales_Customers")
        assert (dict(session.headers), session.verify) == (headers_before, True)
        agents = {request.headers["User-Agent"] for request in server.requests}
    assert len(server.requests) >= 2  # the token request and the GET
    assert agents == {settings.user_agent}
    session.close()
