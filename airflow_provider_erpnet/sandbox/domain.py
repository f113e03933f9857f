"""The sandbox's Domain API: OData GET requests in, `DomainResponse` out, no sockets.

The HTTP server hands over the path below the service root, the raw query string, the base URL
the client used and the token's scopes. Rows are serialised once per (entity set, `$select`,
`$expand`) and kept as bytes, so serving a page that was served before is a join of cached rows;
filters and sorts keep their matching positions for the same reason.

`Dataset.touch` and `Dataset.create` change rows, so every cache entry of an entity set is keyed
by the set's revision (`Dataset.revision`, bumped by each change) instead of being invalidated
explicitly: a request reads the revision *before* it reads any data, so an entry is never newer by
key than by content, and no touch can race with a purge. Entries of old revisions are simply never
asked for again; the least-recently-used limits drop them (`Columns` replaces a column in place).
A creation moves rows to other positions, so each request holds `Dataset.reading()` from its first
position to its last row: a creation waits for it, and it sees the set before or after, never both.

`strict` makes the service answer like a standard OData v4 server instead of ERP.net: `+` in the
query string is a literal plus sign (RFC 3986), not a space as in ERP.net's form decoding; `$select`
knows no `default` and no `$select` means every structural property; a date literal is
`2020-01-01`, and ERP.net's `2020-01-01Z` is a syntax error. A client that works in both modes
follows the standard and falls back correctly from ERP.net's dialect.
"""

from __future__ import annotations

import contextlib
import queue
import re
import threading
from array import array
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qsl, quote, unquote

import msgspec

from . import model as m
from .data import Dataset
from .edmx import metadata_xml
from .filters import Columns, compile_filter, resolve

JSON_CONTENT_TYPE = (
    "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
)
ERROR_CONTENT_TYPE = "application/json; charset=utf-8"
MAX_TOP = 1000
DEFAULT_CACHE_BYTES = 2 << 30

_SYSTEM_OPTIONS = frozenset(
    {"$filter", "$select", "$expand", "$orderby", "$top", "$skip", "$skiptoken", "$count", "$format"}
)
_NOT_IMPLEMENTED_OPTIONS = frozenset({"$search", "$apply", "$compute"})
_PATH = re.compile(r"(?P<set>[A-Za-z_]\w*)(?:\((?P<key>[^)]*)\))?(?P<count>/\$count)?")
_GUID = re.compile(r"[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}")
_ESCAPE = re.compile(r"%[0-9A-F]{2}")
_ENCODER = msgspec.json.Encoder(decimal_format="number")
_CHUNK_BITS = 10
_CHUNK = 1 << _CHUNK_BITS
_ROW_OVERHEAD = 48  # bytes object header + list slot, counted against the budget

T = TypeVar("T")


@dataclass
class DomainResponse:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class _Options:
    """System query options of one request, decoded; `pairs` keeps every option in order."""

    pairs: list[tuple[str, str]] = field(default_factory=list)
    filter: str | None = None
    select: str | None = None
    expand: str | None = None
    orderby: str | None = None
    top: int | None = None
    skip: int | None = None
    skiptoken: str | None = None
    count: bool = False


def _non_negative(name: str, value: str) -> int:
    if not value.isdigit():
        raise m.bad_request(f"The value '{value}' of {name} is not a non-negative integer.")
    return int(value)


def _query_pairs(query: str, strict: bool) -> list[tuple[str, str]]:
    """Name/value pairs in order: ERP.net decodes `+` as a space like a form, RFC 3986 does not."""
    if not strict:
        return parse_qsl(query, keep_blank_values=True)
    return [
        (unquote(name), unquote(value))
        for name, _, value in (p.partition("=") for p in query.split("&") if p)
    ]


