"""In-run dedupe by ``Id``, keeping the latest copy, without memory that grows in the common case.

Why rows repeat inside one run: ``$skip`` paging (a caller's ``$orderby``, or an old server without
next links) over data that changes while it is read shifts rows across page boundaries, and an
update can move a row behind the cursor of an ``$orderby`` on a changing column.

How it stays cheap:

1. **Ordered phase.** While the Ids arrive strictly increasing, no Id can have been seen before, so
   only the previous Id is kept. Keyset paging (ERP.net's next links without ``$orderby``) and
   ``$skip`` paging ordered by Id both deliver Ids in order, so a full export costs one string
   comparison per row and no memory. Two orders are accepted, because the server's Id order is
   not documented: the GUID text order (.NET ``Guid``) and SQL Server's ``uniqueidentifier`` order.
2. **Tail phase.** From the first Id that is not greater than the previous one (row ``k``), every
   further row's Id is tracked with its position and version (the incremental column, else the
   position): memory grows with the rows *after* the break only. Repeats inside the tail are
   decided at once.
3. **Resolve.** Rows before ``k`` were stored untracked, but they are distinct, so each tail Id has
   at most one earlier copy there. ``resolve(written)`` reads those rows back from wherever they
   were stored (only their Ids and versions matter) and returns the positions of every superseded
   copy. The caller then copies the rows to the final output without them (``without``), so an
   older copy never reaches the committed file. ``operators.extraction`` stores rows in a local
   spool only when the order can break; on the direct path it stops at the first break instead.

The latest copy is the one with the greatest version; equal versions (or no version column) keep
the copy seen last.

``SpooledDeduper`` is the same decision for extractions that spool their rows anyway (an
``$orderby`` that breaks Id order): every row's Id, version and position go to a SQLite table in
the spool directory, and the superseded positions come back from one query, in order. Memory
stays flat however many rows arrive out of order, and the spool is not read twice.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from operator import lt
from pathlib import Path
from typing import Any

from airflow_provider_erpnet.client.errors import ErpNetConfigError

from .pagecodec import TypedPage

VersionKey = tuple[Any, ...]
_NO_VERSION: VersionKey = (0,)


class Deduper:
    """Tracks the Ids of one extraction in arrival order and finds superseded copies."""

    def __init__(self, version_field: str | None = None, key: str = "Id") -> None:
        self.version_field = version_field
        self.key = key
        self.rows = 0
        self.ordered_rows: int | None = None  # rows before the first out-of-order Id, once seen
        self._last_text: str | None = None
        self._last_sql: str | None = None
        self._text_order = True
        self._sql_order = True
        self._tail: dict[str, tuple[VersionKey, int]] = {}
        self._superseded: set[int] = set()

    @property
    def ordered(self) -> bool:
        """True while every Id so far was greater than the one before: no duplicate is possible."""
        return self.ordered_rows is None

    def observe(self, records: Sequence[Mapping[str, Any]] | TypedPage) -> None:
        """Account for the next page of records, in the order they are written.

        While the order holds this costs a few C-level passes over the page's Ids; rows are
        looked at one by one only from the first out-of-order Id on.
        """
        ids = self._ids(records)
        start = self.rows
        self.rows += len(ids)
        tail_from = 0
        if self.ordered_rows is None:
            broken = self._first_unordered(ids)
            if broken is None:
                return
            self.ordered_rows = start + broken
            tail_from = broken
        versions = self._versions(records)
        for index in range(tail_from, len(ids)):
            self._track(ids[index], versions[index], start + index)

    def resolve(self, written: Iterable[Mapping[str, Any]]) -> set[int]:
        """Positions of superseded copies, given the rows as written (read from the start, in order).

        Only the first ``ordered_rows`` rows are consumed, and none at all if the order never broke.
        """
        if self.ordered_rows is None:
            return set()
        for position, record in enumerate(written):
            if position >= self.ordered_rows:
                break
            ident = self._id(record)
            if ident in self._tail:
                self._track(ident, self._version(record), position)
        return set(self._superseded)

    def _track(self, ident: str, version: VersionKey, position: int) -> None:
        seen = self._tail.get(ident)
        if seen is None:
            self._tail[ident] = (version, position)
            return
        current = (version, position)
        newer, older = (current, seen) if current > seen else (seen, current)
        self._tail[ident] = newer
        self._superseded.add(older[1])

    def _first_unordered(self, ids: list[str]) -> int | None:
        """Index of the first Id that is in neither server order, or None; updates both orders."""
        text_break = sql_break = len(ids)
        if self._text_order and ids:
            previous = [self._last_text if self._last_text is not None else "", *ids[:-1]]
            increasing = list(map(lt, previous, ids))
            if self._last_text is None:
                increasing[0] = True
            text_break = increasing.index(False) if False in increasing else len(ids)
            self._text_order = text_break == len(ids)
            self._last_text = ids[-1]
        elif not self._text_order:
            text_break = 0
        if self._sql_order:
            # Per Id, but only until the first Id out of SQL Server order (in the first rows when
            # the server pages in text order), or for every Id of a server that uses this order.
            last = self._last_sql
            for index, key in enumerate(map(sql_server_order, ids)):
                if last is not None and not key > last:
                    sql_break = index
                    self._sql_order = False
                    break
                last = key
            self._last_sql = last
        else:
            sql_break = 0
        broken = max(text_break, sql_break)
        return broken if broken < len(ids) else None

    def _ids(self, records: Sequence[Mapping[str, Any]] | TypedPage) -> list[str]:
        return page_ids(records, self.key)

    def _id(self, record: Mapping[str, Any]) -> str:
        return self._ids([record])[0]

    def _versions(self, records: Sequence[Mapping[str, Any]] | TypedPage) -> list[VersionKey]:
        if self.version_field is None:
            return [_NO_VERSION] * len(records)
        return list(map(version_key, _column(records, self.version_field)))

    def _version(self, record: Mapping[str, Any]) -> VersionKey:
        if self.version_field is None:
            return _NO_VERSION
        return version_key(record.get(self.version_field))


class SpooledDeduper:
    """Every row's Id, version and position in a SQLite file: the superseded ones found by one query.

    For rows that are spooled anyway; ``path`` is a new file in the spool directory (removed with
    it). Memory holds one page's Ids at a time, whatever the number of rows; SQLite sorts on disk.
    """

    def __init__(self, path: Path, version_field: str | None = None, key: str = "Id") -> None:
        self.version_field = version_field
        self.key = key
        self.rows = 0
        # Created 0600 first (SQLite would make it 0644): the Ids are the spool's rows' keys.
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600))
        self._db = sqlite3.connect(path, isolation_level=None)
        for pragma in ("journal_mode = OFF", "synchronous = OFF", "temp_store = FILE", "cache_size = -4096"):
            self._db.execute(f"PRAGMA {pragma}")
        self._db.execute("CREATE TABLE seen (id TEXT NOT NULL, version, position INTEGER NOT NULL)")
        self._db.execute("BEGIN")

    def observe(self, records: Sequence[Mapping[str, Any]] | TypedPage) -> None:
        """Record the next page of records, in the order they are written."""
        ids = page_ids(records, self.key)
        if self.version_field is None:
            versions: Iterable[Any] = [None] * len(ids)
        else:
            versions = map(_sql_version, _column(records, self.version_field))
        positions = range(self.rows, self.rows + len(ids))
        self._db.executemany("INSERT INTO seen VALUES (?, ?, ?)", zip(ids, versions, positions, strict=True))
        self.rows += len(ids)

    def superseded(self) -> Iterator[int]:
        """Positions of the copies a newer (or equally new and later) copy replaces, ascending."""
        self._db.execute("COMMIT")
        # NULL sorts first: a copy without a version loses to one with it, as in ``version_key``.
        query = (
            "SELECT position FROM (SELECT position, row_number() OVER "
            "(PARTITION BY id ORDER BY version DESC, position DESC) AS rank FROM seen) "
            "WHERE rank > 1 ORDER BY position"
        )
        for (position,) in self._db.execute(query):
            yield position

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> SpooledDeduper:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def without(rows: Iterable[Mapping[str, Any]], positions: Iterable[int]) -> Iterator[Mapping[str, Any]]:
    """``rows`` minus the ones at ``positions`` (0-based, in iteration order; ascending, or a set)."""
    skipped = iter(sorted(positions) if isinstance(positions, set) else positions)
    skip = next(skipped, None)
    for position, row in enumerate(rows):
        if position == skip:
            skip = next(skipped, None)
            continue
        yield row


def page_ids(records: Sequence[Mapping[str, Any]] | TypedPage, key: str = "Id") -> list[str]:
    """The page's Ids, lower case (GUIDs compare alike in any case); a record without one is an error."""
    values = _column(records, key)
    if None in values:
        raise ErpNetConfigError(
            f"A record has no {key!r}; dedupe needs it: keep {key} in $select "
            "(the operator adds it unless it was removed)."
        )
    return list(map(str.lower, map(str, values)))


