"""Fault injection: each switch over real HTTP, runtime changes through /admin/faults, reproducibility."""

from __future__ import annotations

import json
from collections.abc import Callable
from http.client import HTTPConnection, IncompleteRead

import pytest
import requests

from airflow_provider_erpnet.sandbox import Sandbox
from airflow_provider_erpnet.sandbox.faults import Fault, FaultInjector, FaultSettings

CUSTOMERS = "Crm_Sales_Customers"
TokenFor = Callable[..., str]


def get_page(sandbox: Sandbox, http: requests.Session, token: str, **kwargs) -> requests.Response:
    return http.get(
        f"{sandbox.api_url}{CUSTOMERS}?$top=5",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
        **kwargs,
    )


def test_rate_429_answers_with_retry_after(erpnet_sandbox_factory, http, token_for: TokenFor) -> None:
    sandbox = erpnet_sandbox_factory(rate_429=1.0, retry_after=7)
    response = get_page(sandbox, http, token_for(sandbox))

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    assert response.json()["error"]["code"] == "TooManyRequests"
    assert sandbox.stats()["faults_injected"]["429"] == 1
    assert sandbox.stats()["api_by_status"] == {"429": 1}


def test_rate_503_answers_service_unavailable(erpnet_sandbox_factory, http, token_for: TokenFor) -> None:
    sandbox = erpnet_sandbox_factory(rate_503=1.0)
    response = get_page(sandbox, http, token_for(sandbox))
    assert response.status_code == 503
    assert sandbox.stats()["faults_injected"]["503"] == 1


def test_rate_drop_closes_without_an_answer(erpnet_sandbox_factory, http, token_for: TokenFor) -> None:
    sandbox = erpnet_sandbox_factory(rate_drop=1.0)
    token = token_for(sandbox)
    with pytest.raises(requests.ConnectionError):
        get_page(sandbox, http, token)
    stats = sandbox.stats()
    assert stats["faults_injected"]["drop"] == 1
    assert stats["api_requests"] == 1
    assert stats["api_by_status"] == {}


def test_rate_truncate_raises_in_requests(erpnet_sandbox_factory, http, token_for: TokenFor) -> None:
    sandbox = erpnet_sandbox_factory(rate_truncate=1.0)
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError)):
        get_page(sandbox, http, token_for(sandbox))
    assert sandbox.stats()["faults_injected"]["truncate"] == 1


def test_truncated_body_is_shorter_than_its_content_length(
    erpnet_sandbox_factory, token_for: TokenFor
) -> None:
    sandbox = erpnet_sandbox_factory(rate_truncate=1.0)
    token = token_for(sandbox)
    connection = HTTPConnection("127.0.0.1", sandbox.port, timeout=10)
    try:
        connection.request(
            "GET", f"/api/domain/odata/{CUSTOMERS}?$top=5", headers={"Authorization": f"Bearer {token}"}
        )
        response = connection.getresponse()
        promised = int(response.headers["Content-Length"])
        with pytest.raises(IncompleteRead) as caught:
            response.read()
    finally:
        connection.close()
    assert response.status == 200
    assert 0 < len(caught.value.partial) < promised


def test_latency_delays_the_answer(erpnet_sandbox_factory, http, token_for: TokenFor) -> None:
    sandbox = erpnet_sandbox_factory(latency_ms=60_000)
    token = token_for(sandbox)
    with pytest.raises(requests.exceptions.ReadTimeout):
        http.get(
            f"{sandbox.api_url}{CUSTOMERS}?$top=1", headers={"Authorization": f"Bearer {token}"}, timeout=0.5
        )
    # Teardown stops the sandbox; stop() interrupts the pending 60 s wait rather than sitting it out.


def test_faults_spare_identity_and_admin(erpnet_sandbox_factory, http, token_for: TokenFor) -> None:
    sandbox = erpnet_sandbox_factory(
        rate_429=1.0, rate_503=1.0, rate_drop=1.0, rate_truncate=1.0, latency_ms=60_000
    )
    token_for(sandbox)
    assert http.get(f"{sandbox.identity_url}/.well-known/openid-configuration", timeout=10).ok
    assert http.get(f"{sandbox.base_url}/admin/faults", timeout=10).json()["rate_drop"] == 1.0
    assert http.get(f"{sandbox.base_url}/sys/auto-discovery", timeout=10).ok
    assert sandbox.stats()["api_requests"] == 0


