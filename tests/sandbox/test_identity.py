"""The identity server over HTTP: the seed's token request, JWT claims, Basic auth and each OAuth2 error."""

from __future__ import annotations

import base64
import json

import jwt
import pytest
import requests

from airflow_provider_erpnet.sandbox import DEFAULT_CLIENT_ID, DEFAULT_SECRET, Sandbox, TrustedApp
from airflow_provider_erpnet.sandbox.identity import hash_secret

SEED_FORM = {
    "client_id": DEFAULT_CLIENT_ID,
    "client_secret": DEFAULT_SECRET,
    "grant_type": "client_credentials",
    "scope": "read",
}


def token_url(sandbox: Sandbox) -> str:
    return f"{sandbox.identity_url}/connect/token"


def test_seed_request_is_answered_as_in_the_seed(erpnet_sandbox: Sandbox, http: requests.Session) -> None:
    response = http.post(token_url(erpnet_sandbox), data=SEED_FORM)

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json()
    assert list(body) == ["access_token", "expires_in", "token_type", "scope"]
    assert body["expires_in"] == 3600
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "read"


def test_token_verifies_against_jwks_with_documented_claims(
    erpnet_sandbox: Sandbox, http: requests.Session
) -> None:
    discovery = http.get(f"{erpnet_sandbox.identity_url}/.well-known/openid-configuration").json()
    assert discovery["issuer"] == erpnet_sandbox.identity_url
    assert discovery["token_endpoint"] == token_url(erpnet_sandbox)
    assert "client_credentials" in discovery["grant_types_supported"]
    jwks = http.get(discovery["jwks_uri"]).json()
    token = http.post(discovery["token_endpoint"], data=SEED_FORM).json()["access_token"]

    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256"
    assert header["typ"] == "at+jwt"
    key = jwt.PyJWKSet.from_dict(jwks)[header["kid"]]
    claims = jwt.decode(
        token, key.key, algorithms=["RS256"], audience="DomainAPI", issuer=discovery["issuer"]
    )
    assert claims["aud"] == ["DomainAPI", "TableAPI", "OLAP", "AppServer"]
    assert claims["scope"] == ["read"]
    assert claims["client_id"] == DEFAULT_CLIENT_ID
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["nbf"] == claims["iat"]
    for name in ("jti", "client_db", "client_system_user", "client_system_user_type"):
        assert claims[name], name


def test_basic_client_authentication(erpnet_sandbox: Sandbox, http: requests.Session) -> None:
    response = http.post(
        token_url(erpnet_sandbox),
        data={"grant_type": "client_credentials", "scope": "read"},
        auth=(DEFAULT_CLIENT_ID, DEFAULT_SECRET),
    )
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "read"


def test_omitted_scope_grants_every_scope_of_the_app(erpnet_sandbox: Sandbox, http: requests.Session) -> None:
    form = {key: value for key, value in SEED_FORM.items() if key != "scope"}
    body = http.post(token_url(erpnet_sandbox), data=form).json()
    assert body["scope"] == "read update"
    assert jwt.decode(body["access_token"], options={"verify_signature": False})["scope"] == [
        "read",
        "update",
    ]


def test_token_lifetime_is_configurable(erpnet_sandbox_factory, http: requests.Session) -> None:
    sandbox = erpnet_sandbox_factory(token_lifetime=120)
    assert http.post(token_url(sandbox), data=SEED_FORM).json()["expires_in"] == 120


@pytest.mark.parametrize(
    ("changes", "status", "error"),
    [
        ({"client_secret": "wrong"}, 401, "invalid_client"),
        ({"client_id": "my.trusted.app/unknown"}, 401, "invalid_client"),
        ({"client_id": "my.trusted.app/disabled"}, 401, "invalid_client"),
        ({"client_id": "my.trusted.app/public"}, 401, "invalid_client"),
        ({"client_id": "my.trusted.app/nosystemuser"}, 400, "unauthorized_client"),
        ({"client_id": "my.trusted.app/readonly", "scope": "read update"}, 400, "invalid_scope"),
        ({"scope": "read DomainApi"}, 400, "invalid_scope"),
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
        ({"grant_type": None}, 400, "invalid_request"),
        ({"client_secret": None}, 400, "invalid_request"),
        ({"client_id": None}, 400, "invalid_request"),
    ],
)
def test_oauth_errors(
    erpnet_sandbox: Sandbox, http: requests.Session, changes: dict, status: int, error: str
) -> None:
    form = {key: value for key, value in {**SEED_FORM, **changes}.items() if value is not None}
    response = http.post(token_url(erpnet_sandbox), data=form)

    assert response.status_code == status
    body = response.json()
    assert set(body) == {"error", "error_description"}
    assert body["error"] == error
    assert DEFAULT_SECRET not in body["error_description"]
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert erpnet_sandbox.stats()["token_errors"] == {error: 1}


