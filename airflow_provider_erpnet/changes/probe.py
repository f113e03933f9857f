"""Cheap questions to an entity set: did any row change at or after an instant, and how many?

An idle poll is one ``$count`` request with a ``ge`` filter on the incremental column, which the
Domain API answers with a number. Only when rows changed does the probe ask two more: the newest
value (``$top=1`` ordered by the column, descending) and the count up to that value, so that the
count and the newest instant describe the same closed range. A server that refuses to order by
the column gets the newest value from a scan of the changed rows' column instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from airflow_provider_erpnet.client.client import ErpNetClient
from airflow_provider_erpnet.client.errors import ErpNetApiError, ErpNetTransportError
from airflow_provider_erpnet.operators.windows import and_filters

from .instants import format_instant, parse_instant

log = logging.getLogger(__name__)

DEFAULT_COLUMN = "AggregateLastUpdateTimeUtc"
# Statuses with which a server may refuse $orderby on a column it cannot sort by.
_ORDER_REFUSED = frozenset({400, 500, 501})


@dataclass(frozen=True)
class Changes:
    """Rows whose column lies in ``[since, newest]`` (instants in ticks, see ``changes.instants``)."""

    since: int
    newest: int
    count: int


class ChangeProbe:
    """Asks one entity set about rows changed at or after an instant; see the module docstring.

    ``filter`` (optional) narrows the rows that count, e.g. one company's orders; it is ANDed with
    the column's range.
    """

    def __init__(self, entity_set: str, column: str = DEFAULT_COLUMN, filter: str | None = None) -> None:
        self.entity_set = entity_set
        self.column = column
        self.filter = filter
        self._orderable = True

    def range_filter(self, since: int, until: int | None = None) -> str:
        """``<column> ge <since> [and <column> le <until>]``, ANDed with the probe's filter."""
        window = f"{self.column} ge {format_instant(since)}"
        if until is not None:
            window += f" and {self.column} le {format_instant(until)}"
        return and_filters(self.filter, window) or window

    def changes_since(self, client: ErpNetClient, since: int) -> Changes | None:
        """None when no row's column is at or after ``since``; otherwise count and newest instant."""
        if client.count(self.entity_set, filter=self.range_filter(since)) == 0:
            return None
        newest = self._newest(client, since)
        if newest is None:  # the rows went away between the two requests
            return None
        count = client.count(self.entity_set, filter=self.range_filter(since, newest))
        return Changes(since=since, newest=newest, count=count)

    def _newest(self, client: ErpNetClient, since: int) -> int | None:
        if self._orderable:
            try:
                return self._newest_ordered(client, since)
            except ErpNetApiError as error:
                if error.status not in _ORDER_REFUSED:
                    raise
                log.info(
                    "%s: the server refused $orderby=%s desc (HTTP %d); finding the newest value by "
                    "reading the changed rows' %s instead.",
                    self.entity_set,
                    self.column,
                    error.status,
                    self.column,
                )
                self._orderable = False
        return self._newest_scanned(client, since)

    def _newest_ordered(self, client: ErpNetClient, since: int) -> int | None:
        pages = client.iter_pages(
            self.entity_set,
            filter=self.range_filter(since),
            select=self.column,
            orderby=f"{self.column} desc",
            page_size=1,
        )
        try:
            first = next(pages, None)
        finally:
            pages.close()
        records = first.records if first is not None else []
        return self._instant(records[0]) if records else None

    def _newest_scanned(self, client: ErpNetClient, since: int) -> int | None:
        records = client.iter_records(self.entity_set, filter=self.range_filter(since), select=self.column)
        return max((self._instant(record) for record in records), default=None)

    def _instant(self, record: dict) -> int:
        value = record.get(self.column)
        if not isinstance(value, str):
            raise ErpNetTransportError(
                f"{self.entity_set}: the server sent {self.column}={value!r}, not a date-time; "
                "check that the column is the entity set's incremental timestamp."
            )
        return parse_instant(value, what=f"{self.entity_set}.{self.column}")
