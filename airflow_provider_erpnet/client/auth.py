"""Client-credentials access tokens for ERP.net, fetched as rarely as possible.

Each token ERP.net issues takes a licence slot once it is used, so tokens are shared: a
process-wide memory cache serves every provider with the same key, a file cache serves other
processes on the machine, and concurrent callers wait for one refresh instead of each fetching.
Tokens are refreshed before they expire (see :attr:`CachedToken.refresh_margin`) and dropped after
a 401 only if no one replaced them yet, so a burst of 401s costs one new token.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import math
import os
import threading
from collections.abc import Callable

import requests

from . import jsonutil, redact
from .body import BodyError
from .clock import SYSTEM_CLOCK, Clock
from .errors import ErpNetAuthError, ErpNetConfigError, ErpNetTransportError
from .retry import RetriesExhausted, RetryableStatus, call_with_retries, fetch, network_error
from .settings import ErpNetSettings
from .token_cache import CachedToken, FileTokenCache, TokenKey
from .urls import Destination, host_of, safe_url

log = logging.getLogger(__name__)

DISCOVERY_PATH = "/.well-known/openid-configuration"
FALLBACK_TOKEN_PATH = "/connect/token"
DEFAULT_LIFETIME = 300.0
# A longer promise is not believed: the token is refreshed after a day (and on any 401 before).
MAX_LIFETIME = 86400.0
# Identity servers write exp in whole seconds from a truncated issue time, so a token can end up to
# this long before the moment the request was sent plus expires_in.
EXP_ROUNDING = 1.0
_secret_masker: Callable[[str], None] | None = None


def set_secret_masker(callback: Callable[[str], None] | None) -> None:
    """Install a callback that every secret and token passes through before anything can log it.

    The Airflow hook installs ``mask_secret``; the client core itself imports no Airflow.
    """
    global _secret_masker
    _secret_masker = callback


def _mask(value: str) -> None:
    if _secret_masker is not None and value:
        _secret_masker(value)


def _fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class _MemoryCache:
    """Process-wide tokens by key, one lock per key, and fingerprints of tokens the API rejected."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[TokenKey, threading.Lock] = {}
        self._tokens: dict[TokenKey, CachedToken] = {}
        self._rejected: dict[TokenKey, set[str]] = {}

    def lock(self, key: TokenKey) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def get(self, key: TokenKey) -> CachedToken | None:
        return self._tokens.get(key)

    def put(self, key: TokenKey, token: CachedToken) -> None:
        self._tokens[key] = token

    def reject(self, key: TokenKey, token: str) -> bool:
        """Remember ``token`` as refused; drop it if it is still the cached one. Hold the key's lock."""
        self._rejected.setdefault(key, set()).add(_fingerprint(token))
        current = self._tokens.get(key)
        if current is not None and current.access_token == token:
            del self._tokens[key]
            return True
        return False

    def is_rejected(self, key: TokenKey, token: str) -> bool:
        return _fingerprint(token) in self._rejected.get(key, ())

    def clear(self) -> None:
        with self._guard:
            self._tokens.clear()
            self._rejected.clear()

    def reset_locks(self) -> None:
        """After fork: a lock held by a thread of the parent would never be released in the child."""
        self._guard = threading.Lock()
        self._locks = {}


_MEMORY = _MemoryCache()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_MEMORY.reset_locks)


def clear_memory_cache() -> None:
    """Forget every token held in this process (tests; long-lived processes after a secret change)."""
    _MEMORY.clear()


class _IdentityGuard(requests.auth.AuthBase):
    """Lets a request go only to the identity server's origin, checked on the URL as it is sent.

    Being an explicit auth it also keeps requests from adding Basic auth from ~/.netrc (the
    identity server refuses a request that carries client credentials twice).
    """

    def __init__(self, destination: Destination) -> None:
        self._destination = destination

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        self._destination.check(str(request.url))
        return request