def _parse_options(query: str, strict: bool = False) -> _Options:
    options = _Options(pairs=_query_pairs(query, strict))
    seen: set[str] = set()
    for name, value in options.pairs:
        if not name.startswith("$"):
            continue  # custom parameters are allowed and ignored (they do survive into next links)
        if name in _NOT_IMPLEMENTED_OPTIONS:
            raise m.QueryError(
                501, f"The query option '{name}' is not implemented by the sandbox.", code="NotImplemented"
            )
        if name not in _SYSTEM_OPTIONS:
            raise m.bad_request(f"The query parameter '{name}' is not supported.")
        if name in seen:
            raise m.bad_request(f"The query option '{name}' was specified more than once.")
        seen.add(name)
        if name == "$top":
            options.top = _non_negative(name, value)
            if options.top > MAX_TOP:
                raise m.bad_request(
                    "The query specified in the URI is not valid. "
                    f"The limit of '{MAX_TOP}' for Top query has been exceeded "
                    f"(the maximum page size is {MAX_TOP}). The value from the incoming request is '{value}'."
                )
        elif name == "$skip":
            options.skip = _non_negative(name, value)
        elif name == "$skiptoken":
            if not _GUID.fullmatch(value.lower()):
                raise m.bad_request(f"The $skiptoken '{value}' is not an Id (GUID) this service issued.")
            options.skiptoken = value.lower()
        elif name == "$count":
            if value not in ("true", "false"):
                raise m.bad_request(f"$count must be true or false, not '{value}'.")
            options.count = value == "true"
        elif name == "$format":
            if not value.startswith(("json", "application/json")):
                raise m.bad_request(f"The sandbox answers only JSON; $format '{value}' is not supported.")
        else:
            setattr(options, name[1:], value)
    return options


def _selection(entity: m.EntitySet, select: str | None, strict: bool = False) -> tuple[str, ...]:
    """The properties to return, in model order. Child collections come only through $expand."""
    if select is None:
        return entity.all_structural if strict else entity.default_select
    chosen: set[str] = set()
    for item in (part.strip() for part in select.split(",")):
        if not item:
            raise m.bad_request(f"$select has an empty item: '{select}'.")
        if item == "default" and not strict:
            chosen.update(entity.default_select)
        elif item == "*":
            chosen.update(entity.all_structural)
        else:
            chosen.add(entity.property(item).name)
    return tuple(p.name for p in entity.properties if p.name in chosen and p.kind is not m.Kind.CHILDREN)


def _expansion(entity: m.EntitySet, expand: str | None) -> bool:
    """Whether to embed child collections (the only expansion the sandbox implements)."""
    if expand is None:
        return False
    if "(" in expand:
        raise m.QueryError(
            501, "Nested $expand options are not implemented by the sandbox.", code="NotImplemented"
        )
    for item in (part.strip() for part in expand.split(",")):
        prop = entity.property(item)
        if prop.kind is m.Kind.REFERENCE:
            raise m.QueryError(
                501,
                f"Expanding the reference '{item}' is not implemented by the sandbox; only child "
                "collections (e.g. Lines) can be expanded.",
                code="NotImplemented",
            )
        if prop.kind is not m.Kind.CHILDREN:
            raise m.bad_request(f"'{item}' of {entity.full_type_name} is not a navigation property.")
    return True


def _encode_component(text: str) -> str:
    """Percent-encode everything but unreserved characters, hex in lowercase like ERP.net's links."""
    return _ESCAPE.sub(lambda match: match.group(0).lower(), quote(text, safe=""))


class _Projection:
    """How rows of one entity set look for one ($select, $expand) at one revision of the set:
    renders a row to JSON bytes. A touch makes a new projection, hence new row-cache keys."""

    def __init__(
        self, dataset: Dataset, entity: m.EntitySet, names: tuple[str, ...], expand: bool, revision: int
    ) -> None:
        self.key: Hashable = (entity.name, names, expand, revision)
        self.revision = revision
        self._dataset = dataset
        self._set = entity.name
        self._names = names
        self._expand = expand

    @property
    def stale(self) -> bool:
        """Whether the set was touched since this projection was made (its rows are outdated)."""
        return self._dataset.revision(self._set) != self.revision

    def reading(self) -> contextlib.AbstractContextManager[None]:
        """`Dataset.reading()`: positions cannot move (no row is created) until it is left."""
        return self._dataset.reading()

    def render(self, pos: int) -> bytes:
        row = self._dataset.record(self._set, pos, self._names, children=self._expand, annotate=True)
        return _ENCODER.encode(row)


