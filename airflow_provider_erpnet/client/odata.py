"""OData query options and paging over an entity set.

Paging is one strategy object (``Pager``) that decides which request fetches the next page, and
one driver (``iter_pages``) that sends those requests and yields pages. The strategy:

1. Page 1 is requested with the query's options and ``$top``.
2. If the server sends ``@odata.nextLink`` (ERP.net 26.2+), it is followed verbatim, but only to
   the configured API origin: the bearer token must never go to another host.
3. If a full page comes back without a next link (older servers), the pager continues with
   ``$skip`` on a stable order (``Id`` is appended to the order if missing). When that order
   differs from the one page 1 used, page 1 is fetched again in that order before anything is
   yielded, so every page comes from the same ordering.
4. A short or empty page ends the stream (a final empty page is not yielded), and so does a page
   without a next link once the server has sent one (it omits the link only on the last page).

A server that never ends the stream is stopped by :class:`PageGuard`: a page repeating the
previous page's Ids, the same next link twice, empty pages that keep linking on, or, when the
caller knows how many rows to expect (``$count``), more rows or pages than that count allows.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

from .errors import ErpNetConfigError, ErpNetTransportError
from .settings import MAX_PAGE_SIZE
from .urls import Destination, safe_url

log = logging.getLogger(__name__)

# Empty pages that still link on: none in ERP.net's paging; a few are tolerated, then it is a loop.
MAX_EMPTY_PAGES = 3
# Paging stops once rows exceed the expected count by this share of it (or a page, if more).
ROW_MARGIN = 0.1
# Options the pager owns; a caller setting them through ``params`` would break paging.
_PAGING_OPTIONS = frozenset({"$top", "$skip", "$skiptoken"})
_NAMED_OPTIONS = frozenset({"$filter", "$select", "$expand", "$orderby"})
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def check_entity_set(name: str) -> str:
    """Return ``name`` if it can be an entity set; it becomes a URL path segment, so nothing else may."""
    if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name):
        raise ErpNetConfigError(
            f"{name!r} is not an entity set name; names look like 'Crm_Sales_Customers' "
            "(letters, digits and underscores)."
        )
    return name


@dataclass(frozen=True)
class ODataQuery:
    """What to read from one entity set; ``select`` accepts ``"A,B"`` or a sequence of names."""

    entity_set: str
    filter: str | None = None
    select: str | Sequence[str] | None = None  # stored as a tuple of names
    expand: str | None = None
    orderby: str | None = None
    page_size: int = MAX_PAGE_SIZE
    params: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_entity_set(self.entity_set)
        object.__setattr__(self, "select", normalise_select(self.select))
        object.__setattr__(self, "params", dict(self.params))
        if isinstance(self.page_size, bool) or not isinstance(self.page_size, int):
            raise ErpNetConfigError(f"page_size must be an integer, got {self.page_size!r}.")
        if not 1 <= self.page_size <= MAX_PAGE_SIZE:
            raise ErpNetConfigError(
                f"page_size {self.page_size} is out of range: use 1..{MAX_PAGE_SIZE} "
                "(ERP.net recommends 1000 and advises against more)."
            )
        for name in self.params:
            if name in _PAGING_OPTIONS:
                raise ErpNetConfigError(
                    f"{name} is managed by the pager; set page_size instead of passing {name} in params."
                )
            if name in _NAMED_OPTIONS:
                raise ErpNetConfigError(
                    f"{name} was passed in params; use the {name[1:]}= argument of the query instead."
                )

    def to_params(self) -> dict[str, str]:
        """Query options for page 1."""
        params: dict[str, str] = {}
        if self.filter:
            params["$filter"] = self.filter
        if self.select:
            params["$select"] = ",".join(self.select)
        if self.expand:
            params["$expand"] = self.expand
        if self.orderby:
            params["$orderby"] = self.orderby
        params["$top"] = str(self.page_size)
        params.update(self.params)
        return params


@dataclass(frozen=True)
class Page:
    """One page of records, as the server returned it."""

    number: int  # 1-based
    records: list[dict[str, Any]]
    next_link: str | None


@dataclass(frozen=True)
class PageRequest:
    """A request for one page: ``params`` is None when ``url`` is a next link sent verbatim."""

    url: str
    params: dict[str, str] | None


class Pager:
    """Paging strategy for one query: which request fetches each page, and when to stop."""

    def __init__(self, api_url: str, query: ODataQuery) -> None:
        self.api_url = api_url
        self.query = query
        self.url = urljoin(api_url, query.entity_set)
        # Plain http is the transport's call (it knows the setting); here only where links lead.
        self._api = Destination(
            api_url,
            setting="api_url",
            service="Domain API",
            carries="the access token",
            allow_plain_http=True,
        )
        self._seen_links: set[str] = set()

    def first(self) -> PageRequest:
        """Request for page 1."""
        return PageRequest(self.url, self.query.to_params())

    def restart_in_stable_order(self, page: Page) -> PageRequest | None:
        """If page 1 needs ``$skip`` paging in another order than it used, the request to redo it."""
        if page.next_link is not None or len(page.records) < self.query.page_size:
            return None
        if stable_orderby(self.query.orderby) == self.query.orderby:
            return None
        return PageRequest(self.url, self._skip_params(0))

    def next(self, page: Page, skip: int) -> PageRequest | None:
        """Request for the page after ``page`` (``skip`` rows already read), or None at the end."""
        if page.next_link is not None:
            return PageRequest(self._checked_next_link(page.next_link, page.number), None)
        if self._seen_links or len(page.records) < self.query.page_size:
            # A server that sends next links omits one only on the last page.
            return None
        return PageRequest(self.url, self._skip_params(skip))

    def _skip_params(self, skip: int) -> dict[str, str]:
        params = self.query.to_params()
        params["$orderby"] = stable_orderby(self.query.orderby)
        if skip:
            params["$skip"] = str(skip)
        return params

    def _checked_next_link(self, next_link: str, number: int) -> str:
        try:
            link = urljoin(self.api_url, next_link)
        except ValueError:
            link = next_link
        refusal = self._api.refusal(link)
        if refusal is not None:
            raise ErpNetConfigError(
                f"The server sent a next link for {self.query.entity_set} (page {number}) to "
                f"{safe_url(link)}, but {refusal.reason}. The access token is never sent to another "
                f"origin. {refusal.fix}",
                setting=refusal.setting,
            )
        if link in self._seen_links:
            raise ErpNetTransportError(
                f"The server sent the same next link twice for {self.query.entity_set} "
                f"(after page {number}); stopping instead of reading pages forever.",
                url=safe_url(link),
                setting="api_url",
            )
        self._seen_links.add(link)
        return link


def stable_orderby(orderby: str | None) -> str:
    """An order that makes ``$skip`` paging deterministic: the caller's order with ``Id`` as tiebreak."""
    if not orderby:
        return "Id"
    keys = {item.split()[0] for item in orderby.split(",") if item.strip()}
    return orderby if "Id" in keys else f"{orderby},Id"


