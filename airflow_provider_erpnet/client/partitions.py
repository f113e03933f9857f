"""Partition plans: one extraction split into ranges that rows cannot leave, balanced by ``$count``.

A partition must hold the same rows from the moment it is planned to the moment it is read, or a
row could be read twice or never. So partitions are closed ranges of a column no edit changes:

* ``Id`` (preferred): a GUID that never changes and is never null. Ranges use ``ge``/``le``, the
  only comparisons ERP.net documents, so the planner checks that the server accepts them on
  ``Id`` and learns from an ``$orderby=Id`` sample in which order it compares GUIDs (.NET's, which
  is the text order, or SQL Server's, which starts with the last group).
* ``CreationTime``: never changes either, but can be null; null rows get a partition of their own
  (``CreationTime eq null``), and the column is only used when the server can select them.

The first range has no lower bound and the last no upper bound, so together they cover every
possible value: a row created after planning falls into exactly one partition. Boundaries are
found by bisection with ``$count`` probes (one request each, no rows transferred), so partitions
hold about the same number of rows however unevenly the values are spread. Finally every
partition is counted once more and the counts must add up to the set's ``$count``: that proves
the server evaluates the ranges as disjoint and complete, whatever it does with the literals.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields, replace
from itertools import pairwise
from typing import Any

from .errors import ErpNetApiError, ErpNetConfigError, ErpNetIncompleteError

log = logging.getLogger(__name__)

PARTITION_COLUMNS = ("Id", "CreationTime")
# Each boundary lands within this share of the ideal partition size (fewer probes than exact).
BALANCE = 0.05
_MAX_PROBES_PER_BOUNDARY = 140  # a 128-bit key space needs at most 128 halvings
PARTITION_SAMPLE = 100  # Ids read to learn the server's GUID order
PROBES_AT_ONCE = 8  # $count requests in flight while planning
# Statuses with which a server refuses a filter it cannot evaluate (400 OData, 500 domain, 501).
_REFUSED = frozenset({400, 500, 501})


@dataclass(frozen=True)
class Partition:
    """One range of an extraction; ``ErpNetODataOperator(partition=...)`` reads exactly its rows.

    ``lower`` and ``upper`` are OData literals, both inclusive; None leaves that end open.
    ``nulls`` selects the rows whose ``column`` is null instead. ``count`` and ``total`` are the
    partition's and the whole set's ``$count`` when planned; ``plan`` is the same for every
    partition of one plan, so the gather step can tell parts of different plans apart.
    """

    entity_set: str
    column: str
    index: int
    of: int
    lower: str | None = None
    upper: str | None = None
    nulls: bool = False
    count: int | None = None
    total: int | None = None
    base_filter: str | None = None
    plan: str = ""

    @property
    def filter(self) -> str | None:
        """The ``$filter`` selecting this partition's rows (None: the whole set, a plan of one)."""
        if self.nulls:
            return f"{self.column} eq null"
        bounds = [
            f"{self.column} ge {self.lower}" if self.lower else "",
            f"{self.column} le {self.upper}" if self.upper else "",
        ]
        return " and ".join(bound for bound in bounds if bound) or None

    @property
    def label(self) -> str:
        """``part-003-of-008``: sorts in plan order, used in file names and logs."""
        width = max(3, len(str(self.of)))
        return f"part-{self.index + 1:0{width}d}-of-{self.of:0{width}d}"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types, for XCom and for ``.expand(partition=...)``."""
        return {**asdict(self), "filter": self.filter}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Partition:
        """Inverse of ``to_dict``; raises naming what is missing when given something else."""
        if not isinstance(data, Mapping):
            raise ErpNetConfigError(
                f"A partition is a dict from ErpNetHook.plan_partitions(), got {type(data).__name__}; "
                "pass the planning task's output to .expand(partition=...)."
            )
        missing = [name for name in ("entity_set", "column", "index", "of") if name not in data]
        if missing:
            raise ErpNetConfigError(
                f"Not a partition from ErpNetHook.plan_partitions() (missing {', '.join(missing)})."
            )
        known = {field.name for field in fields(cls)}
        partition = cls(**{name: value for name, value in data.items() if name in known})
        if not 0 <= partition.index < partition.of:
            raise ErpNetConfigError(f"Partition index {partition.index} is outside 0..{partition.of - 1}.")
        return partition


def as_partition(value: Partition | Mapping[str, Any]) -> Partition:
    """Accept a ``Partition`` or its dict form (what XCom carries)."""
    return value if isinstance(value, Partition) else Partition.from_dict(value)


def plan_partitions(
    count: Callable[[str | None], int],
    sample: Callable[[str], list[str] | None],
    entity_set: str,
    partitions: int,
    *,
    filter: str | None = None,
    by: str | None = None,
    properties: Sequence[str] = (),
    logger: logging.Logger | logging.LoggerAdapter = log,
) -> list[Partition]:
    """Split ``entity_set`` (rows matching ``filter``) into ``partitions`` ranges of about equal size.

    ``count(filter)`` is the server's ``$count``; ``sample(orderby)`` returns the Ids of the first
    rows in that ``$orderby`` (``"Id"``, ``"Id desc"``) or None if the server refuses it;
    ``properties`` are the entity type's property names from ``$metadata``. ``by`` is ``"Id"``,
    ``"CreationTime"`` or None (Id where the server compares Ids, else CreationTime).
    """
    if isinstance(partitions, bool) or not isinstance(partitions, int) or partitions < 1:
        raise ErpNetConfigError(f"partitions must be a whole number >= 1, got {partitions!r}.")
    if by is not None and by not in PARTITION_COLUMNS:
        raise ErpNetConfigError(
            f"by={by!r} cannot partition {entity_set}: a partition column must be one no edit changes "
            f"(a row could otherwise move into a partition already read and be lost); use one of "
            f"{', '.join(PARTITION_COLUMNS)}, or None to let the planner choose."
        )
    started = time.monotonic()
    probes = _Probes(count, filter)
    total = probes.count()
    if partitions == 1:
        plan = [Partition(entity_set, by or "Id", 0, 1, count=total)]
    else:
        # Probes of independent ranges go out together: at 200 ms a request, round trips add up.
        with ThreadPoolExecutor(min(partitions, PROBES_AT_ONCE), "erpnet-plan") as pool:
            plan = _Planner(probes, sample, entity_set, partitions, total, pool).plan(by, properties)
    plan = _stamped(plan, total, filter)
    logger.info(
        "%s: %d partition(s) by %s of %d rows (%s rows each when planned); %d $count probe(s) in %.1f s.",
        entity_set,
        len(plan),
        plan[0].column,
        total,
        "..".join(str(n) for n in _spread([p.count or 0 for p in plan])),
        probes.made,
        time.monotonic() - started,
    )
    return plan


def _spread(counts: list[int]) -> list[int]:
    return sorted({min(counts), max(counts)})


def _stamped(plan: list[Partition], total: int, base_filter: str | None) -> list[Partition]:
    """The partitions with the set's total, the filter they were counted with and one plan id."""
    plan_id = uuid.uuid4().hex[:16]
    return [replace(p, total=total, base_filter=base_filter, plan=plan_id) for p in plan]