class _RowCache:
    """Serialised rows per projection, in chunks of 1024 positions; the least recently used
    chunks go once the byte budget is exceeded."""

    def __init__(self, budget: int) -> None:
        self._budget = budget
        self._used = 0
        self._chunks: OrderedDict[tuple[Hashable, int], list[bytes | None]] = OrderedDict()
        self._lock = threading.Lock()

    def fetch(self, projection: _Projection, positions: Iterable[int]) -> list[bytes]:
        out: list[bytes] = []
        append, render = out.append, projection.render
        with self._lock:
            current, rows = -1, []
            for pos in positions:
                if pos >> _CHUNK_BITS != current:  # one chunk lookup per 1024 rows, not per row
                    current, rows = pos >> _CHUNK_BITS, self._chunk(projection.key, pos)
                row = rows[pos & (_CHUNK - 1)]
                if row is None:
                    row = rows[pos & (_CHUNK - 1)] = render(pos)
                    self._used += len(row) + _ROW_OVERHEAD
                append(row)
            self._evict()
        return out

    def missing(self, projection: _Projection, positions: Iterable[int]) -> list[int]:
        """Positions whose rows are not cached yet (read-ahead renders them outside the lock)."""
        with self._lock:
            return [pos for pos in positions if self._chunk(projection.key, pos)[pos & (_CHUNK - 1)] is None]

    def store(self, projection: _Projection, rendered: Iterable[tuple[int, bytes]]) -> None:
        """Keep rows rendered elsewhere, unless a request rendered them meanwhile."""
        with self._lock:
            for pos, row in rendered:
                rows = self._chunk(projection.key, pos)
                if rows[pos & (_CHUNK - 1)] is None:
                    rows[pos & (_CHUNK - 1)] = row
                    self._used += len(row) + _ROW_OVERHEAD
            self._evict()

    def _chunk(self, key: Hashable, pos: int) -> list[bytes | None]:
        """The chunk holding ``pos``, created empty if needed and marked most recently used."""
        index = (key, pos >> _CHUNK_BITS)
        found = self._chunks.get(index)
        if found is None:
            found = self._chunks[index] = [None] * _CHUNK
        else:
            self._chunks.move_to_end(index)
        return found

    def _evict(self) -> None:
        while self._used > self._budget and len(self._chunks) > 1:
            _, evicted = self._chunks.popitem(last=False)
            self._used -= sum(len(row) + _ROW_OVERHEAD for row in evicted if row is not None)


class _ReadAhead:
    """Renders the rows of the page a client will ask for next while it is busy with this one.

    Clients read sequentially, so the first pass over a large set would otherwise build every row
    inside a request; with read-ahead a request mostly joins cached bytes. At most one page is
    rendered ahead, so a client that stops early wastes one page of work. A job whose set was
    touched or grew meanwhile is dropped: its rows would only be stored under a revision nobody
    asks for (and after a creation its positions name other rows).
    """

    def __init__(self, cache: _RowCache) -> None:
        self._cache = cache
        self._queue: queue.Queue[tuple[_Projection, Sequence[int]] | None] = queue.Queue(maxsize=2)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def schedule(self, projection: _Projection, positions: Sequence[int]) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="erpnet-sandbox-read-ahead", daemon=True
                )
                self._thread.start()
        with contextlib.suppress(queue.Full):  # a busy renderer skips work rather than queue it
            self._queue.put_nowait((projection, positions))

    def close(self) -> None:
        """Stop the renderer thread (a later ``schedule`` starts a new one)."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join()

    def _run(self) -> None:
        while (job := self._queue.get()) is not None:
            projection, positions = job
            missing = self._cache.missing(projection, positions)
            # Small batches, so a request that arrives early finds the rows done so far.
            for start in range(0, len(missing), 100):
                with projection.reading():  # positions stay put while the batch is rendered
                    if projection.stale:
                        break
                    batch = missing[start : start + 100]
                    self._cache.store(projection, [(pos, projection.render(pos)) for pos in batch])


class _Lru:
    """A few expensive results (filter matches, sort orders) kept by key."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, make: Callable[[], T]) -> T:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = make()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return value