class PageGuard:
    """Ends paging that would go on forever, whatever the server's links say.

    ``expected`` is the row count the caller knows in advance (``$count`` for the same filter), or
    None. With it, reading stops past ``expected`` plus a margin (rows added while the extraction
    runs are tolerated; the completeness check decides about them) and past the pages that many
    rows need.
    """

    def __init__(self, entity_set: str, page_size: int, expected: int | None) -> None:
        self.entity_set = entity_set
        self.expected = expected
        self.max_rows = (
            None if expected is None else expected + max(page_size, math.ceil(expected * ROW_MARGIN))
        )
        self.max_pages = None if self.max_rows is None else math.ceil(self.max_rows / page_size) + 1
        self._previous: tuple[Any, ...] | None = None
        self._previous_link: str | None = None
        self._empty_run = 0

    def check(self, page: Page, rows: int) -> None:
        """Called with each page fetched and the rows read with it; raises to stop."""
        ids = _ids(page.records)
        # A page that repeats its link as well is the pager's to report ("the same next link twice").
        same_link = page.next_link is not None and page.next_link == self._previous_link
        self._previous_link = page.next_link
        if page.number > 1 and ids and ids == self._previous and not same_link:
            raise ErpNetTransportError(
                f"Page {page.number} of {self.entity_set} repeats the rows of page {page.number - 1} (the "
                "same Ids): the server ignores the paging ($skip, $skiptoken or its next link), so reading "
                "would never end; stopped. Check that api_url points at ERP.net's Domain API; a server "
                "that cannot page needs a filter narrow enough for one page.",
                setting="api_url",
            )
        self._previous = ids
        self._empty_run = self._empty_run + 1 if not page.records and page.next_link else 0
        if self._empty_run >= MAX_EMPTY_PAGES:
            raise ErpNetTransportError(
                f"{self.entity_set}: {self._empty_run} empty pages in a row, each linking to another "
                "page; the server's paging loops, so reading stopped. Check that api_url points at "
                "ERP.net's Domain API.",
                setting="api_url",
            )
        if self.max_rows is not None and rows > self.max_rows:
            raise ErpNetTransportError(
                f"{self.entity_set}: read {rows} rows although $count said {self.expected} when the "
                f"extraction started (allowing {self.max_rows}); the server keeps sending rows, so "
                "reading stopped before writing anything. If rows are being added this fast, narrow "
                "the filter or window and retry.",
                setting="api_url",
            )
        if self.max_pages is not None and page.number > self.max_pages:
            raise ErpNetTransportError(
                f"{self.entity_set}: page {page.number}, more pages than $count {self.expected} needs "
                f"at this page size (at most {self.max_pages}); the server's paging does not end, so "
                "reading stopped. If the server sends fewer rows per page than asked, lower page_size "
                "to what it sends.",
                setting="page_size",
            )