class _Probes:
    """``$count`` of the base filter ANDed with a partition filter; counts its requests."""

    def __init__(self, count: Callable[[str | None], int], base: str | None) -> None:
        self._count = count
        self._base = base
        self.made = 0
        self._lock = threading.Lock()

    def count(self, extra: str | None = None) -> int:
        with self._lock:
            self.made += 1
        parts = [f"({text})" for text in (self._base, extra) if text]
        return self._count(" and ".join(parts) if len(parts) > 1 else (self._base or extra))


class _GuidOrder:
    """GUIDs as integers in the order a server compares them, and back."""

    def __init__(self, name: str, permutation: Sequence[int]) -> None:
        self.name = name
        self._perm = permutation  # byte i of the key is byte permutation[i] of the GUID's text order
        self._inverse = [permutation.index(i) for i in range(16)]

    def key(self, guid: str) -> int:
        raw = bytes.fromhex(guid.replace("-", ""))
        return int.from_bytes(bytes(raw[i] for i in self._perm), "big")

    def guid(self, key: int) -> str:
        ordered = key.to_bytes(16, "big")
        text = bytes(ordered[i] for i in self._inverse).hex()
        return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"

    def sorted(self, ids: Sequence[str]) -> bool:
        keys = [self.key(ident) for ident in ids]
        return all(a < b for a, b in pairwise(keys))


