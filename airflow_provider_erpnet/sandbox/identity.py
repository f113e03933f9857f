"""The sandbox's identity server: trusted applications, the token endpoint's logic and token checks.

It mirrors what ERP.net documents for the client-credentials flow (``/id/connect/token``): trusted
applications keyed by ApplicationUri, secrets stored only as base64(sha256(secret)), OAuth2 error
codes, and RS256 access tokens (``typ: at+jwt``) signed with a key generated per sandbox and
published through JWKS. No HTTP here: the server passes the form and the Authorization header in
and writes the JSON that comes back, so every rule can be tested without a socket.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from airflow_provider_erpnet.client.clock import SYSTEM_CLOCK, Clock

DEFAULT_CLIENT_ID = "my.trusted.app/first"
DEFAULT_SECRET = "sandbox-secret"
AUDIENCES = ("DomainAPI", "TableAPI", "OLAP", "AppServer")
CLIENT_DB = "SANDBOX"
CLIENT_TYPES = ("Confidential", "Public", "None")
SUPPORTED_SCOPES = ("read", "update", "offline_access", "openid", "profile", "sec", "DomainApi")
_MAX_TRACKED_TOKENS = 10_000


def hash_secret(secret: str) -> str:
    """ApplicationSecretHash as ERP.net stores it: base64(sha256(utf-8 secret))."""
    return base64.b64encode(hashlib.sha256(secret.encode("utf-8")).digest()).decode("ascii")


@dataclass(frozen=True)
class TrustedApp:
    """A trusted application (ERP.net entity ``Systems_Security_TrustedApplications``).

    Holds the secret's hash only; build one from a plain secret with :meth:`create`.
    """

    application_uri: str
    secret_hash: str
    name: str = ""
    is_enabled: bool = True
    client_type: str = "Confidential"
    system_user_allowed: bool = True
    system_user: str | None = "sandbox.user@example.com"
    scope: str = "read update"

    def __post_init__(self) -> None:
        if not self.application_uri:
            raise ValueError("TrustedApp needs a non-empty application_uri (the OAuth2 client_id)")
        if self.client_type not in CLIENT_TYPES:
            raise ValueError(
                f"TrustedApp {self.application_uri!r}: client_type must be one of {', '.join(CLIENT_TYPES)}, "
                f"got {self.client_type!r}"
            )
        try:
            digest = base64.b64decode(self.secret_hash, validate=True)
        except (binascii.Error, ValueError):
            digest = b""
        if len(digest) != hashlib.sha256().digest_size:
            raise ValueError(
                f"TrustedApp {self.application_uri!r}: secret_hash must be base64(sha256(secret)); "
                "use TrustedApp.create(uri, secret) to hash a plain secret"
            )

    @classmethod
    def create(cls, application_uri: str, secret: str, **attributes: Any) -> TrustedApp:
        """A trusted application whose secret is ``secret`` (hashed here, never kept)."""
        return cls(application_uri=application_uri, secret_hash=hash_secret(secret), **attributes)

    @classmethod
    def from_json(cls, item: Mapping[str, Any]) -> TrustedApp:
        """Read ERP.net's attribute names (``ApplicationUri``, ``ApplicationSecretHash``, ...).

        ``ApplicationSecret`` (a plain secret) is accepted instead of the hash for convenience.
        """
        uri = item.get("ApplicationUri")
        if not isinstance(uri, str) or not uri:
            raise ValueError("trusted app: ApplicationUri (a non-empty string) is required")
        item = dict(item)
        if ("ApplicationSecret" in item) == ("ApplicationSecretHash" in item):
            raise ValueError(
                f"trusted app {uri!r}: give exactly one of ApplicationSecret or ApplicationSecretHash"
            )
        if "ApplicationSecret" in item:
            secret = item.pop("ApplicationSecret")
            if not isinstance(secret, str) or not secret:
                raise ValueError(f"trusted app {uri!r}: ApplicationSecret must be a non-empty string")
            item["ApplicationSecretHash"] = hash_secret(secret)
        unknown = sorted(set(item) - set(_JSON_ATTRIBUTES))
        if unknown:
            known = sorted({*_JSON_ATTRIBUTES, "ApplicationSecret"})
            raise ValueError(f"trusted app {uri!r}: unknown attribute(s) {unknown}; known: {known}")
        attributes = {}
        for key, value in item.items():
            name, kind = _JSON_ATTRIBUTES[key]
            if not isinstance(value, kind):
                raise ValueError(f"trusted app {uri!r}: {key} has the wrong type ({value!r})")
            attributes[name] = value
        return cls(**attributes)

    @property
    def scopes(self) -> tuple[str, ...]:
        return tuple(self.scope.split())

    def secret_matches(self, secret: str) -> bool:
        return hmac.compare_digest(hash_secret(secret).encode("ascii"), self.secret_hash.encode("ascii"))


_JSON_ATTRIBUTES: dict[str, tuple[str, type | tuple[type, ...]]] = {
    "ApplicationUri": ("application_uri", str),
    "ApplicationSecretHash": ("secret_hash", str),
    "Name": ("name", str),
    "IsEnabled": ("is_enabled", bool),
    "ClientType": ("client_type", str),
    "SystemUserAllowed": ("system_user_allowed", bool),
    "SystemUser": ("system_user", (str, type(None))),
    "Scope": ("scope", str),
}


def default_apps() -> tuple[TrustedApp, ...]:
    """The apps every sandbox knows; all share the public secret ``sandbox-secret``."""

    def app(suffix: str, name: str, **attributes: Any) -> TrustedApp:
        return TrustedApp.create(f"my.trusted.app/{suffix}", DEFAULT_SECRET, name=name, **attributes)

    return (
        app("first", "My first trusted app"),
        app("disabled", "Disabled app", is_enabled=False),
        app("readonly", "Read-only app", scope="read"),
        app("writeonly", "Update-only app (no read scope)", scope="update"),
        app("nosystemuser", "App without a system user", system_user_allowed=False, system_user=None),
        app("public", "Public client", client_type="Public"),
    )


class TokenError(Exception):
    """An OAuth2 error answer of the token endpoint (RFC 6749 section 5.2)."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description

    @property
    def status(self) -> int:
        return 401 if self.error == "invalid_client" else 400

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