class TokenProvider:
    """Hands out a valid access token for one trusted application, fetching one only when needed.

    ``clock`` tells the time for expiry and refresh decisions and sleeps between retries.
    """

    def __init__(
        self, settings: ErpNetSettings, session: requests.Session, *, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self._settings = settings
        self._session = session
        self._clock = clock
        self._endpoint: str | None = None
        self._endpoint_lock = threading.Lock()
        self._token_key: TokenKey | None = None
        self._file_cache = FileTokenCache(settings.disk_cache_dir) if settings.disk_cache else None
        self._last_masked: str | None = None
        self._identity = Destination(
            settings.resolved_identity_url,
            setting="identity_url",
            service="identity server",
            carries="the client secret",
            allow_plain_http=settings.allow_plain_http,
        )
        self._guard = _IdentityGuard(self._identity)
        self._missing_scopes: list[str] = []
        self.tokens_requested = 0
        self.retries = 0
        _mask(settings.client_secret)
        redact.remember_secret(settings.client_secret, settings.client_id)

    @property
    def token_endpoint(self) -> str:
        """The identity server's token endpoint, read from its discovery document once."""
        if self._endpoint is None:
            with self._endpoint_lock:
                if self._endpoint is None:
                    self._endpoint = self._discover()
        return self._endpoint

    def token(self) -> str:
        """A token with more than the refresh margin left: from memory, the file cache, or the server."""
        key = self._key()
        cached = _MEMORY.get(key)
        if cached is None or not cached.is_fresh(self._clock.time()):
            with _MEMORY.lock(key):
                cached = _MEMORY.get(key)
                if cached is None or not cached.is_fresh(self._clock.time()):
                    cached = self._obtain(key)
                    _MEMORY.put(key, cached)
        if cached.access_token != self._last_masked:
            _mask(cached.access_token)
            redact.remember_token(cached.access_token)
            self._last_masked = cached.access_token
        return cached.access_token

    def invalidate(self, token: str) -> None:
        """After a 401 with ``token``: drop it unless another caller already replaced it."""
        key = self._key()
        with _MEMORY.lock(key):
            if _MEMORY.reject(key, token):
                log.info("Access token rejected by the API; the next request fetches a new one.")

    def _key(self) -> TokenKey:
        if self._token_key is None:
            s = self._settings
            self._token_key = TokenKey.build(self.token_endpoint, s.client_id, s.scope, s.client_secret)
        return self._token_key

    def _obtain(self, key: TokenKey) -> CachedToken:
        cache = self._file_cache
        if cache is None or not cache.usable:
            return self._request_token()
        with cache.locked(key):
            cached = cache.load(key)
            now = self._clock.time()
            if (
                cached is not None
                and cached.is_fresh(now)
                and not _MEMORY.is_rejected(key, cached.access_token)
            ):
                log.debug("Reusing a cached token with %.0f s left.", cached.expires_at - now)
                return cached
            token = self._request_token()
            cache.store(key, token)
            return token

    def _count_retry(self) -> None:
        self.retries += 1

    def _call(self, send: Callable[[], requests.Response], url: str) -> requests.Response:
        """Send under the retry policy; exhausted retries become an identity-server error."""
        try:
            return call_with_retries(
                self._settings,
                send,
                target=f"identity server {host_of(url)}",
                on_retry=self._count_retry,
                clock=self._clock,
            )
        except RetriesExhausted as exc:
            if isinstance(exc.last, RetryableStatus):
                raise ErpNetTransportError(
                    f"The ERP.net identity server at {host_of(url)} answered "
                    f"{exc.last.response.status_code} to {exc.attempts} attempts in a row; it is "
                    "overloaded or throttling this client. Try again later.",
                    url=safe_url(url),
                ) from None
            raise network_error(
                exc, url, self._settings, service="identity server", setting="identity_url"
            ) from None
        except (requests.RequestException, BodyError) as exc:
            raise network_error(
                exc, url, self._settings, service="identity server", setting="identity_url"
            ) from None

    def _send(self, method: str, url: str, data: dict[str, str] | None = None) -> requests.Response:
        """One request to the identity server; a redirect is an error, never followed (the secret
        would go along with the form)."""
        response = fetch(
            self._session, self._settings, method, url, auth=self._guard, accept="application/json", data=data
        )
        if response.is_redirect:
            location = response.headers.get("Location", "")
            raise ErpNetTransportError(
                f"The ERP.net identity server at {host_of(url)} answered {response.status_code}, a redirect "
                f"to {safe_url(location) or 'nowhere'}. Requests to the identity server never follow "
                "redirects, since the client secret would go along: set identity_url to the identity "
                "server's own address (the redirect's target, if you trust it).",
                url=safe_url(url),
                setting="identity_url",
            )
        return response

    def _discover(self) -> str:
        identity = self._settings.resolved_identity_url
        url = identity + DISCOVERY_PATH
        response = self._call(lambda: self._send("GET", url), url)
        if response.status_code == 404:
            log.info("The identity server has no discovery document; using %s.", FALLBACK_TOKEN_PATH)
            return identity + FALLBACK_TOKEN_PATH
        endpoint = None
        if response.ok:
            document = _json_or_none(response)
            endpoint = document.get("token_endpoint") if isinstance(document, dict) else None
        if not isinstance(endpoint, str) or not endpoint.startswith(("http://", "https://")):
            raise self._not_identity_server(url, response)
        refusal = self._identity.refusal(endpoint)
        if refusal is not None:
            raise ErpNetConfigError(
                f"The identity server's discovery document names the token endpoint {safe_url(endpoint)}, "
                f"but {refusal.reason}; the client secret goes only to identity_url's origin. "
                f"{refusal.fix}",
                setting=refusal.setting,
            )
        return endpoint

    def _request_token(self) -> CachedToken:
        s = self._settings
        endpoint = self.token_endpoint
        form = {
            "client_id": s.client_id,
            "client_secret": s.client_secret,
            "grant_type": "client_credentials",
        }
        if s.scope:
            form["scope"] = s.scope
        started = self._clock.time()
        response = self._call(lambda: self._send("POST", endpoint, form), endpoint)
        body = _json_or_none(response)
        if not response.ok:
            if isinstance(body, dict) and isinstance(body.get("error"), str):
                raise self._oauth_error(body, response.status_code)
            raise self._not_identity_server(endpoint, response)
        access_token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(access_token, str) or not access_token:
            raise self._not_identity_server(endpoint, response)
        _mask(access_token)
        redact.remember_token(access_token)
        lifetime = _lifetime(body.get("expires_in"))
        self.tokens_requested += 1
        log.info(
            "Fetched an access token from %s, valid for %.0f s (%d fetched by this provider).",
            host_of(endpoint),
            lifetime,
            self.tokens_requested,
        )
        granted = body.get("scope")
        self._check_scopes(granted, access_token)
        return CachedToken(
            access_token=access_token,
            expires_at=started + lifetime - EXP_ROUNDING,
            lifetime=lifetime,
            scope=granted if isinstance(granted, str) else s.scope,
            token_endpoint=endpoint,
            client_id=s.client_id,
        )

    def _check_scopes(self, granted_field: object, access_token: str) -> None:
        """Warn once when the token grants fewer scopes than the ``scope`` setting asks for.

        Identity servers may grant less than requested instead of refusing; the 403s that follow
        would otherwise be the first sign of it.
        """
        requested = list(dict.fromkeys((self._settings.scope or "").split()))
        granted = granted_scopes(granted_field, access_token)
        if not requested or granted is None:
            return
        missing = [scope for scope in requested if scope not in granted]
        if missing and missing != self._missing_scopes:
            log.warning(
                "The identity server granted the scopes %s but not %s of the requested scope %r: requests "
                "that need %s will be refused (403). Allow them in the trusted application's Scope, or "
                "leave out of the scope setting what it does not grant.",
                " ".join(sorted(granted)) or "(none)",
                " ".join(missing),
                self._settings.scope,
                "it" if len(missing) == 1 else "them",
            )
        self._missing_scopes = missing

    def _not_identity_server(self, url: str, response: requests.Response) -> ErpNetTransportError:
        content_type = redact.server_text(response.headers.get("Content-Type"), 80) or "no content type"
        return ErpNetTransportError(
            f"{safe_url(url)} answered {response.status_code} ({content_type}), which is not what an "
            "ERP.net identity server sends. Check the host in instance_url and identity_url: the identity "
            "server usually lives at https://<instance>/id.",
            url=safe_url(url),
            setting="identity_url",
        )

    def _oauth_error(self, body: dict, status: int) -> ErpNetAuthError:
        s = self._settings
        error = redact.server_text(body["error"], 80) or "error"
        description = redact.server_text(body.get("error_description"))
        said = f"{error}: {description}" if description else error
        return ErpNetAuthError(
            f"The ERP.net identity server at {host_of(self.token_endpoint)} refused a token for client "
            f"{s.client_id!r} ({said}). {_oauth_hint(error, s.scope)}",
            error=error,
            status=status,
        )


def _oauth_hint(error: str, scope: str | None) -> str:
    if error == "invalid_client":
        return (
            "Check that client_id is the trusted application's ApplicationUri and client_secret "
            "its secret, and that the trusted application IsEnabled and its ClientType is "
            "Confidential."
        )
    if error == "unauthorized_client":
        return (
            "The trusted application must allow service logins: set SystemUserAllowed and choose a "
            "SystemUser for it."
        )
    if error == "invalid_scope":
        asked = f"The requested scope {scope!r}" if scope else "The default scope"
        return (
            f"{asked} is not allowed by the trusted application's Scope attribute: request only scopes "
            "listed there (e.g. 'read'), or leave the scope empty to get all of them."
        )
    if error == "unsupported_grant_type":
        return (
            "The server does not accept the client_credentials grant here: check that identity_url "
            "points at ERP.net's identity server and that the trusted application is a confidential "
            "service application."
        )
    if error == "invalid_request":
        return (
            "The server found the token request malformed (a field missing or repeated): check that "
            "identity_url points at ERP.net's identity server and that client_id and client_secret have "
            "no stray characters."
        )
    return "See the identity server's message; check the trusted application's settings in ERP.net."


def granted_scopes(scope_field: object, access_token: str) -> set[str] | None:
    """The scopes a token answer grants: its ``scope`` field, else the access token's ``scope``
    claim (a JWT's payload, read without verification: only the API verifies tokens); None if
    neither says."""
    if isinstance(scope_field, str):
        return set(scope_field.split())
    claim = _jwt_claims(access_token).get("scope")
    if isinstance(claim, str):
        return set(claim.split())
    if isinstance(claim, list) and all(isinstance(scope, str) for scope in claim):
        return set(claim)
    return None


def _jwt_claims(token: str) -> dict:
    """The payload of a JWT, or an empty dict for an opaque token."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    try:
        claims = jsonutil.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return {}
    return claims if isinstance(claims, dict) else {}


def _json_or_none(response: requests.Response) -> object:
    try:
        return jsonutil.loads(response.content)
    except ValueError:
        return None


def _lifetime(expires_in: object) -> float:
    """Seconds from the ``expires_in`` field; a conservative default when a server omits it."""
    try:
        seconds = 0.0 if isinstance(expires_in, bool) else float(expires_in)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        seconds = math.inf if isinstance(expires_in, int) and expires_in > 0 else 0.0
    if seconds > MAX_LIFETIME:
        log.info(
            "The token answer promises more than %.0f s of validity; refreshing it after that.", MAX_LIFETIME
        )
        return MAX_LIFETIME
    if seconds > 0:
        return seconds
    log.warning("The token answer has no usable expires_in; assuming %.0f s.", DEFAULT_LIFETIME)
    return DEFAULT_LIFETIME