# .NET compares GUIDs field by field, which is the text order; SQL Server's uniqueidentifier
# compares the last six bytes first, then the fourth group, then the first three groups with
# their bytes reversed (System.Data.SqlTypes.SqlGuid's order).
TEXT_ORDER = _GuidOrder("text", range(16))
SQL_SERVER_ORDER = _GuidOrder("SQL Server", (10, 11, 12, 13, 14, 15, 8, 9, 7, 6, 5, 4, 3, 2, 1, 0))
_GUID_SPACE = (0, (1 << 128) - 1)


@dataclass(frozen=True)
class _Space:
    """A column's values as integers ``low..high`` and the literals of a range's two ends."""

    column: str
    low: int
    high: int
    lower: Callable[[int], str]
    upper: Callable[[int], str]
    describe: str

    def range_filter(self, first: int, last: int) -> str | None:
        """Values from ``first`` to ``last``; an end at the space's edge stays open."""
        bounds = []
        if first > self.low:
            bounds.append(f"{self.column} ge {self.lower(first)}")
        if last < self.high:
            bounds.append(f"{self.column} le {self.upper(last)}")
        return " and ".join(bounds) or None


def _guid_space(order: _GuidOrder, low: int, high: int) -> _Space:
    return _Space("Id", low, high, order.guid, order.guid, f"Id (GUIDs in {order.name} order)")


def _instant(seconds: int) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


_EARLIEST = "1900-01-01T00:00:00Z"  # before any CreationTime, and valid in SQL Server's datetime


# CreationTime in whole seconds, from 1970 to a day after planning; a range of seconds ends at the
# last tick (100 ns) of its last second, so consecutive ranges leave no instant between them.
def _creation_space() -> _Space:
    return _Space(
        "CreationTime",
        0,
        int(time.time()) + 86_400,
        lambda first: f"{_instant(first)}Z",
        lambda last: f"{_instant(last)}.9999999Z",
        "CreationTime (whole seconds)",
    )


class _Refused(Exception):
    """Internal: the server cannot filter the column the way a plan needs."""


