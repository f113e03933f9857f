"""The sandbox's HTTP side: routing, bearer checks, fault injection, admin endpoints and stats.

Built on the stdlib ``http.server`` because faults need full control of the socket: a dropped
connection answers nothing, a truncated body promises more bytes than it sends. ``SandboxApp``
turns a request into a :class:`Reply` (pure logic); ``SandboxHTTPServer`` owns sockets and threads.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import ssl
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qs, urlsplit

from airflow_provider_erpnet.sandbox.data import CreateError, CustomPropertyError, DeleteError, TouchError
from airflow_provider_erpnet.sandbox.faults import Fault, FaultInjector, check_count
from airflow_provider_erpnet.sandbox.identity import Identity, InvalidToken, TokenError

if TYPE_CHECKING:
    from airflow_provider_erpnet.sandbox.data import Dataset
    from airflow_provider_erpnet.sandbox.domain import DomainResponse

logger = logging.getLogger(__name__)

API_ROOT = "/api/domain/odata/"
JSON_TYPE = "application/json; charset=utf-8"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
MAX_BODY_BYTES = 10 * 1024 * 1024
SETTING_FLAGS = ("next_links", "error_envelope", "strict")


class DomainAPI(Protocol):
    """What the server needs from the Domain API logic (``sandbox.domain.DomainService``)."""

    next_links: bool
    error_envelope: bool
    strict: bool
    dataset: Dataset

    def handle(
        self, method: str, path: str, query: str, *, base_url: str, scopes: frozenset[str]
    ) -> DomainResponse: ...


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class Reply:
    """An answer to write; ``fault`` DROP writes nothing, TRUNCATE cuts the body short."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    fault: Fault | None = None


