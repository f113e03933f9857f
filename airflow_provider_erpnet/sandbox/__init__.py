"""A local ERP.net: identity server, Domain API over generated data, fault injection, admin endpoints.

Tests and offline DAG development talk to it over real HTTP on 127.0.0.1::

    with Sandbox(scale=1000) as sandbox:
        os.environ["AIRFLOW_CONN_ERPNET_DEFAULT"] = sandbox.connection_json()
        ...

See docs/sandbox.md for the command line, the default trusted apps and the admin endpoints.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from airflow_provider_erpnet.client.clock import SYSTEM_CLOCK, Clock
from airflow_provider_erpnet.sandbox.data import FIXED_END as FIXED_DATA_END
from airflow_provider_erpnet.sandbox.faults import FaultInjector, FaultSettings
from airflow_provider_erpnet.sandbox.identity import DEFAULT_CLIENT_ID, DEFAULT_SECRET, Identity, TrustedApp
from airflow_provider_erpnet.sandbox.server import SandboxApp, SandboxHTTPServer

if TYPE_CHECKING:
    from airflow_provider_erpnet.sandbox.data import Dataset
    from airflow_provider_erpnet.sandbox.tls import Certificates

__all__ = ["DEFAULT_CLIENT_ID", "DEFAULT_SECRET", "FIXED_DATA_END", "Sandbox", "TrustedApp"]


class Sandbox:
    """An ERP.net sandbox served in a background thread; use as a context manager or start()/stop().

    ``apps`` are added to the default trusted apps (same ApplicationUri replaces a default).
    ``clock`` dates the tokens the identity server issues and checks (tests pass a
    ``ManualClock`` to expire tokens without waiting).
    ``tls=True`` serves HTTPS with a certificate from a throwaway CA; a client trusts it through
    :attr:`ca_bundle` (the connection's ``ca_bundle`` extra).
    ``strict`` makes the Domain API a standard OData v4 server instead of ERP.net's dialect: ``+``
    in a query is a plus sign, ``$select`` has no ``default``, dates are written ``2020-01-01``.
    ``data_end`` is the latest generated update stamp: the current time by default, so that the
    last hours hold rows; tests pass ``FIXED_DATA_END`` (what the pytest fixtures use).
    """

    def __init__(
        self,
        *,
        port: int = 0,
        scale: int = 1000,
        seed: int = 0,
        token_lifetime: int = 3600,
        latency_ms: int = 0,
        rate_429: float = 0.0,
        retry_after: int = 1,
        rate_503: float = 0.0,
        rate_drop: float = 0.0,
        rate_truncate: float = 0.0,
        next_links: bool = True,
        error_envelope: bool = True,
        strict: bool = False,
        data_end: datetime | None = None,
        apps: Sequence[TrustedApp] | None = None,
        verbose: bool = False,
        clock: Clock = SYSTEM_CLOCK,
        tls: bool = False,
    ) -> None:
        # Imported here so that importing the package (identity, faults) stays light.
        from airflow_provider_erpnet.sandbox.data import Dataset
        from airflow_provider_erpnet.sandbox.domain import DomainService

        if not 0 <= port <= 65535:
            raise ValueError(f"port must be 0 (any free port) or 1..65535, got {port}")
        faults = FaultInjector(
            FaultSettings(
                latency_ms=latency_ms,
                rate_429=rate_429,
                retry_after=retry_after,
                rate_503=rate_503,
                rate_drop=rate_drop,
                rate_truncate=rate_truncate,
            ),
            seed=seed,
        )
        identity = Identity(apps, token_lifetime=token_lifetime, clock=clock)
        self._dataset = Dataset(scale=scale, seed=seed, end=data_end or datetime.now(timezone.utc))
        domain = DomainService(
            self._dataset,
            next_links=next_links,
            error_envelope=error_envelope,
            strict=strict,
            read_ahead=True,
        )
        self._app = SandboxApp(identity, domain, faults)
        self._domain = domain
        self._port = port
        self._verbose = verbose
        self._tls = tls
        self._certificates: Certificates | None = None
        self._server: SandboxHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Sandbox:
        """Bind 127.0.0.1 and serve in a daemon thread; returns self."""
        if self._server is not None:
            raise RuntimeError("the sandbox is already running; stop() it before starting it again")
        self._app.stopping.clear()
        context = None
        if self._tls:
            from airflow_provider_erpnet.sandbox.tls import self_signed  # cryptography: only when asked

            self._certificates = self_signed(Path(tempfile.mkdtemp(prefix="erpnet-sandbox-tls-")))
            context = self._certificates.server_context()
        server = SandboxHTTPServer(self._port, self._app, verbose=self._verbose, tls=context)
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"erpnet-sandbox-{server.server_port}",
            daemon=True,
        )
        thread.start()
        self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        """Stop accepting, close open connections and the socket, join every server thread."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.shutdown()
        self._app.stopping.set()
        server.close_connections()
        server.server_close()
        thread.join()
        self._domain.close()
        self._server = self._thread = None
        if self._certificates is not None:
            shutil.rmtree(self._certificates.ca_bundle.parent, ignore_errors=True)
            self._certificates = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (the instance root, i.e. the connection's host)."""
        if self._server is None:
            raise RuntimeError("the sandbox is not running: call start() or use it as a context manager")
        return self._app.base_url

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the sandbox is not running: call start() or use it as a context manager")
        return self._server.server_port

    @property
    def ca_bundle(self) -> str:
        """Path of the CA certificate that verifies this sandbox's HTTPS (``tls=True`` only)."""
        if self._certificates is None:
            raise RuntimeError("the sandbox serves HTTPS only when started with tls=True")
        return str(self._certificates.ca_bundle)

    @property
    def identity_url(self) -> str:
        return f"{self.base_url}/id"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/domain/odata/"

    @property
    def dataset(self) -> Dataset:
        return self._dataset

    def connection(
        self, client_id: str = DEFAULT_CLIENT_ID, secret: str = DEFAULT_SECRET, **extra: Any
    ) -> dict[str, Any]:
        """An Airflow connection (JSON form) to this sandbox; ``extra`` becomes the connection's extra.

        Over HTTPS the extra names the sandbox's CA bundle unless ``extra`` says otherwise.
        """
        if self._certificates is not None:
            extra = {"ca_bundle": self.ca_bundle, **extra}
        return {
            "conn_type": "erpnet",
            "host": self.base_url,
            "login": client_id,
            "password": secret,
            "extra": extra,
        }

    def connection_json(
        self, client_id: str = DEFAULT_CLIENT_ID, secret: str = DEFAULT_SECRET, **extra: Any
    ) -> str:
        """A ready value for ``AIRFLOW_CONN_ERPNET_DEFAULT``."""
        return json.dumps(self.connection(client_id, secret, **extra))

    def settings(self) -> dict[str, Any]:
        """Current fault settings and switches, as ``GET /admin/faults`` shows them."""
        return self._app.settings()

    def set_faults(self, **changes: Any) -> dict[str, Any]:
        """Change faults or switches at runtime (same names as the constructor); returns the new settings."""
        return self._app.update_settings(changes)

    def stats(self) -> dict[str, Any]:
        return self._app.stats.snapshot()

    def reset_stats(self) -> None:
        self._app.stats.reset()

    def warm(self, entity_set: str, select: str | None = None) -> int:
        """Build every row of ``entity_set`` (as ``$select=<select>`` returns it) ahead of requests."""
        return self._domain.warm(entity_set, select)

    def touch(self, entity_set: str, ids: Sequence[str], at: datetime | None = None) -> int:
        """Update rows between runs (``POST /admin/touch``; see ``Dataset.touch``); ``at`` defaults to now."""
        return self._app.touch(entity_set, ids, at)

    def create(self, entity_set: str, count: int = 1, at: datetime | None = None) -> list[str]:
        """Insert rows during a run (``POST /admin/create``; see ``Dataset.create``); returns their Ids."""
        return self._app.create(entity_set, count, at)

    def delete(self, entity_set: str, ids: Sequence[str]) -> int:
        """Delete rows between runs (``POST /admin/delete``; see ``Dataset.delete``)."""
        return self._app.delete(entity_set, ids)

    def add_custom_property(self, entity_set: str, code: str) -> str:
        """Add ``CustomProperty_<code>`` to a set at runtime (``POST /admin/custom-property``; see
        ``Dataset.add_custom_property``); returns the property name."""
        return self._app.add_custom_property(entity_set, code)

    def revoke_tokens(self) -> int:
        """Every token issued so far now gets 401; returns how many were still valid."""
        return self._app.identity.revoke_all()