def _column(records: Sequence[Mapping[str, Any]] | TypedPage, name: str) -> list[Any]:
    if isinstance(records, TypedPage):
        return records.column(name)
    return [record.get(name) for record in records]


def _sql_version(value: Any) -> Any:
    """A version as SQLite orders it like ``version_key``: instants as fixed-width UTC text."""
    key = version_key(value)
    if key == _NO_VERSION:
        return None
    version = key[1]
    if isinstance(version, dt.datetime):
        return version.astimezone(dt.timezone.utc).replace(tzinfo=None).isoformat(timespec="microseconds")
    if isinstance(version, Decimal):  # SQLite has no decimal; ordering only, not data
        return float(version)
    return version


def version_key(value: Any) -> VersionKey:
    """A sortable key for a version value: ISO date-time text and datetimes compare as instants.

    A missing value sorts before any present one, so a copy with a version beats one without.
    """
    if value is None:
        return _NO_VERSION
    if isinstance(value, str):
        parsed = _parse_instant(value)
        return (1, value) if parsed is None else (1, parsed)
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return (1, value.replace(tzinfo=dt.timezone.utc))
    return (1, value)


def sql_server_order(guid: str) -> str:
    """Text that sorts GUIDs the way SQL Server sorts ``uniqueidentifier`` (last group first)."""
    if len(guid) != 36:
        return guid
    a, b, c, d, e = guid[0:8], guid[9:13], guid[14:18], guid[19:23], guid[24:36]
    return e + d + c[2:4] + c[0:2] + b[2:4] + b[0:2] + a[6:8] + a[4:6] + a[2:4] + a[0:2]


def _parse_instant(text: str) -> dt.datetime | None:
    head, dot, rest = text.partition(".")
    if dot:
        # .NET writes up to 7 fractional digits; Python 3.10 parses at most 6.
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[: min(digits, 6)]}{rest[digits:]}"
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)