def json_reply(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Reply:
    body = json.dumps(payload).encode("utf-8")
    return Reply(status, {"Content-Type": JSON_TYPE, **(headers or {})}, body)


class Stats:
    """Thread-safe counters of what the sandbox issued and answered (see ``GET /admin/stats``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._tokens_by_client: Counter[str] = Counter()
            self._token_errors: Counter[str] = Counter()
            self._api_requests = 0
            self._api_by_status: Counter[str] = Counter()
            self._faults: Counter[str] = Counter({fault.value: 0 for fault in Fault})
            self._rows_touched = 0
            self._rows_created = 0
            self._rows_deleted = 0

    def token_issued(self, client_id: str) -> None:
        with self._lock:
            self._tokens_by_client[client_id] += 1

    def token_error(self, error: str) -> None:
        with self._lock:
            self._token_errors[error] += 1

    def api_request(self) -> None:
        with self._lock:
            self._api_requests += 1

    def api_status(self, status: int) -> None:
        with self._lock:
            self._api_by_status[str(status)] += 1

    def fault(self, fault: Fault) -> None:
        with self._lock:
            self._faults[fault.value] += 1

    def rows_touched(self, count: int) -> None:
        with self._lock:
            self._rows_touched += count

    def rows_created(self, count: int) -> None:
        with self._lock:
            self._rows_created += count

    def rows_deleted(self, count: int) -> None:
        with self._lock:
            self._rows_deleted += count

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            snapshot = {
                "tokens_issued": sum(self._tokens_by_client.values()),
                "tokens_issued_by_client": dict(self._tokens_by_client),
                "token_errors": dict(self._token_errors),
                "api_requests": self._api_requests,
                "api_by_status": dict(self._api_by_status),
                "faults_injected": dict(self._faults),
                "rows_touched": self._rows_touched,
                "rows_created": self._rows_created,
                "rows_deleted": self._rows_deleted,
            }
            return snapshot


class SandboxApp:
    """Routes requests to the identity server, the Domain API and the admin endpoints."""

    def __init__(self, identity: Identity, domain: DomainAPI, faults: FaultInjector) -> None:
        self.identity = identity
        self.domain = domain
        self.faults = faults
        self.stats = Stats()
        self.stopping = threading.Event()
        self.base_url = "http://127.0.0.1"
        self._settings_lock = threading.Lock()
        self._routes: dict[str, dict[str, Callable[[Request], Reply]]] = {
            "/id/.well-known/openid-configuration": {"GET": self._discovery},
            "/id/.well-known/openid-configuration/jwks": {"GET": self._jwks},
            "/id/connect/token": {"POST": self._token},
            "/sys/auto-discovery": {"GET": self._auto_discovery},
            "/admin/faults": {"GET": self._get_settings, "POST": self._post_settings},
            "/admin/revoke-tokens": {"POST": self._revoke_tokens},
            "/admin/stats": {"GET": self._get_stats},
            "/admin/stats/reset": {"POST": self._reset_stats},
            "/admin/touch": {"POST": self._touch},
            "/admin/create": {"POST": self._create},
            "/admin/delete": {"POST": self._delete},
            "/admin/custom-property": {"POST": self._custom_property},
        }

    def bind(self, base_url: str) -> None:
        """Called once the listening port is known: absolute URLs and the token issuer derive from it."""
        self.base_url = base_url
        self.identity.issuer = f"{base_url}/id"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}{API_ROOT}"

    def handle(self, request: Request) -> Reply:
        if request.path == API_ROOT.rstrip("/") or request.path.startswith(API_ROOT):
            return self._domain_api(request)
        methods = self._routes.get(request.path)
        if methods is None:
            return json_reply(
                404, {"error": "not_found", "error_description": f"no endpoint at {request.path}"}
            )
        handler = methods.get(request.method)
        if handler is None:
            allowed = ", ".join(methods)
            return json_reply(
                405,
                {"error": "method_not_allowed", "error_description": f"{request.path} accepts {allowed}"},
                {"Allow": allowed},
            )
        return handler(request)

    def settings(self) -> dict[str, Any]:
        """Fault settings plus the runtime switches (``GET /admin/faults``)."""
        return {
            **self.faults.settings.as_dict(),
            "next_links": self.domain.next_links,
            "error_envelope": self.domain.error_envelope,
            "strict": self.domain.strict,
            "token_lifetime": self.identity.token_lifetime,
        }

    def update_settings(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Apply any subset of :meth:`settings` all at once; ValueError (nothing applied) if one is bad."""
        unknown = sorted(set(changes) - set(self.settings()))
        if unknown:
            raise ValueError(f"unknown setting(s) {unknown}; known: {sorted(self.settings())}")
        fault_changes = {k: v for k, v in changes.items() if k not in (*SETTING_FLAGS, "token_lifetime")}
        for flag in SETTING_FLAGS:
            if flag in changes and not isinstance(changes[flag], bool):
                raise ValueError(f"{flag} must be true or false, got {changes[flag]!r}")
        if "token_lifetime" in changes and check_count("token_lifetime", changes["token_lifetime"]) < 1:
            raise ValueError("token_lifetime must be at least 1 second")
        with self._settings_lock:
            self.faults.update(**fault_changes)
            for flag in SETTING_FLAGS:
                if flag in changes:
                    setattr(self.domain, flag, changes[flag])
            if "token_lifetime" in changes:
                self.identity.token_lifetime = changes["token_lifetime"]
            return self.settings()

    def touch(self, entity_set: str, ids: Sequence[str], at: datetime | None = None) -> int:
        """`Dataset.touch` (default `at`: now), counted in the stats; raises TouchError on bad input."""
        touched = self.domain.dataset.touch(entity_set, ids, at or datetime.now(timezone.utc))
        self.stats.rows_touched(touched)
        return touched

    def create(self, entity_set: str, count: int = 1, at: datetime | None = None) -> list[str]:
        """`Dataset.create` (default `at`: now), counted in the stats; raises CreateError on bad input."""
        created = self.domain.dataset.create(entity_set, count, at or datetime.now(timezone.utc))
        self.stats.rows_created(len(created))
        return created

    def delete(self, entity_set: str, ids: Sequence[str]) -> int:
        """`Dataset.delete`, counted in the stats; raises DeleteError on bad input."""
        deleted = self.domain.dataset.delete(entity_set, ids)
        self.stats.rows_deleted(deleted)
        return deleted

    def add_custom_property(self, entity_set: str, code: str) -> str:
        """`Dataset.add_custom_property`; raises CustomPropertyError on bad input."""
        return self.domain.dataset.add_custom_property(entity_set, code)

    def _domain_api(self, request: Request) -> Reply:
        self.stats.api_request()
        latency_ms = self.faults.settings.latency_ms
        if latency_ms:
            self.stopping.wait(latency_ms / 1000)
        fault = self.faults.decide()
        if fault is Fault.DROP:
            self.stats.fault(fault)
            return Reply(0, fault=fault)
        if fault is Fault.THROTTLE:
            retry_after = str(self.faults.settings.retry_after)
            reply = self._api_error(
                429, "TooManyRequests", "Too many requests: retry later", {"Retry-After": retry_after}
            )
        elif fault is Fault.UNAVAILABLE:
            reply = self._api_error(503, "ServiceUnavailable", "The service is temporarily unavailable")
        else:
            reply = self._authorized(request)
            if fault is Fault.TRUNCATE and reply.body:
                reply = Reply(reply.status, reply.headers, reply.body, fault)
            elif fault is Fault.TRUNCATE:
                fault = None
        if fault is not None:
            self.stats.fault(fault)
        self.stats.api_status(reply.status)
        return reply

    def _authorized(self, request: Request) -> Reply:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return self._api_error(
                401,
                "Unauthorized",
                "No bearer token: send 'Authorization: Bearer <access_token>' from /id/connect/token",
                {"WWW-Authenticate": 'Bearer realm="ERP.net Domain API"'},
            )
        try:
            access = self.identity.verify(token.strip())
        except InvalidToken as exc:
            challenge = f'Bearer error="invalid_token", error_description="{exc}"'
            return self._api_error(401, "Unauthorized", str(exc), {"WWW-Authenticate": challenge})
        path = request.path[len(API_ROOT) :]
        began = time.perf_counter()
        answer = self.domain.handle(
            request.method, path, request.query, base_url=self.api_url, scopes=access.scopes
        )
        # The Domain API's own time, so benchmarks can tell the sandbox's cost from the client's.
        timing = {"Server-Timing": f"app;dur={(time.perf_counter() - began) * 1000:.2f}"}
        return Reply(answer.status, {**answer.headers, **timing}, answer.body)

    def _api_error(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> Reply:
        error = {"code": code, "message": message, "type": "ErpNet.Sandbox.HttpError"}
        payload = {"error": error} if self.domain.error_envelope else error
        return json_reply(status, payload, {"OData-Version": "4.0", **(headers or {})})

    def _discovery(self, request: Request) -> Reply:
        return json_reply(200, self.identity.discovery())

    def _jwks(self, request: Request) -> Reply:
        return json_reply(200, self.identity.jwks())

    def _token(self, request: Request) -> Reply:
        try:
            form = parse_qs(request.body.decode("utf-8"), keep_blank_values=True)
            issued = self.identity.issue(
                request.headers.get("Content-Type"), form, request.headers.get("Authorization")
            )
        except UnicodeDecodeError:
            self.stats.token_error("invalid_request")
            return json_reply(
                400, {"error": "invalid_request", "error_description": "the body is not UTF-8"}, NO_STORE
            )
        except TokenError as exc:
            self.stats.token_error(exc.error)
            headers = dict(NO_STORE)
            if exc.status == 401:
                headers["WWW-Authenticate"] = 'Basic realm="ERP.net identity", error="invalid_client"'
            return json_reply(exc.status, exc.body(), headers)
        self.stats.token_issued(issued.client_id)
        return json_reply(200, issued.body, NO_STORE)

    def _auto_discovery(self, request: Request) -> Reply:
        sites = [
            {"Type": "ID", "Status": "Working", "Url": self.identity.issuer},
            {
                "Type": "DomainAPI",
                "Status": "Working",
                "Url": f"{self.base_url}/api",
                "AdditionalProperties": {"ODataServiceRoot": self.api_url},
            },
        ]
        return json_reply(200, {"WebSites": sites})

    def _get_settings(self, request: Request) -> Reply:
        return json_reply(200, self.settings())

    def _post_settings(self, request: Request) -> Reply:
        try:
            changes = json.loads(request.body or b"{}")
            if not isinstance(changes, dict):
                raise ValueError('send a JSON object such as {"rate_429": 0.5}')
            return json_reply(200, self.update_settings(changes))
        except ValueError as exc:
            return json_reply(400, {"error": "invalid_settings", "error_description": str(exc)})

    def _revoke_tokens(self, request: Request) -> Reply:
        return json_reply(200, {"revoked": self.identity.revoke_all()})

    def _touch(self, request: Request) -> Reply:
        def apply(body: dict[str, Any]) -> dict[str, Any]:
            entity_set, ids = _rows_named(body, TouchError)
            at = body.get("at")
            return {"touched": self.touch(entity_set, ids, None if at is None else _instant(at))}

        return _change_reply(request, '{"entity_set": "...", "ids": ["..."]}', apply)

    def _delete(self, request: Request) -> Reply:
        def apply(body: dict[str, Any]) -> dict[str, Any]:
            return {"deleted": self.delete(*_rows_named(body, DeleteError))}

        return _change_reply(request, '{"entity_set": "...", "ids": ["..."]}', apply)

    def _create(self, request: Request) -> Reply:
        def apply(body: dict[str, Any]) -> dict[str, Any]:
            entity_set, count, at = body.get("entity_set"), body.get("count", 1), body.get("at")
            if not isinstance(entity_set, str):
                raise CreateError("entity_set", "entity_set must be the name of an entity set")
            return {"created": self.create(entity_set, count, None if at is None else _instant(at))}

        return _change_reply(request, '{"entity_set": "Crm_Sales_Customers", "count": 3}', apply)

    def _custom_property(self, request: Request) -> Reply:
        def apply(body: dict[str, Any]) -> dict[str, Any]:
            entity_set = body.get("entity_set")
            if not isinstance(entity_set, str):
                raise CustomPropertyError("entity_set", "entity_set must be the name of an entity set")
            return {"property": self.add_custom_property(entity_set, body.get("code"))}

        return _change_reply(request, '{"entity_set": "Crm_Sales_Customers", "code": "Color"}', apply)

    def _get_stats(self, request: Request) -> Reply:
        return json_reply(200, self.stats.snapshot())

    def _reset_stats(self, request: Request) -> Reply:
        self.stats.reset()
        return json_reply(200, self.stats.snapshot())


def _change_reply(request: Request, example: str, apply: Callable[[dict[str, Any]], dict[str, Any]]) -> Reply:
    """A data change from a JSON object body: 200 with `apply`'s answer, or 400 naming the field."""
    try:
        payload = json.loads(request.body or b"null")
    except ValueError:
        payload = None
    try:
        if not isinstance(payload, dict):
            raise TouchError("body", f"send a JSON object such as {example}")
        answer = apply(payload)
    except TouchError as exc:
        error = {"error": "invalid_request", "field": exc.field, "error_description": str(exc)}
        return json_reply(400, error)
    return json_reply(200, answer)


def _rows_named(body: dict[str, Any], error: type[TouchError]) -> tuple[str, list[str]]:
    """The `entity_set` and `ids` of a touch or delete body, checked."""
    entity_set, ids = body.get("entity_set"), body.get("ids")
    if not isinstance(entity_set, str):
        raise error("entity_set", "entity_set must be the name of an entity set")
    if not isinstance(ids, list) or not all(isinstance(ident, str) for ident in ids):
        raise error("ids", "ids must be a list of Id strings")
    return entity_set, ids


def _instant(value: Any) -> datetime:
    """An ISO 8601 date-time with a zone (`2026-06-30T10:15:00Z`); Python 3.10 does not read `Z`."""
    text = value if isinstance(value, str) else ""
    try:
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        raise TouchError(
            "at", f"at must be an ISO 8601 date-time such as 2026-06-30T10:15:00Z, got {value!r}"
        ) from None
    if moment.tzinfo is None:
        raise TouchError("at", f"at needs a time zone (Z or an offset), got {value!r}")
    return moment


class _Handler(BaseHTTPRequestHandler):
    """One keep-alive connection: reads a request, asks the app, writes (or sabotages) the reply."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 120
    server: SandboxHTTPServer

    def _serve(self) -> None:
        body = self._read_body()
        if body is None:
            return
        target = urlsplit(self.path)
        request = Request(self.command, target.path, target.query, self.headers, body)
        try:
            reply = self.server.app.handle(request)
        except Exception:
            logger.exception("sandbox: unhandled error answering %s %s", self.command, target.path)
            reply = json_reply(
                500, {"error": "server_error", "error_description": "sandbox bug: see its log"}
            )
        self._write(reply)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self._refuse(411, "send a Content-Length; chunked request bodies are not supported")
            return None
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY_BYTES:
            self._refuse(400 if length < 0 else 413, f"Content-Length must be 0..{MAX_BODY_BYTES}")
            return None
        return self.rfile.read(length) if length else b""

    def _refuse(self, status: int, message: str) -> None:
        self.close_connection = True
        self._write(json_reply(status, {"error": "invalid_request", "error_description": message}))

    def _write(self, reply: Reply) -> None:
        if reply.fault is Fault.DROP:
            self.close_connection = True
            return
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if reply.fault is Fault.TRUNCATE:
            self.wfile.write(reply.body[: len(reply.body) // 2])
            self.close_connection = True
        else:
            self.wfile.write(reply.body)

    def version_string(self) -> str:
        return "ERPnetSandbox/0.1"

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)


class SandboxHTTPServer(ThreadingHTTPServer):
    """Threaded HTTP(S) server on 127.0.0.1 that can close its open keep-alive connections on stop.

    With ``tls`` (a server-side context), each connection's handshake happens in its own handler
    thread, so a client that never completes one cannot stall the others.
    """

    daemon_threads = True
    block_on_close = True

    def __init__(
        self, port: int, app: SandboxApp, *, verbose: bool = False, tls: ssl.SSLContext | None = None
    ) -> None:
        self.app = app
        self.verbose = verbose
        self._tls = tls
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", port), _Handler)
        app.bind(f"{'https' if tls else 'http'}://127.0.0.1:{self.server_port}")

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self._tls is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(_Handler.timeout)
        wrapped = self._tls.wrap_socket(request, server_side=True, do_handshake_on_connect=False)
        with self._connections_lock:
            self._connections.discard(request)
            self._connections.add(wrapped)
        try:
            wrapped.do_handshake()
            super().finish_request(wrapped, client_address)
        finally:
            with self._connections_lock:
                self._connections.discard(wrapped)
            wrapped.close()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Wake handler threads blocked on idle keep-alive connections so they can be joined."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            # The handler may have closed it in the meantime: nothing left to do then.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(connection, socket.SHUT_RDWR)  # also under a TLS wrapper

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, OSError):
            logger.debug(
                "sandbox: connection from port %s ended: %s", client_address[1], type(error).__name__
            )
        else:
            logger.exception("sandbox: error on connection from port %s", client_address[1])
