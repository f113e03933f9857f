"""Deleted rows, found by reconciling Ids: ERP.net publishes no deletions, so compare snapshots.

One reconciliation reads every Id of an entity set (``$select=Id``, keyset paging: N/1000
requests for N rows, plus one ``$count``), builds a sorted snapshot of them in a local spool,
merges it with the snapshot the previous successful reconciliation left at ``snapshot_target``,
and writes each Id that was there before and is gone now as a tombstone (``Id``,
``detected_at``) to ``output_target``, in any output format, with its manifest.

Order of the commits, which is what makes the result exact across failures:

1. the tombstones file (and its manifest file) is committed;
2. only then does the new snapshot replace the old one (atomically: temporary file, then a move),
   and then the snapshot's own manifest ``_<snapshot name>.manifest.json`` is published.

A failure before 2 leaves the old snapshot, so the next run finds the same deletions again (their
tombstones are written again, with a later ``detected_at``): nothing is lost, at worst repeated.
Rows created and deleted between two reconciliations are never seen by either.

Memory does not grow with the set: Ids stream from pages into the snapshot file, and the merge
reads both snapshots a block at a time.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from airflow_provider_erpnet.client.client import ErpNetClient
from airflow_provider_erpnet.client.errors import ErpNetError, ErpNetTransportError
from airflow_provider_erpnet.client.odata import MAX_PAGE_SIZE
from airflow_provider_erpnet.io import Column, FileInfo, Manifest, OutputWriter
from airflow_provider_erpnet.io.output import _storage_for, local_path
from airflow_provider_erpnet.io.progress import Progress
from airflow_provider_erpnet.io.spool import spool_directory, spool_file
from airflow_provider_erpnet.io.targetfiles import RUN_DIGITS, manifest_name, new_token
from airflow_provider_erpnet.operators.extraction import CheckCount, check_completeness, check_count_mode

from .idsnapshot import Built, Diff, SnapshotBuilder, diff, id_bytes, id_text, read_ids
from .instants import format_instant, from_datetime

log = logging.getLogger(__name__)

TOMBSTONE_COLUMNS = (
    Column("Id", "string", nullable=False, source_type="Edm.Guid"),
    Column("detected_at", "timestamp", nullable=False, source_type="Edm.DateTimeOffset"),
)
SNAPSHOT_FORMAT = "erpnet-ids"
_COPY_BYTES = 1 << 20
_TOMBSTONE_BATCH = 1000


@dataclass(frozen=True)
class ReconcileRequest:
    """What to reconcile and how strictly; ``check_count`` as for extractions."""

    entity_set: str
    page_size: int = MAX_PAGE_SIZE
    check_count: CheckCount = True

    def __post_init__(self) -> None:
        check_count_mode(self.check_count)


def run_reconciliation(
    client: ErpNetClient,
    request: ReconcileRequest,
    snapshot_target: str | os.PathLike[str] | Any,
    output_target: str | os.PathLike[str] | Any,
    *,
    fmt: str | None = None,
    detected_at: dt.datetime | None = None,
    logger: logging.Logger | logging.LoggerAdapter = log,
) -> Manifest:
    """Reconcile once; returns the tombstones' manifest (its ``reconciliation`` section holds counts).

    ``snapshot_target`` is a file path or URL kept from run to run (one per entity set);
    ``output_target`` receives this run's tombstones. See the module docstring for the guarantees.
    """
    started = dt.datetime.now(dt.timezone.utc)
    stamp = format_instant(from_datetime(detected_at or started))
    snapshot = _SnapshotFile(snapshot_target)
    with (
        snapshot.claimed(),
        spool_directory() as spool,
        OutputWriter(output_target, fmt, TOMBSTONE_COLUMNS) as writer,
    ):
        built = _snapshot_now(client, request, spool / "now.ids", logger)
        previous = snapshot.fetch(spool / "before.ids")
        tombstones = _Tombstones(writer, stamp)
        if previous is None:
            counts = Diff(after=built.count, added=built.count)
        else:
            with open(previous, "rb") as before, open(built.path, "rb") as after:
                counts = diff(read_ids(before, snapshot.name), read_ids(after, built.path), tombstones.add)
        tombstones.flush()
        summary = {
            "snapshot": snapshot.name,
            "first_run": previous is None,
            "ids_before": counts.before,
            "ids_now": counts.after,
            "deleted": counts.deleted,
            "added": counts.added,
            "repeated_ids": built.repeated,
            "detected_at": stamp,
            "previous_taken_at": snapshot.taken_at,
        }

        def describe(files: list[FileInfo]) -> Manifest:
            return writer.manifest_of(
                files,
                request.entity_set,
                query={"select": "Id"},
                server_count=counts.after,
                duration_seconds=round((dt.datetime.now(dt.timezone.utc) - started).total_seconds(), 3),
                reconciliation=summary,
            )

        files = writer.commit(describe)
        snapshot.publish(built, request.entity_set, stamp)
    logger.info(
        "%s: %d Ids now, %d before; %d deleted, %d added since the previous reconciliation%s.",
        request.entity_set,
        counts.after,
        counts.before,
        counts.deleted,
        counts.added,
        " (first run: no snapshot to compare with)" if previous is None else "",
    )
    return describe(files)


def _snapshot_now(
    client: ErpNetClient,
    request: ReconcileRequest,
    path: Path,
    logger: logging.Logger | logging.LoggerAdapter,
) -> Built:
    """Every Id of the set, read page by page into a sorted snapshot file; checked against $count."""
    builder = SnapshotBuilder(path)
    progress = Progress(logger, request.entity_set, expected=None)
    try:
        pages = client.iter_pages(request.entity_set, select="Id", page_size=request.page_size)
        with closing(pages):
            for page in pages:
                builder.add(_ids_of(page.records, request.entity_set))
                progress.page(len(page.records))
        built = builder.finish()
    except BaseException:
        builder.abort()
        raise
    server_count = client.count(request.entity_set)
    check_completeness(request.entity_set, built.count, server_count, request.check_count)
    return built


def _ids_of(records: list[dict[str, Any]], entity_set: str) -> list[bytes]:
    ids = []
    for record in records:
        value = record.get("Id")
        try:
            ids.append(id_bytes(value))  # type: ignore[arg-type]
        except (TypeError, ValueError, AttributeError):
            raise ErpNetTransportError(
                f"{entity_set}: a row's Id is {type(value).__name__} {str(value)[:40]!r}, not a GUID; "
                "reconciliation compares GUID Ids."
            ) from None
    return ids


class _Tombstones:
    """Deleted Ids in batches into the output writer."""

    def __init__(self, writer: OutputWriter, detected_at: str) -> None:
        self.writer = writer
        self.detected_at = detected_at
        self.batch: list[dict[str, str]] = []

    def add(self, raw: bytes) -> None:
        self.batch.append({"Id": id_text(raw), "detected_at": self.detected_at})
        if len(self.batch) >= _TOMBSTONE_BATCH:
            self.flush()

    def flush(self) -> None:
        if self.batch:
            self.writer.write_page(self.batch)
            self.batch = []


class _SnapshotFile:
    """The snapshot kept between runs: a local file or an object, replaced in one step."""

    def __init__(self, target: Any) -> None:
        self.storage, self.final = _storage_for(target)
        self.name = str(self.final)
        self.manifest = self.storage.sibling(self.final, manifest_name(self.final.name))
        self.taken_at: str | None = None

    @contextmanager
    def claimed(self) -> Iterator[None]:
        """Hold this run's ownership lock beside a local snapshot (which also creates its directory
        and proves it writable before any page is read); object stores have no locks."""
        lock = self.storage.claim(self.final, f".{self.final.name}.lock-{new_token()[:RUN_DIGITS]}")
        try:
            yield
        finally:
            if lock is not None:
                lock.release()

    def fetch(self, spool_path: Path) -> Path | None:
        """A local, readable path of the previous snapshot, or None on the first run."""
        if not self.storage.exists(self.final):
            return None
        about = self._about()
        self.taken_at = about.get("taken_at") if about else None
        local = local_path(self.final)
        if local is not None:
            return local
        with self.final.open("rb") as source, spool_file(spool_path) as sink:
            _copy(source, sink)
        return spool_path

    def publish(self, built: Built, entity_set: str, taken_at: str) -> None:
        """Replace the snapshot, then its manifest (both through a temporary file and a move)."""
        size = built.path.stat().st_size
        with open(built.path, "rb") as source:
            self._replace(self.final, lambda sink: _copy(source, sink))
        about = Manifest(
            entity_set=entity_set,
            format=SNAPSHOT_FORMAT,
            files=[FileInfo(self.name, built.count, size)],
            rows=built.count,
            bytes=size,
            columns=[TOMBSTONE_COLUMNS[0]],
            query={"select": "Id"},
            reconciliation={"taken_at": taken_at},
        )
        text = json.dumps(about.to_dict(), indent=1).encode("utf-8")
        self._replace(self.manifest, lambda sink: sink.write(text))

    def _replace(self, final: Any, write: Callable[[BinaryIO], object]) -> None:
        temp = self.storage.temp_beside(final, new_token())
        sink = self.storage.open(temp)
        try:
            write(sink)
            self.storage.finish(sink)
            self.storage.move(temp, final)
            self.storage.sync_directory(final)
        except BaseException:
            sink.close()
            self.storage.remove(temp)
            raise

    def _about(self) -> dict[str, Any] | None:
        if not self.storage.exists(self.manifest):
            return None
        try:
            about = Manifest.from_dict(json.loads(self.storage.read(self.manifest)))
        except (ErpNetError, OSError, ValueError, TypeError):
            log.warning(
                "The snapshot manifest %s is unreadable; comparing with the snapshot alone.", self.manifest
            )
            return None
        return about.reconciliation


def _copy(source: BinaryIO, sink: BinaryIO) -> None:
    shutil.copyfileobj(source, sink, _COPY_BYTES)