class _Planner:
    def __init__(
        self,
        probes: _Probes,
        sample: Callable[[str], list[str] | None],
        entity_set: str,
        partitions: int,
        total: int,
        pool: ThreadPoolExecutor,
    ) -> None:
        self.pool = pool
        self.probes = probes
        self.sample = sample
        self.entity_set = entity_set
        self.partitions = partitions
        self.total = total
        self.tolerance = max(0.5, BALANCE * total / partitions)

    def plan(self, by: str | None, properties: Sequence[str]) -> list[Partition]:
        if by in (None, "Id"):
            try:
                return self._by_id()
            except _Refused as refused:
                if by == "Id":
                    raise ErpNetConfigError(f"{self.entity_set}: cannot partition by Id: {refused}") from None
                if "CreationTime" not in properties:
                    raise ErpNetConfigError(
                        f"{self.entity_set}: cannot partition by Id ({refused}) and the entity type has no "
                        "CreationTime; extract it in one piece (no partition, max_concurrency=1)."
                    ) from None
                log.info("%s: %s; partitioning by CreationTime instead.", self.entity_set, refused)
        return self._by_creation_time()

    def _by_id(self) -> list[Partition]:
        # Both ends of the Id order at once: at hundreds of milliseconds a request, round trips add up.
        ascending, descending = self.pool.map(self._sample, ("Id", "Id desc"))
        candidates = [
            order for order in (TEXT_ORDER, SQL_SERVER_ORDER) if ascending and order.sorted(ascending)
        ]
        if not candidates:  # no $orderby=Id, or an order neither explains: let the counts decide
            candidates = [TEXT_ORDER, SQL_SERVER_ORDER]
        problems = []
        for order in candidates:
            low, high = _GUID_SPACE
            if ascending:
                newest = descending or []
                low = order.key(ascending[0])
                high = max(low, order.key(newest[0])) if newest else high
            space = _guid_space(order, low, high)
            plan, problem = self._verified(space, self.total)
            if plan is not None:
                return plan
            problems.append(problem)
        raise _Refused("; ".join(problems))

    def _by_creation_time(self) -> list[Partition]:
        space = _creation_space()
        dated = self._count(f"CreationTime ge {_EARLIEST}", space.column)
        nulls = self.total - dated
        null_partition = None
        if nulls > 0:
            try:
                counted = self.probes.count("CreationTime eq null")
            except ErpNetApiError as error:
                if error.status not in _REFUSED:
                    raise
                raise ErpNetConfigError(
                    f"{self.entity_set}: {nulls} row(s) have no CreationTime and the server refuses "
                    "'CreationTime eq null', so they would belong to no partition; partition by Id, or "
                    "filter them out (e.g. filter='CreationTime ge 1900-01-01T00:00:00Z')."
                ) from None
            null_partition = Partition(self.entity_set, "CreationTime", 0, 1, nulls=True, count=counted)
            self.partitions -= 1  # the nulls take one of the partitions asked for
        self.tolerance = max(0.5, BALANCE * dated / self.partitions)
        plan, problem = self._verified(space, dated, extra=null_partition)
        if plan is None:
            raise ErpNetConfigError(
                f"{self.entity_set}: cannot partition by CreationTime: {problem}. The server may compare "
                "date-times by date only; partition by Id, or extract in one piece."
            )
        return plan

    def _verified(
        self, space: _Space, rows: int, extra: Partition | None = None
    ) -> tuple[list[Partition] | None, str]:
        """A plan over ``space`` (``rows`` in it) whose counts add up to the set's, or why not."""
        ranges = self._ranges(space, rows)
        plan = [
            Partition(self.entity_set, space.column, 0, 0, *_bounds(space, first, last))
            for first, last in ranges
        ]
        if extra is not None:
            plan.append(extra)
        plan = [replace(p, index=i, of=len(plan)) for i, p in enumerate(plan)]
        before = self.total
        counted = list(self.pool.map(lambda p: self._count(p.filter, space.column), plan))
        after = self.probes.count()
        # Rows created or deleted meanwhile move the total: accept a sum between the two counts.
        if min(before, after) <= sum(counted) <= max(before, after):
            return [replace(p, count=n) for p, n in zip(plan, counted, strict=True)], ""
        return None, (
            f"the {len(plan)} ranges of {space.describe} count {sum(counted)} rows together, the set "
            f"{after}, so the server does not evaluate them as disjoint ranges covering every row"
        )

    def _ranges(self, space: _Space, rows: int) -> list[tuple[int, int]]:
        """``partitions`` consecutive (first, last) key ranges covering the space.

        Each range splits in two (halving the partitions it must make) until every one makes one;
        the splits of one level are independent, so they are searched at the same time.
        """
        level = [(space.low, space.high, rows, self.partitions)]
        while any(parts > 1 for *_, parts in level):
            halves = self.pool.map(lambda item: self._split(space, *item), level)
            level = [half for pair in halves for half in pair]
        return [(first, last) for first, last, _, _ in level]

    def _split(
        self, space: _Space, first: int, last: int, rows: int, parts: int
    ) -> list[tuple[int, int, int, int]]:
        if parts == 1:
            return [(first, last, rows, parts)]
        left_parts = parts // 2
        cut, left_rows = self._cut(space, first, last, rows, rows * left_parts / parts, left_parts, parts)
        return [(first, cut, left_rows, left_parts), (cut + 1, last, rows - left_rows, parts - left_parts)]

    def _cut(
        self, space: _Space, first: int, last: int, rows: int, target: float, left_parts: int, parts: int
    ) -> tuple[int, int]:
        """The last key of the left range: its count within the tolerance of ``target``, or the closest.

        A search over keys with one ``$count`` per step. Steps alternate between interpolating
        (where the target would lie if rows were spread evenly between the two known points,
        which for random or sequential GUIDs is right at once) and halving (which bounds the
        steps however the rows are spread).
        """
        low, high = first + left_parts - 1, last - (parts - left_parts)  # room for every range
        below, below_rows, above, above_rows = first - 1, 0, last, rows  # known: (key, rows up to it)
        best: tuple[float, int, int] | None = None
        for step in range(_MAX_PROBES_PER_BOUNDARY):
            if low > high:
                break
            cut = (low + high) // 2
            if step % 2 == 0 and above_rows > below_rows:
                share = (target - below_rows) / (above_rows - below_rows)
                cut = min(high, max(low, below + round((above - below) * share)))
            counted = self._count(space.range_filter(first, cut), space.column)
            if best is None or abs(counted - target) < best[0]:
                best = (abs(counted - target), cut, counted)
            if abs(counted - target) <= self.tolerance:
                break
            if counted < target:
                low, below, below_rows = cut + 1, cut, counted
            else:
                high, above, above_rows = cut - 1, cut, counted
        if best is None:  # no room to move: the ranges are as small as keys allow
            return low, self._count(space.range_filter(first, low), space.column)
        return best[1], best[2]

    def _count(self, extra: str | None, column: str) -> int:
        try:
            return self.probes.count(extra)
        except ErpNetApiError as error:
            if error.status not in _REFUSED:
                raise
            raise _Refused(f"the server refuses ge/le on {column} (HTTP {error.status})") from None

    def _sample(self, orderby: str) -> list[str] | None:
        try:
            return self.sample(orderby)
        except ErpNetApiError as error:
            if error.status not in _REFUSED:
                raise
            return None