def test_wrong_secret_with_basic_gets_401_and_a_basic_challenge(
    erpnet_sandbox: Sandbox, http: requests.Session
) -> None:
    response = http.post(
        token_url(erpnet_sandbox),
        data={"grant_type": "client_credentials"},
        auth=(DEFAULT_CLIENT_ID, "wrong"),
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["WWW-Authenticate"].startswith("Basic ")


def test_form_encoding_is_required(erpnet_sandbox: Sandbox, http: requests.Session) -> None:
    response = http.post(token_url(erpnet_sandbox), data=json.dumps(SEED_FORM))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_repeated_parameter_is_invalid(erpnet_sandbox: Sandbox, http: requests.Session) -> None:
    response = http.post(token_url(erpnet_sandbox), data=[*SEED_FORM.items(), ("scope", "update")])
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_token_endpoint_only_accepts_post(erpnet_sandbox: Sandbox, http: requests.Session) -> None:
    response = http.get(token_url(erpnet_sandbox))
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"


def test_extra_apps_and_their_secret_hash(erpnet_sandbox_factory, http: requests.Session) -> None:
    # The vendor's documented example: secret DEMO.
    assert hash_secret("DEMO") == "T/AGymuI51LwjLeIFxRQXOs9IHnupDKs/ajhWODR2C4="
    apps = [
        TrustedApp.create("acme.etl/reader", "s3cret", scope="read"),
        TrustedApp.from_json(
            {"ApplicationUri": "acme.etl/demo", "ApplicationSecretHash": hash_secret("DEMO")}
        ),
    ]
    sandbox = erpnet_sandbox_factory(apps=apps)
    plain = "s3cret"
    assert all(plain not in repr(value) for value in vars(apps[0]).values())

    first = http.post(
        token_url(sandbox), auth=("acme.etl/reader", plain), data={"grant_type": "client_credentials"}
    )
    demo = http.post(
        token_url(sandbox), auth=("acme.etl/demo", "DEMO"), data={"grant_type": "client_credentials"}
    )
    default = http.post(token_url(sandbox), data=SEED_FORM)

    assert (first.status_code, first.json()["scope"]) == (200, "read")
    assert (demo.status_code, demo.json()["scope"]) == (200, "read update")
    assert default.status_code == 200
    assert sandbox.stats()["tokens_issued_by_client"] == {
        "acme.etl/reader": 1,
        "acme.etl/demo": 1,
        DEFAULT_CLIENT_ID: 1,
    }


@pytest.mark.parametrize(
    "item",
    [
        {"ApplicationUri": "a/b"},
        {"ApplicationUri": "a/b", "ApplicationSecret": "x", "ClientType": "Public", "Scope": 3},
        {"ApplicationUri": "a/b", "ApplicationSecret": "x", "ApplicationSecretHash": hash_secret("x")},
        {"ApplicationUri": "a/b", "ApplicationSecretHash": "not-a-hash"},
        {"ApplicationUri": "a/b", "ApplicationSecret": "x", "ClientType": "Secret"},
        {"ApplicationUri": "a/b", "ApplicationSecret": "x", "Colour": "blue"},
    ],
)
def test_bad_trusted_app_definitions_are_refused(item: dict) -> None:
    with pytest.raises(ValueError, match="'a/b'"):
        TrustedApp.from_json(item)


def test_basic_credentials_are_form_url_decoded(erpnet_sandbox_factory, http: requests.Session) -> None:
    sandbox = erpnet_sandbox_factory(apps=[TrustedApp.create("acme/app", "a+b c:d")])
    encoded = base64.b64encode(b"acme%2Fapp:a%2Bb+c%3Ad").decode()
    response = http.post(
        token_url(sandbox),
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {encoded}"},
    )
    assert response.status_code == 200, response.text