def test_faults_change_at_runtime_through_admin(erpnet_sandbox: Sandbox, http, token_for: TokenFor) -> None:
    admin = f"{erpnet_sandbox.base_url}/admin/faults"
    token = token_for(erpnet_sandbox)
    assert get_page(erpnet_sandbox, http, token).status_code == 200

    changed = http.post(admin, json={"rate_503": 1.0, "next_links": False, "token_lifetime": 60}).json()
    assert changed == http.get(admin).json()
    assert (changed["rate_503"], changed["next_links"], changed["token_lifetime"]) == (1.0, False, 60)
    assert get_page(erpnet_sandbox, http, token).status_code == 503

    http.post(admin, json={"rate_503": 0})
    page = get_page(erpnet_sandbox, http, token)
    assert page.status_code == 200
    assert "@odata.nextLink" not in page.json()
    assert (
        http.post(
            f"{erpnet_sandbox.identity_url}/connect/token",
            data={
                "client_id": "my.trusted.app/first",
                "client_secret": "sandbox-secret",
                "grant_type": "client_credentials",
            },
        ).json()["expires_in"]
        == 60
    )


@pytest.mark.parametrize(
    "body",
    [
        {"rate_429": 1.5},
        {"rate_503": -0.1},
        {"rate_drop": "half"},
        {"latency_ms": -1},
        {"retry_after": 1.5},
        {"next_links": "no"},
        {"token_lifetime": 0},
        {"rate_429": 0.5, "colour": "blue"},
        [1, 2],
    ],
)
def test_bad_admin_settings_are_refused_and_change_nothing(erpnet_sandbox: Sandbox, http, body) -> None:
    admin = f"{erpnet_sandbox.base_url}/admin/faults"
    before = http.get(admin).json()
    response = http.post(admin, json=body)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_settings"
    assert response.json()["error_description"]
    assert http.get(admin).json() == before


def test_invalid_json_is_refused(erpnet_sandbox: Sandbox, http) -> None:
    response = http.post(f"{erpnet_sandbox.base_url}/admin/faults", data="{rate_429: 1}")
    assert response.status_code == 400


def test_set_faults_validates_like_the_admin_endpoint(erpnet_sandbox: Sandbox) -> None:
    with pytest.raises(ValueError, match="rate_drop"):
        erpnet_sandbox.set_faults(rate_drop=2)
    with pytest.raises(ValueError, match="unknown"):
        erpnet_sandbox.set_faults(rate_418=0.5)
    assert erpnet_sandbox.set_faults(rate_drop=0.25, error_envelope=False)["rate_drop"] == 0.25
    assert erpnet_sandbox.settings()["error_envelope"] is False


def test_constructor_refuses_bad_rates() -> None:
    with pytest.raises(ValueError, match="rate_429"):
        Sandbox(rate_429=1.01)


def test_same_seed_gives_the_same_faults() -> None:
    settings = FaultSettings(rate_429=0.2, rate_503=0.2, rate_drop=0.2, rate_truncate=0.2)
    runs = []
    for _ in range(2):
        injector = FaultInjector(settings, seed=7)
        runs.append([injector.decide() for _ in range(500)])
    other = FaultInjector(settings, seed=8)

    assert runs[0] == runs[1]
    assert runs[0] != [other.decide() for _ in range(500)]
    assert set(runs[0]) == {None, *Fault}


def test_mixed_rates_over_http_are_counted(erpnet_sandbox_factory, token_for: TokenFor) -> None:
    sandbox = erpnet_sandbox_factory(rate_429=0.2, rate_503=0.2, rate_drop=0.1, rate_truncate=0.1, seed=3)
    token = token_for(sandbox)
    outcomes: dict[str, int] = {}
    for _ in range(60):
        with requests.Session() as session:
            try:
                response = get_page(sandbox, session, token)
                json.loads(response.content)
                outcome = str(response.status_code)
            except requests.ConnectionError:
                outcome = "drop"
            except requests.exceptions.ChunkedEncodingError:
                outcome = "truncate"
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    stats = sandbox.stats()
    injected = stats["faults_injected"]
    assert {key: outcomes.get(key, 0) for key in injected} == injected
    assert outcomes["200"] == stats["api_by_status"].get("200", 0) - injected["truncate"]
    assert stats["api_requests"] == 60
