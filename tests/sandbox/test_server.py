"""The HTTP server: bearer checks in front of the Domain API, routing, admin, stats and lifecycle."""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPConnection

import psutil
import pytest
import requests

from airflow_provider_erpnet.client.clock import ManualClock
from airflow_provider_erpnet.sandbox import DEFAULT_CLIENT_ID, DEFAULT_SECRET, Sandbox

CUSTOMERS = "Crm_Sales_Customers"
TokenFor = Callable[..., str]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_seed_api_request_returns_a_page_and_a_next_link(
    erpnet_sandbox: Sandbox, http: requests.Session, token_for: TokenFor
) -> None:
    response = http.get(
        f"{erpnet_sandbox.api_url}{CUSTOMERS}?$top=10", headers=bearer(token_for(erpnet_sandbox))
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["value"]) == 10
    assert body["@odata.nextLink"].startswith(f"{erpnet_sandbox.api_url}{CUSTOMERS}?")
    follow = http.get(body["@odata.nextLink"], headers=bearer(token_for(erpnet_sandbox)))
    assert follow.status_code == 200
    assert {row["@odata.id"] for row in follow.json()["value"]}.isdisjoint(
        row["@odata.id"] for row in body["value"]
    )


@pytest.mark.parametrize("authorization", [None, "Bearer", "Bearer not.a.jwt", "Basic Zm9vOmJhcg=="])
def test_missing_or_garbage_token_gets_401(
    erpnet_sandbox: Sandbox, http: requests.Session, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = http.get(f"{erpnet_sandbox.api_url}{CUSTOMERS}?$top=1", headers=headers)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["error"]["message"]
    if authorization == "Bearer not.a.jwt":
        assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_expired_token_gets_401_with_invalid_token(
    erpnet_sandbox_factory, http: requests.Session, token_for: TokenFor
) -> None:
    clock = ManualClock()
    sandbox = erpnet_sandbox_factory(token_lifetime=1, clock=clock)
    token = token_for(sandbox)
    assert http.get(f"{sandbox.api_url}{CUSTOMERS}?$top=1", headers=bearer(token)).status_code == 200
    clock.advance(1)

    response = http.get(f"{sandbox.api_url}{CUSTOMERS}?$top=1", headers=bearer(token))

    assert response.status_code == 401
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer error="invalid_token"')
    assert "expired" in challenge


def test_token_of_another_sandbox_is_refused(
    erpnet_sandbox_factory, http: requests.Session, token_for: TokenFor
) -> None:
    first, second = erpnet_sandbox_factory(), erpnet_sandbox_factory()
    response = http.get(f"{second.api_url}{CUSTOMERS}?$top=1", headers=bearer(token_for(first)))
    assert response.status_code == 401


def test_token_without_read_scope_gets_403(
    erpnet_sandbox: Sandbox, http: requests.Session, token_for: TokenFor
) -> None:
    token = token_for(erpnet_sandbox, client_id="my.trusted.app/writeonly")
    response = http.get(f"{erpnet_sandbox.api_url}{CUSTOMERS}?$top=1", headers=bearer(token))
    assert response.status_code == 403


def test_revoked_tokens_get_401_and_new_ones_work(
    erpnet_sandbox: Sandbox, http: requests.Session, token_for: TokenFor
) -> None:
    url = f"{erpnet_sandbox.api_url}{CUSTOMERS}?$top=1"
    old = token_for(erpnet_sandbox)
    assert http.get(url, headers=bearer(old)).status_code == 200

    assert erpnet_sandbox.revoke_tokens() == 1
    assert http.get(url, headers=bearer(old)).status_code == 401
    fresh = token_for(erpnet_sandbox)
    assert http.get(url, headers=bearer(fresh)).status_code == 200

    assert http.post(f"{erpnet_sandbox.base_url}/admin/revoke-tokens").json() == {"revoked": 1}
    assert http.get(url, headers=bearer(fresh)).status_code == 401


def test_error_shape_follows_the_envelope_switch(erpnet_sandbox: Sandbox, http: requests.Session) -> None:
    url = f"{erpnet_sandbox.api_url}{CUSTOMERS}"
    assert "message" in http.get(url).json()["error"]
    erpnet_sandbox.set_faults(error_envelope=False)
    body = http.get(url).json()
    assert body["message"]
    assert "error" not in body


def test_service_root_metadata_and_auto_discovery(
    erpnet_sandbox: Sandbox, http: requests.Session, token_for: TokenFor
) -> None:
    headers = bearer(token_for(erpnet_sandbox))
    service = http.get(erpnet_sandbox.api_url, headers=headers)
    metadata = http.get(f"{erpnet_sandbox.api_url}$metadata", headers=headers)
    sites = http.get(f"{erpnet_sandbox.base_url}/sys/auto-discovery").json()["WebSites"]

    assert service.status_code == 200
    assert CUSTOMERS in service.text
    assert metadata.status_code == 200
    assert b"Edmx" in metadata.content
    assert {site["Type"]: site["Url"] for site in sites} == {
        "ID": erpnet_sandbox.identity_url,
        "DomainAPI": f"{erpnet_sandbox.base_url}/api",
    }
    assert sites[1]["AdditionalProperties"]["ODataServiceRoot"] == erpnet_sandbox.api_url


@pytest.mark.parametrize("path", ["/", "/id/connect/authorize", "/api/other", "/admin/nothing"])
def test_unknown_paths_get_404(erpnet_sandbox: Sandbox, http: requests.Session, path: str) -> None:
    response = http.get(f"{erpnet_sandbox.base_url}{path}")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_stats_count_tokens_and_statuses(
    erpnet_sandbox: Sandbox, http: requests.Session, token_for: TokenFor
) -> None:
    token = token_for(erpnet_sandbox)
    token_for(erpnet_sandbox, client_id="my.trusted.app/readonly")
    http.post(f"{erpnet_sandbox.identity_url}/connect/token", data={"grant_type": "client_credentials"})
    for _ in range(3):
        http.get(f"{erpnet_sandbox.api_url}{CUSTOMERS}?$top=1", headers=bearer(token))
    http.get(f"{erpnet_sandbox.api_url}{CUSTOMERS}?$top=1")

    stats = http.get(f"{erpnet_sandbox.base_url}/admin/stats").json()
    assert stats == {
        "tokens_issued": 2,
        "tokens_issued_by_client": {DEFAULT_CLIENT_ID: 1, "my.trusted.app/readonly": 1},
        "token_errors": {"invalid_request": 1},
        "api_requests": 4,
        "api_by_status": {"200": 3, "401": 1},
        "faults_injected": {"429": 0, "503": 0, "drop": 0, "truncate": 0},
        "rows_touched": 0,
        "rows_created": 0,
        "rows_deleted": 0,
    }
    assert erpnet_sandbox.stats() == stats

    reset = http.post(f"{erpnet_sandbox.base_url}/admin/stats/reset").json()
    assert reset["tokens_issued"] == 0
    assert reset["api_by_status"] == {}
    erpnet_sandbox.reset_stats()


def test_requests_share_one_keep_alive_connection(erpnet_sandbox: Sandbox) -> None:
    connection = HTTPConnection("127.0.0.1", erpnet_sandbox.port, timeout=10)
    try:
        form = f"client_id={DEFAULT_CLIENT_ID}&client_secret={DEFAULT_SECRET}&grant_type=client_credentials"
        connection.request(
            "POST",
            "/id/connect/token",
            body=form,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        token = json.loads(connection.getresponse().read())["access_token"]
        first_socket = connection.sock
        for _ in range(3):
            connection.request("GET", f"/api/domain/odata/{CUSTOMERS}?$top=2", headers=bearer(token))
            response = connection.getresponse()
            assert response.status == 200
            assert len(json.loads(response.read())["value"]) == 2
            assert connection.sock is first_socket
    finally:
        connection.close()


def test_concurrent_clients_are_served_and_counted(erpnet_sandbox: Sandbox, token_for: TokenFor) -> None:
    token = token_for(erpnet_sandbox)

    def fetch_pages(offset: int) -> list[int]:
        with requests.Session() as session:
            return [
                session.get(
                    f"{erpnet_sandbox.api_url}{CUSTOMERS}?$top=50&$skip={offset + 50 * i}",
                    headers=bearer(token),
                ).status_code
                for i in range(5)
            ]

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = [status for result in pool.map(fetch_pages, range(0, 400, 50)) for status in result]

    assert statuses == [200] * 40
    stats = erpnet_sandbox.stats()
    assert (stats["api_requests"], stats["api_by_status"]) == (40, {"200": 40})


def test_stop_closes_idle_connections_and_frees_the_port() -> None:
    """Checked from this side of the sockets only: a released port may already be someone else's."""
    sandbox = Sandbox().start()
    connection = HTTPConnection("127.0.0.1", sandbox.port, timeout=10)
    try:
        port = sandbox.port
        connection.request("GET", "/admin/stats")
        assert connection.getresponse().read()
        assert _listening_on(port), "the sandbox's listening socket should show while it runs"
        sandbox.stop()
        assert not sandbox.running
        assert connection.sock.recv(1) == b"", "the idle keep-alive connection should be closed"
        assert _listening_on(port) == []
    finally:
        connection.close()
        sandbox.stop()


def _listening_on(port: int) -> list[str]:
    """This process's TCP sockets listening on ``port``."""
    return [
        str(conn.laddr)
        for conn in psutil.Process().net_connections(kind="tcp")
        if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN
    ]


def test_lifecycle_errors_are_explicit() -> None:
    sandbox = Sandbox()
    with pytest.raises(RuntimeError, match="not running"):
        _ = sandbox.base_url
    with sandbox:
        with pytest.raises(RuntimeError, match="already running"):
            sandbox.start()
        assert sandbox.base_url == f"http://127.0.0.1:{sandbox.port}"
    with pytest.raises(ValueError, match="port"):
        Sandbox(port=70000)
    with sandbox:
        assert requests.get(f"{sandbox.base_url}/admin/stats", timeout=10).ok


def test_connection_helpers_give_an_airflow_connection(erpnet_sandbox: Sandbox) -> None:
    assert json.loads(erpnet_sandbox.connection_json()) == {
        "conn_type": "erpnet",
        "host": erpnet_sandbox.base_url,
        "login": DEFAULT_CLIENT_ID,
        "password": DEFAULT_SECRET,
        "extra": {},
    }
    custom = erpnet_sandbox.connection("my.trusted.app/readonly", "x", scope="read")
    assert (custom["login"], custom["password"], custom["extra"]) == (
        "my.trusted.app/readonly",
        "x",
        {"scope": "read"},
    )
    assert erpnet_sandbox.identity_url == f"{erpnet_sandbox.base_url}/id"
    assert erpnet_sandbox.api_url == f"{erpnet_sandbox.base_url}/api/domain/odata/"
