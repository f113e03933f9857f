"""``ErpNetClient``: the one object hooks, operators and scripts use to read the Domain API."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from types import TracebackType
from typing import Any
from uuid import UUID

from .dialect import Dialect
from .errors import ErpNetApiError, ErpNetError, ErpNetTransportError
from .literals import as_guid
from .metadata import ServiceMetadata, parse_metadata, unknown_entity_set_message
from .odata import ODataQuery, Page, check_entity_set, iter_pages, normalise_select
from .partitions import PARTITION_SAMPLE, Partition, plan_partitions
from .settings import ErpNetSettings
from .transport import Transport
from .urls import safe_url

log = logging.getLogger(__name__)

# Statuses with which a server that lacks the ``/$count`` path segment may refuse it.
_COUNT_SEGMENT_REFUSED = frozenset({400, 404, 405, 501})
# ERP.net counts rows in a database; 18 digits is more than any table holds, and a longer "count"
# (100,000 digits, say) is an answer to refuse, not to convert.
MAX_COUNT_DIGITS = 18
_DIGITS = re.compile(rf"[0-9]{{1,{MAX_COUNT_DIGITS}}}")


class ErpNetClient:
    """Reads entity sets page by page, counts them and fetches single records and metadata.

    Pass a ``transport`` to share one session and token between clients; the client closes
    only a transport it created itself. ``dialect`` records which of ERP.net's query forms the
    server refused (``$select=default``, ``2020-01-01Z``): see ``client/dialect.py``.
    """

    def __init__(self, settings: ErpNetSettings, *, transport: Transport | None = None) -> None:
        self.settings = settings
        self.api_url = settings.resolved_api_url
        self._owns_transport = transport is None
        self.transport = transport if transport is not None else Transport(settings)
        self._metadata: ServiceMetadata | None = None
        self._count_segment = True
        self.dialect = Dialect()

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
        """Stream the pages of an entity set; options are checked now, requests start on iteration.

        ``decode`` turns each page body into a dict or an object with ``value`` and ``next_link``
        (``io.pagecodec.PageCodec.decode``); the extraction passes one that switches to its page
        codec once page 1 decided the columns. Default: JSON with ``Decimal`` for non-integers.
        ``expected_rows``: the count the caller got for the same filter, if any; paging stops with an
        error when the server sends well beyond it (see ``odata.PageGuard``).
        """
        query = ODataQuery(
            entity_set=entity_set,
            filter=filter,
            select=select,
            expand=expand,
            orderby=orderby,
            page_size=page_size if page_size is not None else self.settings.page_size,
            params=params or {},
        )

        def fetch_json(url: str, page_params: Mapping[str, str] | None) -> Any:
            def get(options: Mapping[str, str] | None) -> Any:
                return self.transport.get_json(url, options, entity_set=entity_set, decode=decode)

            with self._explain_unknown_set(entity_set):
                return self.dialect.send(get, page_params)

        return iter_pages(fetch_json, self.api_url, query, expected=expected_rows)

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
        """Stream records one by one; the options are those of :meth:`iter_pages`."""
        pages = self.iter_pages(
            entity_set,
            filter=filter,
            select=select,
            expand=expand,
            orderby=orderby,
            page_size=page_size,
            params=params,
        )
        return (record for page in pages for record in page.records)

    def count(self, entity_set: str, *, filter: str | None = None) -> int:
        """How many records match ``filter``, from ``Set/$count`` or, where missing, ``$count=true``."""
        url = self._set_url(entity_set)
        params = {"$filter": filter} if filter else {}
        with self._explain_unknown_set(entity_set):
            if not self._count_segment:
                return self._count_inline(url, params, entity_set)
            try:
                response = self.dialect.send(
                    lambda options: self.transport.get(
                        f"{url}/$count", options, entity_set=entity_set, accept="text/plain"
                    ),
                    params,
                )
            except ErpNetApiError as error:
                if error.status not in _COUNT_SEGMENT_REFUSED:
                    raise
                total = self._count_inline(url, params, entity_set)
                log.info("The Domain API refused /$count (HTTP %d); counting with $count=true", error.status)
                self._count_segment = False
                return total
            return _parse_count(response.content, url)

    def plan_partitions(
        self, entity_set: str, partitions: int, *, filter: str | None = None, by: str | None = None
    ) -> list[Partition]:
        """Split the rows matching ``filter`` into ``partitions`` ranges of about equal size.

        See ``client.partitions``: ranges of ``Id`` (or ``CreationTime``) that rows cannot leave,
        balanced by ``$count`` bisection, verified to add up to the set's ``$count``.
        """

        def first_ids(orderby: str) -> list[str]:
            pages = self.iter_pages(
                entity_set, filter=filter, select="Id", orderby=orderby, page_size=PARTITION_SAMPLE
            )
            with closing(pages):
                page = next(pages, None)
            return [str(record["Id"]) for record in (page.records if page else []) if record.get("Id")]

        properties = [p.name for p in self.metadata().entity_type(entity_set).properties]
        return plan_partitions(
            lambda text: self.count(entity_set, filter=text),
            first_ids,
            entity_set,
            partitions,
            filter=filter,
            by=by,
            properties=properties,
        )

    def get(
        self,
        entity_set: str,
        id: str | UUID,
        *,
        select: str | Sequence[str] | None = None,
        expand: str | None = None,
    ) -> dict[str, Any]:
        """One record by its GUID, shaped like the records ``iter_records`` yields."""
        url = f"{self._set_url(entity_set)}({as_guid(id)})"
        params: dict[str, str] = {}
        names = normalise_select(select)
        if names:
            params["$select"] = ",".join(names)
        if expand:
            params["$expand"] = expand
        with self._explain_unknown_set(entity_set):
            body = self.dialect.send(
                lambda options: self.transport.get_json(url, options, entity_set=entity_set), params
            )
        if not isinstance(body, dict):
            raise ErpNetTransportError(f"{entity_set}({id}) did not answer with a JSON object.", url=url)
        body.pop("@odata.context", None)
        return body

    def metadata(self) -> ServiceMetadata:
        """The service's ``$metadata``, fetched once per client."""
        if self._metadata is None:
            response = self.transport.get(f"{self.api_url}$metadata", accept="application/xml")
            self._metadata = parse_metadata(response.content)
            log.debug("Parsed $metadata: %d entity sets", len(self._metadata.entity_sets))
        return self._metadata

    def service_document(self) -> dict[str, Any]:
        """The service document: the entity sets this API exposes (also a cheap connection test)."""
        body = self.transport.get_json(self.api_url)
        if not isinstance(body, dict):
            raise ErpNetTransportError(
                "The Domain API root did not answer with a JSON object.", url=self.api_url
            )
        return body

    def close(self) -> None:
        if self._owns_transport:
            self.transport.close()

    def __enter__(self) -> ErpNetClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _set_url(self, entity_set: str) -> str:
        return f"{self.api_url}{check_entity_set(entity_set)}"

    def _count_inline(self, url: str, params: Mapping[str, str], entity_set: str) -> int:
        body = self.dialect.send(
            lambda options: self.transport.get_json(url, options, entity_set=entity_set),
            {**params, "$count": "true", "$top": "0"},
        )
        total = body.get("@odata.count") if isinstance(body, dict) else None
        if isinstance(total, bool) or not isinstance(total, int) or not 0 <= total < 10**MAX_COUNT_DIGITS:
            raise ErpNetTransportError(
                f"{entity_set}?$count=true answered without a valid @odata.count (a number of at most "
                f"{MAX_COUNT_DIGITS} digits); check that api_url points at ERP.net's Domain API.",
                url=safe_url(url),
                setting="api_url",
            )
        return total

    @contextmanager
    def _explain_unknown_set(self, entity_set: str) -> Iterator[None]:
        """Turn a 404 for an entity set that ``$metadata`` lacks into a message with close names."""
        try:
            yield
        except ErpNetApiError as error:
            if error.status != 404:
                raise
            try:
                metadata = self.metadata()
            except ErpNetError as metadata_error:
                log.warning(
                    "Could not read $metadata to explain a 404 for %s: %s", entity_set, metadata_error
                )
                raise error from None
            if entity_set in metadata.entity_sets:
                raise
            raise ErpNetApiError(
                unknown_entity_set_message(entity_set, metadata.closest_entity_sets(entity_set)),
                status=error.status,
                code=error.code,
                error_type=error.error_type,
                server_message=error.server_message,
                entity_set=entity_set,
                url=error.url,
            ) from error


def _parse_count(body: bytes, url: str) -> int:
    digits = body[:100].decode("utf-8-sig", errors="replace").strip()
    if not _DIGITS.fullmatch(digits):
        raise ErpNetTransportError(
            f"{safe_url(url)}/$count did not answer with a number (a count of at most {MAX_COUNT_DIGITS} "
            "digits); check that api_url points at ERP.net's Domain API.",
            url=safe_url(f"{url}/$count"),
            setting="api_url",
        )
    return int(digits)