def _bounds(space: _Space, first: int, last: int) -> tuple[str | None, str | None]:
    return (
        space.lower(first) if first > space.low else None,
        space.upper(last) if last < space.high else None,
    )


def check_plan(parts: Sequence[Partition]) -> None:
    """Raise unless ``parts`` are the partitions of one plan, each exactly once."""
    if not parts:
        raise ErpNetIncompleteError("No partition was extracted: the plan produced no parts to gather.")
    plans = {p.plan for p in parts}
    if len(plans) > 1:
        raise ErpNetConfigError(
            f"The parts come from {len(plans)} different partition plans; gather the parts of one "
            "planning task's output."
        )
    of = parts[0].of
    indexes = sorted(p.index for p in parts)
    missing = sorted(set(range(of)) - set(indexes))
    repeated = sorted({i for i in indexes if indexes.count(i) > 1})
    if missing or repeated:
        raise ErpNetIncompleteError(
            f"{parts[0].entity_set}: the plan has {of} partitions; "
            + (f"missing {_numbers(missing)}" if missing else "")
            + ("; " if missing and repeated else "")
            + (f"repeated {_numbers(repeated)}" if repeated else "")
            + ". Gather every mapped extraction of one run, each once."
        )


def _numbers(indexes: Sequence[int]) -> str:
    return ", ".join(str(i) for i in indexes)