class InvalidToken(Exception):
    """A bearer token the Domain API must refuse with 401; the message says why."""


@dataclass(frozen=True)
class AccessToken:
    """What the Domain API needs from a verified token."""

    client_id: str
    scopes: frozenset[str]
    expires_at: int


@dataclass(frozen=True)
class IssuedToken:
    """A successful token answer and who got it (for stats)."""

    client_id: str
    body: dict[str, Any]


class Identity:
    """Trusted apps, a signing key and the set of tokens still valid.

    ``issuer`` is the identity server's public URL (``http://127.0.0.1:PORT/id``); the server sets it
    once it knows its port. ``token_lifetime`` (seconds) may change at runtime. ``clock`` dates
    tokens and decides when they expire, so tests can expire a token without waiting.
    """

    def __init__(
        self,
        apps: Iterable[TrustedApp] | None = None,
        *,
        token_lifetime: int = 3600,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._clock = clock
        self._apps = {app.application_uri: app for app in default_apps()}
        self._apps.update({app.application_uri: app for app in apps or ()})
        self.token_lifetime = token_lifetime
        self.issuer = "http://127.0.0.1/id"
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = base64.urlsafe_b64encode(secrets.token_bytes(16)).rstrip(b"=").decode("ascii")
        self._live: dict[str, int] = {}
        self._lock = threading.Lock()

    @property
    def token_lifetime(self) -> int:
        return self._token_lifetime

    @token_lifetime.setter
    def token_lifetime(self, seconds: int) -> None:
        if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < 1:
            raise ValueError(f"token_lifetime must be a whole number of seconds >= 1, got {seconds!r}")
        self._token_lifetime = seconds

    @property
    def apps(self) -> Mapping[str, TrustedApp]:
        return dict(self._apps)

    @property
    def token_endpoint(self) -> str:
        return f"{self.issuer}/connect/token"

    def discovery(self) -> dict[str, Any]:
        """The OpenID discovery document, with absolute URLs as the official client expects."""
        return {
            "issuer": self.issuer,
            "jwks_uri": f"{self.issuer}/.well-known/openid-configuration/jwks",
            "authorization_endpoint": f"{self.issuer}/connect/authorize",
            "token_endpoint": self.token_endpoint,
            "end_session_endpoint": f"{self.issuer}/connect/endsession",
            "scopes_supported": list(SUPPORTED_SCOPES),
            "claims_supported": ["sub", "client_id", "client_db", "client_system_user", "scope"],
            "grant_types_supported": ["authorization_code", "client_credentials", "refresh_token"],
            "response_types_supported": ["code"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }

    def jwks(self) -> dict[str, Any]:
        jwk = RSAAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
        return {"keys": [{**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def issue(
        self, content_type: str | None, form: Mapping[str, Sequence[str]], authorization: str | None
    ) -> IssuedToken:
        """Answer a token request; raises :class:`TokenError` with the OAuth2 error code on refusal.

        ``form`` is the parsed body (``parse_qs`` with blank values kept), ``authorization`` the raw
        Authorization header (HTTP Basic client authentication) or None.
        """
        if (content_type or "").split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
            raise TokenError("invalid_request", "send the token request as application/x-www-form-urlencoded")
        fields = _single_values(form)
        client_id, secret = _client_credentials(fields, authorization)
        grant_type = fields.get("grant_type")
        if not grant_type:
            raise TokenError("invalid_request", "grant_type is missing: send grant_type=client_credentials")
        if grant_type != "client_credentials":
            raise TokenError(
                "unsupported_grant_type",
                f"grant_type {grant_type!r} is not supported here; use client_credentials",
            )
        app = self._authenticate(client_id, secret)
        scopes = self._granted_scopes(app, fields.get("scope"))
        token = self._sign(app, scopes)
        body = {
            "access_token": token,
            "expires_in": self.token_lifetime,
            "token_type": "Bearer",
            "scope": " ".join(scopes),
        }
        return IssuedToken(client_id=app.application_uri, body=body)

    def verify(self, token: str) -> AccessToken:
        """Check signature, issuer, audience, lifetime and revocation; raises :class:`InvalidToken`."""
        try:
            claims = jwt.decode(
                token,
                self._key.public_key(),
                algorithms=["RS256"],
                audience="DomainAPI",
                issuer=self.issuer,
                # Times are checked below against the identity's clock, not PyJWT's wall clock.
                options={
                    "require": ["exp", "nbf", "iat", "jti", "client_id", "scope"],
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidTokenError as exc:
            raise InvalidToken(f"The access token is invalid ({type(exc).__name__})") from exc
        now = self._clock.time()
        if not isinstance(claims["exp"], int) or not isinstance(claims["nbf"], int) or claims["nbf"] > now:
            raise InvalidToken("The access token is invalid (its nbf or exp is not a time it is valid at)")
        if claims["exp"] <= now:
            raise InvalidToken("The access token expired: request a new one from the token endpoint")
        with self._lock:
            live = claims["jti"] in self._live
        if not live:
            raise InvalidToken("The access token was revoked: request a new one from the token endpoint")
        return AccessToken(
            client_id=str(claims["client_id"]),
            scopes=frozenset(claims["scope"]),
            expires_at=int(claims["exp"]),
        )

    def revoke_all(self) -> int:
        """Make every token issued so far invalid; returns how many were still live."""
        with self._lock:
            count = len(self._live)
            self._live.clear()
        return count

    def _authenticate(self, client_id: str, secret: str) -> TrustedApp:
        app = self._apps.get(client_id)
        if app is None or not app.secret_matches(secret):
            raise TokenError("invalid_client", "unknown client_id or wrong client_secret")
        if not app.is_enabled:
            raise TokenError("invalid_client", "the trusted application is disabled (IsEnabled is false)")
        if app.client_type != "Confidential":
            raise TokenError(
                "invalid_client",
                f"client_credentials needs ClientType Confidential; this application is {app.client_type}",
            )
        if not app.system_user_allowed or not app.system_user:
            raise TokenError(
                "unauthorized_client",
                "the trusted application does not allow a system user (SystemUserAllowed/SystemUser)",
            )
        return app

    @staticmethod
    def _granted_scopes(app: TrustedApp, requested: str | None) -> tuple[str, ...]:
        if not requested or not requested.strip():
            return app.scopes
        wanted = tuple(dict.fromkeys(requested.split()))
        refused = [scope for scope in wanted if scope not in app.scopes]
        if refused:
            raise TokenError(
                "invalid_scope",
                f"scope {' '.join(refused)!r} is not allowed for this application; allowed: {app.scope!r}",
            )
        return wanted

    def _sign(self, app: TrustedApp, scopes: tuple[str, ...]) -> str:
        now = int(self._clock.time())
        expires = now + self.token_lifetime
        jti = base64.urlsafe_b64encode(secrets.token_bytes(16)).rstrip(b"=").decode("ascii")
        claims = {
            "iss": self.issuer,
            "aud": list(AUDIENCES),
            "iat": now,
            "nbf": now,
            "exp": expires,
            "jti": jti,
            "scope": list(scopes),
            "client_id": app.application_uri,
            "client_db": CLIENT_DB,
            "client_system_user": app.system_user,
            "client_system_user_type": "Internal",
        }
        token = jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.kid, "typ": "at+jwt"})
        with self._lock:
            if len(self._live) >= _MAX_TRACKED_TOKENS:
                self._live = {key: exp for key, exp in self._live.items() if exp > now}
            self._live[jti] = expires
        return token


def _single_values(form: Mapping[str, Sequence[str]]) -> dict[str, str]:
    repeated = sorted(name for name, values in form.items() if len(values) > 1)
    if repeated:
        raise TokenError("invalid_request", f"parameter(s) sent more than once: {', '.join(repeated)}")
    return {name: values[0] for name, values in form.items()}


def _client_credentials(fields: Mapping[str, str], authorization: str | None) -> tuple[str, str]:
    """client_id and client_secret from HTTP Basic (RFC 6749 2.3.1) or from the form body."""
    if authorization and authorization[:6].lower() == "basic ":
        if "client_secret" in fields:
            raise TokenError(
                "invalid_request", "send the client secret either with HTTP Basic or in the body, not both"
            )
        try:
            decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise TokenError("invalid_client", "the Basic authorization header is not valid base64") from exc
        client_id, colon, secret = decoded.partition(":")
        if not colon:
            raise TokenError(
                "invalid_client", "the Basic authorization header must hold client_id:client_secret"
            )
        client_id, secret = unquote_plus(client_id), unquote_plus(secret)
        if fields.get("client_id", client_id) != client_id:
            raise TokenError("invalid_request", "client_id in the body differs from the one in HTTP Basic")
        return client_id, secret
    missing = [name for name in ("client_id", "client_secret") if not fields.get(name)]
    if missing:
        raise TokenError(
            "invalid_request", f"{' and '.join(missing)} missing: send them in the body or with HTTP Basic"
        )
    return fields["client_id"], fields["client_secret"]
