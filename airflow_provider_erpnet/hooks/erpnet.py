"""Airflow hook for ERP.net: turns an ``erpnet`` connection into a configured ERP.net client.

The hook is deliberately thin: everything about tokens, retries and paging lives in the
Airflow-free client core (``airflow_provider_erpnet.client``); this module only reads the
connection, registers secrets with Airflow's masker and delegates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from types import TracebackType
from typing import Any
from uuid import UUID

from airflow.sdk import BaseHook
from airflow.sdk.log import mask_secret

from airflow_provider_erpnet.client import auth
from airflow_provider_erpnet.client.client import ErpNetClient
from airflow_provider_erpnet.client.errors import ErpNetConfigError, ErpNetError
from airflow_provider_erpnet.client.metadata import ServiceMetadata
from airflow_provider_erpnet.client.odata import Page
from airflow_provider_erpnet.client.settings import ErpNetSettings
from airflow_provider_erpnet.hooks.connection_extras import in_form_terms, settings_from_connection
from airflow_provider_erpnet.operators.extraction import CheckCount
from airflow_provider_erpnet.operators.partitioned import gather_parts

# A connection test answers a person waiting in the UI or the CLI: two attempts per request, not a
# minute of backoff, before it says what is wrong.
TEST_CONNECTION_ATTEMPTS = 2


class ErpNetHook(BaseHook):
    """Read ERP.net data through a trusted application's client-credentials token.

    :param erpnet_conn_id: id of an ``erpnet`` connection: host = ERP.net instance URL,
        login = trusted application URI, password = the application's secret.
    """

    conn_name_attr = "erpnet_conn_id"
    default_conn_name = "erpnet_default"
    conn_type = "erpnet"
    hook_name = "ERP.net"

    def __init__(self, erpnet_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.erpnet_conn_id = erpnet_conn_id
        self._client: ErpNetClient | None = None

    def get_settings(self) -> ErpNetSettings:
        """Build client settings from the connection; the secret is masked before anything logs."""
        return self._settings(conn_id=self.erpnet_conn_id)

    def get_conn(self) -> ErpNetClient:
        """The configured client: one HTTP session and token provider, built once per hook."""
        if self._client is None:
            self._client = _masked_client(self.get_settings())
        return self._client

    def new_client(self, **overrides: Any) -> ErpNetClient:
        """A separate client whose settings differ in ``overrides`` (e.g. ``max_attempts=1`` for a
        poller that waits on its own schedule); tokens still come from the shared token cache.
        The caller closes it."""
        return _masked_client(replace(self.get_settings(), **overrides))

    def iter_pages(
        self,
        entity_set: str,
        *,
        filter: str | None = None,
        select: str | Sequence[str] | None = None,
        expand: str | None = None,
        orderby: str | None = None,
        page_size: int | None = None,
        params: Mapping[str, str] | None = None,
        decode: Callable[[bytes], Any] | None = None,
        expected_rows: int | None = None,
    ) -> Iterator[Page]:
        """Stream pages of ``entity_set``; the options are those of ``ErpNetClient.iter_pages``."""
        return self.get_conn().iter_pages(
            entity_set,
            filter=filter,
            select=select,
            expand=expand,
            orderby=orderby,
            page_size=page_size,
            params=params,
            decode=decode,
            expected_rows=expected_rows,
        )

    def iter_records(
        self,
        entity_set: str,
        *,
        filter: str | None = None,
        select: str | Sequence[str] | None = None,
        expand: str | None = None,
        orderby: str | None = None,
        page_size: int | None = None,
        params: Mapping[str, str] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Stream records of ``entity_set`` one page at a time; options as for :meth:`iter_pages`."""
        return self.get_conn().iter_records(
            entity_set,
            filter=filter,
            select=select,
            expand=expand,
            orderby=orderby,
            page_size=page_size,
            params=params,
        )

    def count(self, entity_set: str, *, filter: str | None = None) -> int:
        """Rows the server counts for ``entity_set`` with ``filter``."""
        return self.get_conn().count(entity_set, filter=filter)

    def get(
        self,
        entity_set: str,
        id: str | UUID,
        *,
        select: str | Sequence[str] | None = None,
        expand: str | None = None,
    ) -> dict[str, Any]:
        """One record by its Id."""
        return self.get_conn().get(entity_set, id, select=select, expand=expand)

    def metadata(self) -> ServiceMetadata:
        """The instance's ``$metadata`` (entity sets, properties, types), fetched once per hook."""
        return self.get_conn().metadata()

    def plan_partitions(
        self, entity_set: str, partitions: int, *, filter: str | None = None, by: str | None = None
    ) -> list[dict[str, Any]]:
        """Split ``entity_set`` into ``partitions`` ranges of about equal size, for dynamic mapping.

        Returns ``Partition.to_dict()`` for each range (JSON for XCom), to feed
        ``ErpNetODataOperator.partial(...).expand(partition=...)``; ``by`` is ``"Id"``,
        ``"CreationTime"`` or None (the planner picks). See docs/partitions.md.
        """
        plan = self.get_conn().plan_partitions(entity_set, partitions, filter=filter, by=by)
        return [partition.to_dict() for partition in plan]

    def gather_partitions(
        self, parts: Iterable[Mapping[str, Any]], *, check_count: CheckCount = True
    ) -> dict[str, Any]:
        """One manifest for the part manifests of a partitioned extraction, checked with ``$count``.

        ``parts`` is what the mapped extraction tasks returned (in any order); the result lists
        every part's files and reads like one extraction's manifest (``iter_records``,
        ``read_table``). Raises ``ErpNetIncompleteError`` if a part is missing or repeated or the
        parts do not account for the set's ``$count``; see ``operators.partitioned.gather_parts``.
        """
        if parts is None or isinstance(parts, Mapping):
            raise ErpNetConfigError(
                "gather_partitions takes the list of part manifests (the mapped task's output), "
                f"not {type(parts).__name__}."
            )
        return gather_parts(self.get_conn().count, parts, check_count=check_count, logger=self.log).to_dict()

    def __enter__(self) -> ErpNetHook:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP session if the client was built."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def test_connection(self) -> tuple[bool, str]:
        """Get a token and read the service document; the message says what to fix on failure.

        Messages name the form's fields ("Identity server URL ...") and not the connection id: the
        UI tests a connection under a temporary id that means nothing to the person reading.
        """
        try:
            settings = self._settings(conn_id=None)
        except ErpNetConfigError as exc:
            return False, str(exc)  # already in the form's words
        try:
            quick = replace(settings, max_attempts=min(settings.max_attempts, TEST_CONNECTION_ATTEMPTS))
            with _masked_client(quick) as client:
                client.transport.auth.token()
                document = client.service_document()
        except ErpNetError as exc:
            return False, in_form_terms(exc)
        sets = document.get("value", []) if isinstance(document, Mapping) else []
        return True, (
            f"Connected to ERP.net as {settings.client_id!r}: token issued by "
            f"{settings.resolved_identity_url}, Domain API at {settings.resolved_api_url} "
            f"lists {len(sets)} entity sets."
        )

    def _settings(self, *, conn_id: str | None) -> ErpNetSettings:
        conn = self.get_connection(self.erpnet_conn_id)
        if conn.password:
            mask_secret(conn.password)
        return settings_from_connection(
            conn_id=conn_id,
            host=conn.host,
            login=conn.login,
            password=conn.password,
            extra=conn.extra_dejson,
        )


def _masked_client(settings: ErpNetSettings) -> ErpNetClient:
    """A client whose secret and tokens reach Airflow's masker before anything can log them."""
    auth.set_secret_masker(mask_secret)
    return ErpNetClient(settings)
