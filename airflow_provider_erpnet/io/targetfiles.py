"""The files that belong to one output target, which run owns each, and the sweep of runs that are over.

Beside a target ``orders.csv`` (stem ``orders``, suffix ``.csv``) a run with token ``T`` (32 hex
digits; its run id ``R`` is the first 16) writes:

- ``.orders.csv.lock-R``: its ownership lock, held from start to end (local targets only);
- ``.<final name>.tmp-T``: temporary files, one per final file;
- ``orders.csv``, or the parts ``orders-R-00000.csv``, ``orders-R-00001.csv``, ...;
- ``_orders.csv.manifest.json``: the manifest listing them, replaced last.

A token starts with the run's start time in milliseconds (11 hex digits), so where nothing can be
locked (object stores) a name still tells whether its run started before another.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Protocol

from .writers import ResolvedFormat

TOKEN_DIGITS = 32
RUN_DIGITS = 16
_TIME_DIGITS = 11
MANIFEST_SUFFIX = ".manifest.json"


def new_token() -> str:
    """A fresh run token: start time in milliseconds, then random digits."""
    millis = time.time_ns() // 1_000_000
    return f"{millis:0{_TIME_DIGITS}x}{secrets.token_hex(TOKEN_DIGITS)[: TOKEN_DIGITS - _TIME_DIGITS]}"


def started_ms(token_or_run: str) -> int:
    """When the run named by a token or run id started (its own clock), in milliseconds."""
    return int(token_or_run[:_TIME_DIGITS], 16)


def manifest_name(target_name: str) -> str:
    """``_<target name>.manifest.json``; a leading ``_`` keeps Spark, Hive and pyarrow datasets off it."""
    return f"_{target_name}{MANIFEST_SUFFIX}"


class TargetNames:
    """Names of the files of one target, and the patterns that recognise them in a listing."""

    def __init__(self, target_name: str, layout: ResolvedFormat) -> None:
        self.target = target_name
        self.layout = layout
        self.manifest = manifest_name(target_name)
        stem, suffix = re.escape(layout.stem), re.escape(layout.suffix)
        part = rf"{stem}-(?:(?P<run>[0-9a-f]{{{RUN_DIGITS}}})-)?\d{{5}}{suffix}"
        finals = rf"{re.escape(target_name)}|{re.escape(self.manifest)}|{part}"
        self._part = re.compile(part)
        self._temp = re.compile(rf"\.(?:{finals})\.tmp-(?P<token>[0-9a-f]{{{TOKEN_DIGITS}}})")
        self._lock = re.compile(rf"\.{re.escape(target_name)}\.lock-(?P<run>[0-9a-f]{{{RUN_DIGITS}}})")

    def part(self, index: int, run: str) -> str:
        return self.layout.part_name(index, run)

    @staticmethod
    def temp(final_name: str, token: str) -> str:
        return f".{final_name}.tmp-{token}"

    def lock(self, run: str) -> str:
        return f".{self.target}.lock-{run}"

    def classify(self, name: str) -> tuple[str, str | None] | None:
        """``("temp", run)``, ``("lock", run)``, ``("part", run or None)`` or None for other files."""
        if match := self._temp.fullmatch(name):
            return "temp", match["token"][:RUN_DIGITS]
        if match := self._lock.fullmatch(name):
            return "lock", match["run"]
        if match := self._part.fullmatch(name):
            return "part", match["run"]
        return None


class SweptStorage(Protocol):
    """What the sweep needs from a storage (see ``output``)."""

    locks: bool

    def names(self, final: Any) -> list[str]: ...

    def sibling(self, final: Any, name: str) -> Any: ...

    def remove(self, path: Any) -> None: ...

    def alive(self, final: Any, lock_name: str) -> bool | None: ...


@dataclass(frozen=True)
class Swept:
    """What a sweep removed, and how many other runs it found still running."""

    removed: int
    live_runs: int


def sweep(
    storage: SweptStorage,
    final: Any,
    names: TargetNames,
    *,
    own_run: str | None,
    before_ms: int,
    keep: Collection[str] | None = None,
) -> Swept:
    """Remove the temporary files and locks of runs that are over; with ``keep``, their parts too.

    A run is over when its lock can be taken or is gone (local), or, on object stores, when it
    started at or before ``before_ms``. ``keep`` holds the file names the manifest just published
    lists; parts outside it from runs that are over (and parts named before runs had ids) go.
    """
    verdicts: dict[str | None, bool] = {own_run: False} if own_run else {}

    def over(run: str | None) -> bool:
        if run not in verdicts:
            if run is None:
                verdicts[run] = True
            elif storage.locks:
                verdicts[run] = storage.alive(final, names.lock(run)) is not True
            else:
                verdicts[run] = started_ms(run) <= before_ms
        return verdicts[run]

    files, locks, others = [], [], set()
    for name in storage.names(final):
        kind = names.classify(name)
        if kind is None:
            continue
        role, run = kind
        if not over(run):
            others.add(run)
        elif role == "temp" or (role == "part" and keep is not None and name not in keep):
            files.append(name)
        elif role == "lock":
            locks.append(name)
    # Locks last: while its lock stands, a dead run's files are still recognisably its own.
    for name in files + locks:
        storage.remove(storage.sibling(final, name))
    others.discard(own_run)
    return Swept(removed=len(files) + len(locks), live_runs=len(others))
