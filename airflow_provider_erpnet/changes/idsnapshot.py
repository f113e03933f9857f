"""Compact sorted Id snapshots, and the streaming diff of two of them.

A snapshot file is a 16-byte header (``ERPNET-IDS`` and a format version) followed by every Id of
an entity set as its 16 big-endian UUID bytes, strictly increasing: 16 MB for a million rows,
readable a block at a time. Both lists are sorted the same way, so the rows deleted between two
snapshots fall out of one merge that holds a block of each file in memory, whatever the size of
the set.

``SnapshotBuilder`` takes Ids in the order the server sends them. Keyset paging sends them sorted,
and then they go straight to the file; if they arrive in any other order (a server whose Id order
is not byte order), the builder spills sorted runs of ``run_size`` Ids and merges them at the end,
so memory stays bounded either way.
"""

from __future__ import annotations

import heapq
import os
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from airflow_provider_erpnet.client.errors import ErpNetError
from airflow_provider_erpnet.io.spool import spool_file

MAGIC = b"ERPNET-IDS\x00\x00\x00\x00\x00\x01"
ID_BYTES = 16
BLOCK_IDS = 4096
DEFAULT_RUN_SIZE = 262_144  # Ids sorted in memory at a time when the server's order is not ours


class SnapshotError(ErpNetError):
    """A snapshot file that is not one, or is damaged."""


def id_bytes(text: str) -> bytes:
    """The 16 bytes of a GUID in any case, with or without braces; ValueError if it is none."""
    digits = text.strip("{}").replace("-", "")
    if len(digits) != 32:
        raise ValueError(f"{text!r} is not a GUID")
    return bytes.fromhex(digits)


def id_text(raw: bytes) -> str:
    """The canonical lower-case GUID of 16 bytes."""
    return str(uuid.UUID(bytes=raw))


@dataclass(frozen=True)
class Built:
    """A finished snapshot: its file, how many Ids it holds, and repeats the server sent."""

    path: Path
    count: int
    repeated: int


class SnapshotBuilder:
    """Collects Ids into a sorted snapshot file at ``path`` (spill runs go beside it)."""

    def __init__(self, path: Path, *, run_size: int = DEFAULT_RUN_SIZE) -> None:
        self.path = path
        self._run_size = run_size
        self._sink: BinaryIO = spool_file(path)  # closed in finish or abort
        self._sink.write(MAGIC)
        self._last = b""
        self._count = 0
        self._repeated = 0
        self._runs: list[Path] = []
        self._buffer: list[bytes] | None = None

    def add(self, ids: Iterable[bytes]) -> None:
        """Append Ids (16 bytes each) in arrival order."""
        for raw in ids:
            if self._buffer is not None:
                self._buffer.append(raw)
                if len(self._buffer) >= self._run_size:
                    self._spill()
            elif raw > self._last:
                self._sink.write(raw)
                self._last = raw
                self._count += 1
            elif raw == self._last:
                self._repeated += 1
            else:
                self._start_runs(raw)

    def finish(self) -> Built:
        """Complete the file (merging spilled runs if the order was not ours) and return it."""
        if self._buffer is None:
            self._sink.close()
            return Built(self.path, self._count, self._repeated)
        self._spill()
        self._sink = spool_file(self.path)  # moved away as the first run (``_start_runs``)
        self._sink.write(MAGIC)
        self._count = 0
        last = b""
        with ExitStack() as stack:
            runs = [read_ids(stack.enter_context(open(run, "rb")), run) for run in self._runs]
            for raw in heapq.merge(*runs):
                if raw == last:
                    self._repeated += 1
                    continue
                self._sink.write(raw)
                last = raw
                self._count += 1
        self._sink.close()
        self._remove_runs()
        return Built(self.path, self._count, self._repeated)

    def abort(self) -> None:
        """Close and delete everything written so far."""
        self._sink.close()
        self._remove_runs()
        self.path.unlink(missing_ok=True)

    def _start_runs(self, raw: bytes) -> None:
        """The first Id out of order: what was written so far becomes the first sorted run."""
        self._sink.close()
        first = self.path.with_name(f"{self.path.name}.run-0")
        os.replace(self.path, first)
        self._runs.append(first)
        self._buffer = [raw]

    def _spill(self) -> None:
        assert self._buffer is not None
        run = self.path.with_name(f"{self.path.name}.run-{len(self._runs)}")
        with spool_file(run) as sink:
            sink.write(MAGIC)
            sink.write(b"".join(sorted(self._buffer)))
        self._runs.append(run)
        self._buffer = []

    def _remove_runs(self) -> None:
        for run in self._runs:
            run.unlink(missing_ok=True)
        self._runs = []


def read_ids(source: BinaryIO, name: object = "snapshot") -> Iterator[bytes]:
    """The Ids of a snapshot file, a block at a time; raises ``SnapshotError`` for a damaged one."""
    if source.read(len(MAGIC)) != MAGIC:
        raise SnapshotError(f"{name} is not an ERP.net Id snapshot (wrong header).")
    while True:
        block = source.read(ID_BYTES * BLOCK_IDS)
        if not block:
            return
        if len(block) % ID_BYTES:
            raise SnapshotError(f"{name} is cut short: its size is not a whole number of Ids.")
        view = memoryview(block)
        for start in range(0, len(block), ID_BYTES):
            yield bytes(view[start : start + ID_BYTES])


@dataclass
class Diff:
    """Counts of a merge of two snapshots; the Ids themselves go to the callbacks."""

    before: int = 0
    after: int = 0
    deleted: int = 0
    added: int = 0


def diff(before: Iterator[bytes], after: Iterator[bytes], on_deleted: Callable[[bytes], None]) -> Diff:
    """Walk two sorted Id streams once; Ids only in ``before`` go to ``on_deleted`` in order."""
    counts = Diff()
    old = next(before, None)
    new = next(after, None)
    while old is not None or new is not None:
        if new is None or (old is not None and old < new):
            on_deleted(old)  # type: ignore[arg-type]
            counts.deleted += 1
            counts.before += 1
            old = next(before, None)
        elif old is None or new < old:
            counts.added += 1
            counts.after += 1
            new = next(after, None)
        else:
            counts.before += 1
            counts.after += 1
            old = next(before, None)
            new = next(after, None)
    return counts