def _ids(records: list[Any]) -> tuple[Any, ...]:
    """The page's Ids, or () when a record has none (a $select without Id: nothing to compare)."""
    column = getattr(records, "column", None)  # a typed page (io.pagecodec.TypedPage) reads it in C
    try:
        ids = tuple(column("Id")) if column is not None else tuple(record.get("Id") for record in records)
    except KeyError:  # the typed page has no Id column
        return ()
    return () if None in ids else ids


FetchJson = Callable[[str, Mapping[str, str] | None], Any]


def iter_pages(
    fetch_json: FetchJson, api_url: str, query: ODataQuery, *, expected: int | None = None
) -> Iterator[Page]:
    """Yield the pages of ``query``, one in memory at a time.

    ``fetch_json(url, params)`` sends an authenticated GET and returns the decoded body.
    ``expected``: how many rows the query should return, if known (see :class:`PageGuard`).
    """
    pager = Pager(api_url, query)
    guard = PageGuard(query.entity_set, query.page_size, expected)
    started = time.monotonic()
    pages = rows = 0
    finished = False
    try:
        page = _fetch(fetch_json, pager.first(), 1, query.entity_set)
        redo = pager.restart_in_stable_order(page)
        if redo is not None:
            log.debug("%s: no next link on a full page 1; refetching it ordered by Id", query.entity_set)
            page = _fetch(fetch_json, redo, 1, query.entity_set)
        while True:
            pages, rows = pages + 1, rows + len(page.records)
            guard.check(page, rows)
            log.debug("%s: page %d, %d rows", query.entity_set, page.number, len(page.records))
            yield page
            request = pager.next(page, rows)
            if request is None:
                break
            page = _fetch(fetch_json, request, page.number + 1, query.entity_set)
            if not page.records and page.next_link is None:
                break  # the empty answer that ends $skip paging is not a page of data
        finished = True
    finally:
        # DEBUG: the extraction above this pager writes the summary users read.
        log.debug(
            "%s: %s %d pages, %d rows in %.1f s",
            query.entity_set,
            "read" if finished else "stopped after",
            pages,
            rows,
            time.monotonic() - started,
        )


def _fetch(fetch_json: FetchJson, request: PageRequest, number: int, entity_set: str) -> Page:
    body = fetch_json(request.url, request.params)
    if isinstance(body, dict):
        records, next_link = body.get("value"), body.get("@odata.nextLink")
    else:  # a typed page decoder's body: ``value`` and ``next_link`` attributes
        records, next_link = getattr(body, "value", None), getattr(body, "next_link", None)
    if not isinstance(records, list):
        raise ErpNetTransportError(
            f"Page {number} of {entity_set} is not an OData collection (no 'value' list); "
            "check that api_url points at the OData service root.",
            url=safe_url(request.url),
            setting="api_url",
        )
    # A typed decoder's records were validated by it; generic JSON may hold anything.
    if isinstance(body, dict) and not all(isinstance(record, dict) for record in records):
        raise ErpNetTransportError(
            f"Page {number} of {entity_set} lists values that are not entities (JSON objects); "
            "check that api_url points at ERP.net's OData service root.",
            url=safe_url(request.url),
            setting="api_url",
        )
    if next_link is not None and not isinstance(next_link, str):
        raise ErpNetTransportError(
            f"Page {number} of {entity_set} has a non-string @odata.nextLink; check that api_url "
            "points at ERP.net's OData service root.",
            url=safe_url(request.url),
            setting="api_url",
        )
    return Page(number=number, records=records, next_link=next_link or None)


def normalise_select(select: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """``"A, B"`` or ``["A", "B"]`` -> ``("A", "B")``; the names are sent as given, no defaults added."""
    if select is None:
        return None
    items = select.split(",") if isinstance(select, str) else list(select)
    names = tuple(item.strip() for item in items if item.strip())
    return names or None