class DomainService:
    """GET on the service document, `$metadata`, entity sets, `/$count` and single entities."""

    def __init__(
        self,
        dataset: Dataset,
        *,
        next_links: bool = True,
        error_envelope: bool = True,
        strict: bool = False,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        read_ahead: bool = False,
    ) -> None:
        self.dataset = dataset
        self.next_links = next_links
        self.error_envelope = error_envelope
        self.strict = strict
        self._columns = Columns(dataset)
        self._rows = _RowCache(cache_bytes)
        self._read_ahead = _ReadAhead(self._rows) if read_ahead else None
        self._match_cache = _Lru(16)
        self._order_cache = _Lru(8)
        self._projections: dict[Hashable, _Projection] = {}

    def handle(
        self, method: str, path: str, query: str, *, base_url: str, scopes: frozenset[str]
    ) -> DomainResponse:
        try:
            if method.upper() != "GET":
                raise m.QueryError(
                    405,
                    f"The method {method.upper()} is not allowed; the sandbox Domain API serves GET only.",
                    code="MethodNotAllowed",
                )
            if "read" not in scopes:
                raise m.QueryError(
                    403,
                    "The access token lacks the 'read' scope that reading the Domain API requires; request a "
                    "token with scope 'read'.",
                    code="Forbidden",
                    error_type="System.UnauthorizedAccessException",
                )
            root = base_url if base_url.endswith("/") else base_url + "/"
            with self.dataset.reading():
                return self._get(unquote(path).strip("/"), query, root)
        except m.QueryError as error:
            return self._error(error)

    def warm(self, entity_set: str, select: str | None = None) -> int:
        """Build and cache every row of ``entity_set`` as ``$select=<select>`` returns it.

        For benchmarks and long sessions on large sets: afterwards every page of that view is a
        join of cached bytes, with no row built inside a request. Returns the rows built; raises
        ``QueryError`` (its message names the problem) for an unknown set or property.
        """
        entity = self.dataset.entity(entity_set)
        query = f"%24select={quote(select, safe='')}" if select else ""
        with self.dataset.reading():
            projection = self._projection(entity, _parse_options(query, self.strict))
            missing = self._rows.missing(projection, range(self.dataset.count(entity.name)))
            for start in range(0, len(missing), _CHUNK):
                batch = missing[start : start + _CHUNK]
                self._rows.store(projection, [(pos, projection.render(pos)) for pos in batch])
        return len(missing)

    def close(self) -> None:
        """Stop the read-ahead thread; the service keeps answering (it restarts on demand)."""
        if self._read_ahead is not None:
            self._read_ahead.close()

    def _get(self, path: str, query: str, root: str) -> DomainResponse:
        if path == "":
            return self._json(self._service_document(root))
        if path == "$metadata":
            return DomainResponse(
                200,
                {"Content-Type": "application/xml", "OData-Version": "4.0"},
                metadata_xml(self.dataset.entities()),
            )
        match = _PATH.fullmatch(path)
        if match is None:
            raise m.QueryError(
                404,
                f"Resource not found for the segment '{path}'.",
                code="NotFound",
                error_type="Microsoft.OData.UriParser.ODataUnrecognizedPathException",
            )
        entity = self.dataset.entity(match["set"])
        options = _parse_options(query, self.strict)
        if match["key"] is not None:
            if match["count"]:
                raise m.bad_request("/$count applies to entity sets, not to a single entity.")
            return self._entity(entity, match["key"], options, root)
        if match["count"]:
            count = len(self._ordered(entity, options.filter, None))
            return DomainResponse(
                200, {"Content-Type": "text/plain;charset=utf-8", "OData-Version": "4.0"}, str(count).encode()
            )
        return self._collection(entity, options, root)

    def _service_document(self, root: str) -> bytes:
        sets = [{"name": name, "kind": "EntitySet", "url": name} for name in self.dataset.entity_sets]
        return _ENCODER.encode({"@odata.context": f"{root}$metadata", "value": sets})

    def _json(self, body: bytes) -> DomainResponse:
        return DomainResponse(200, {"Content-Type": JSON_CONTENT_TYPE, "OData-Version": "4.0"}, body)

    def _projection(self, entity: m.EntitySet, options: _Options) -> _Projection:
        names, expand = _selection(entity, options.select, self.strict), _expansion(entity, options.expand)
        key, revision = (entity.name, names, expand), self.dataset.revision(entity.name)
        projection = self._projections.get(key)
        if projection is None or projection.revision != revision:
            projection = self._projections[key] = _Projection(self.dataset, entity, names, expand, revision)
        return projection

    def _entity(self, entity: m.EntitySet, key: str, options: _Options, root: str) -> DomainResponse:
        guid = key.removeprefix("Id=").strip("'").lower()
        if not _GUID.fullmatch(guid):
            raise m.bad_request(f"The key '{key}' of {entity.name} is not a GUID.")
        ids = range(self.dataset.count(entity.name))
        pos = bisect_left(ids, guid, key=lambda p: self.dataset.id_at(entity.name, p))
        if pos == len(ids) or self.dataset.id_at(entity.name, pos) != guid:
            raise m.QueryError(404, f"No entity with Id {guid} exists in {entity.name}.", code="NotFound")
        (row,) = self._rows.fetch(self._projection(entity, options), (pos,))
        context = _ENCODER.encode(f"{root}$metadata#{entity.name}/$entity")
        return self._json(b'{"@odata.context":' + context + b"," + row[1:])

    def _matches(self, entity: m.EntitySet, text: str | None) -> Sequence[int]:
        if text is None:
            return range(self.dataset.count(entity.name))
        # A filter that does not compile raises inside the factory, so nothing is cached for it.
        strict = self.strict
        return self._match_cache.get(
            (entity.name, self.dataset.revision(entity.name), text, strict),
            lambda: array("q", compile_filter(text, entity, self._columns, standard=strict)(None)),
        )

    def _ordered(self, entity: m.EntitySet, filter_text: str | None, orderby: str | None) -> Sequence[int]:
        """Matching positions in response order: Id order, or $orderby with ties in Id order."""
        revision = self.dataset.revision(entity.name)  # read before the data, see the module docstring
        matches = self._matches(entity, filter_text)
        if orderby is None:
            return matches
        keys = self._sort_keys(entity, orderby)

        def sort() -> list[int]:
            positions = list(matches)
            for column, descending in reversed(keys):  # stable sorts, least significant key first
                positions.sort(key=lambda i, c=column: (c[i] is not None, c[i]), reverse=descending)
            return positions

        return self._order_cache.get((entity.name, revision, filter_text, orderby), sort)

    def _sort_keys(self, entity: m.EntitySet, orderby: str) -> list[tuple[list[Any], bool]]:
        keys: list[tuple[list[Any], bool]] = []
        for item in orderby.split(","):
            words = item.split()
            if not words or len(words) > 2 or (len(words) == 2 and words[1] not in ("asc", "desc")):
                raise m.bad_request(f"$orderby item '{item.strip()}' must be '<property> [asc|desc]'.")
            target = resolve(entity, words[0])
            if target.kind is m.Kind.MULTILANG or not target.prop.sortable:
                raise m.bad_request(
                    f"Property '{target.written}' of {entity.full_type_name} cannot be used in $orderby."
                )
            keys.append((self._columns.get(target), len(words) == 2 and words[1] == "desc"))
        return keys

    def _collection(self, entity: m.EntitySet, options: _Options, root: str) -> DomainResponse:
        if options.skiptoken is not None and options.orderby is not None:
            raise m.bad_request("$skiptoken cannot be combined with $orderby; use $skip with $orderby.")
        projection = self._projection(entity, options)
        order = self._ordered(entity, options.filter, options.orderby)
        total = len(order)
        start = 0
        if options.skiptoken is not None:
            token = options.skiptoken
            start = bisect_right(order, token, key=lambda p: self.dataset.id_at(entity.name, p))
        start = min(total, start + (options.skip or 0))
        end = total if options.top is None else min(total, start + options.top)
        rows = self._rows.fetch(projection, order[start:end])
        if self._read_ahead is not None and options.top and end < total:
            self._read_ahead.schedule(projection, order[end : end + options.top])

        parts = [b'{"@odata.context":', _ENCODER.encode(f"{root}$metadata#{entity.name}")]
        if options.count:
            parts += [b',"@odata.count":', str(total).encode()]
        parts += [b',"value":[', b",".join(rows), b"]"]
        if self.next_links and options.top and end < total:
            if options.orderby is None:
                resume = ("$skiptoken", self.dataset.id_at(entity.name, order[end - 1]))
            else:
                resume = ("$skip", str(end))
            parts += [b',"@odata.nextLink":', _ENCODER.encode(self._next_link(root, entity, options, resume))]
        parts.append(b"}")
        return self._json(b"".join(parts))

    def _next_link(self, root: str, entity: m.EntitySet, options: _Options, resume: tuple[str, str]) -> str:
        """The request again, every option kept except the old position, plus the new one."""
        kept = [(name, value) for name, value in options.pairs if name not in ("$skip", "$skiptoken")]
        query = "&".join(f"{_encode_component(n)}={_encode_component(v)}" for n, v in (*kept, resume))
        return f"{root}{entity.name}?{query}"

    def _error(self, error: m.QueryError) -> DomainResponse:
        if self.error_envelope:
            payload: dict[str, Any] = {
                "error": {"code": error.code, "message": error.message, "type": error.error_type}
            }
        else:
            payload = {
                "message": error.message,
                "code": error.code,
                "type": error.error_type,
                "info": error.info,
            }
        headers = {"Content-Type": ERROR_CONTENT_TYPE, "OData-Version": "4.0"}
        if error.status == 405:
            headers["Allow"] = "GET"
        return DomainResponse(error.status, headers, _ENCODER.encode(payload))
