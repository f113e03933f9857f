"""Atomic output: a file appears at its final path only when it is complete, and part files as a set.

Rows go to hidden temporary files beside the target (``.<name>.tmp-<token>``). ``commit`` moves
them into place (locally after fsync, with ``os.replace``; on object storage with the filesystem's
move, a copy and delete on S3), then replaces the manifest file ``_<name>.manifest.json`` that
lists them, then removes what earlier or killed runs of the same target left (see
``targetfiles``). ``abort`` removes the temporary files. With ``max_rows_per_file`` the output is
split into parts named after the run, ``<stem>-<run>-00000<suffix>``, so moving them never touches
a file that an earlier manifest lists: a reader of a manifest sees one whole run.

Locally, a writer holds an ownership lock beside the target from construction to commit or abort
(which also proves the directory writable before any page is read); only files of runs whose lock
is free are ever swept.
"""

from __future__ import annotations

import fcntl
import gzip
import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import unquote, urlsplit

from airflow_provider_erpnet.client.errors import ErpNetConfigError, ErpNetError

from .arrow import arrow_schema
from .convert import RecordConverter
from .locks import OwnerLock, owner_alive
from .manifest import FileInfo, Manifest
from .pagecodec import NeedsExactPath, TypedPage
from .schema import Column
from .targetfiles import RUN_DIGITS, Swept, TargetNames, manifest_name, new_token, started_ms, sweep
from .writers import DEFAULT_ROW_GROUP_ROWS, FormatWriter, ResolvedFormat, Rows, resolve_format

log = logging.getLogger(__name__)


class _LocalStorage:
    """Local disk: fsync before the rename, so a committed file survives a crash; flock for ownership."""

    locks = True

    def __init__(self, *, private: bool = False) -> None:
        self.mode = 0o600 if private else 0o666  # 0o666 less the umask, as open() would make it

    def temp_beside(self, final: Path, token: str) -> Path:
        return final.with_name(TargetNames.temp(final.name, token))

    def sibling(self, final: Path, name: str) -> Path:
        return final.with_name(name)

    def claim(self, final: Path, lock_name: str) -> OwnerLock:
        """Create the directory and this run's lock in it: the writability check before any page."""
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            return OwnerLock(final.with_name(lock_name))
        except OSError as error:
            raise ErpNetConfigError(
                f"Cannot write to the output directory {str(final.parent)!r}: {error.strerror}. Give the "
                "task's user write access to it, or choose another output_path."
            ) from None

    def open(self, path: Path) -> BinaryIO:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        return os.fdopen(os.open(path, flags, self.mode), "wb")

    def finish(self, sink: BinaryIO) -> None:
        sink.flush()
        os.fsync(sink.fileno())
        sink.close()

    def move(self, source: Path, final: Path) -> None:
        os.replace(source, final)

    def sync_directory(self, final: Path) -> None:
        """Make the renames durable; platforms without directory fds (Windows) skip this."""
        if not hasattr(os, "O_DIRECTORY"):
            return
        descriptor = os.open(final.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)

    @contextmanager
    def commit_lock(self, final: Path) -> Iterator[None]:
        """One commit at a time per directory, so a file and its manifest are replaced as a pair."""
        descriptor = os.open(final.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX)
            except OSError as error:  # e.g. NFS cannot flock a directory: commit unserialised
                log.debug("No commit lock on %s (%s).", final.parent, error.strerror)
            yield
        finally:
            os.close(descriptor)

    def names(self, final: Path) -> list[str]:
        try:
            return os.listdir(final.parent)
        except FileNotFoundError:
            return []

    def alive(self, final: Path, lock_name: str) -> bool | None:
        return owner_alive(final.with_name(lock_name))

    def exists(self, path: Path) -> bool:
        return path.exists()

    def read(self, path: Path) -> bytes:
        return path.read_bytes()

    def remove(self, path: Path) -> None:
        path.unlink(missing_ok=True)


class _ObjectStorage:
    """A UPath / ObjectStoragePath-like object: uploads complete on close, moves via its filesystem.

    Nothing can be locked here: runs are told apart by the start time in their tokens.
    """

    locks = False

    def temp_beside(self, final: Any, token: str) -> Any:
        return final.parent / TargetNames.temp(final.name, token)

    def sibling(self, final: Any, name: str) -> Any:
        return final.parent / name

    def claim(self, final: Any, lock_name: str) -> None:
        """Object stores have no locks; writability shows at the first upload."""

    def open(self, path: Any) -> BinaryIO:
        return path.open("wb")

    def finish(self, sink: BinaryIO) -> None:
        sink.close()

    def move(self, source: Any, final: Any) -> None:
        fs = getattr(source, "fs", None)
        if fs is not None and hasattr(source, "path"):
            fs.mv(source.path, final.path)
        else:
            source.rename(final)

    def sync_directory(self, final: Any) -> None:
        """Object stores have no directories to sync."""

    def commit_lock(self, final: Any) -> AbstractContextManager[None]:
        return nullcontext()

    def names(self, final: Any) -> list[str]:
        parent = final.parent
        return [child.name for child in parent.iterdir()] if parent.exists() else []

    def alive(self, final: Any, lock_name: str) -> bool | None:
        return None

    def exists(self, path: Any) -> bool:
        return bool(path.exists())

    def read(self, path: Any) -> bytes:
        return bytes(path.read_bytes())

    def remove(self, path: Any) -> None:
        if path.exists():
            path.unlink()


_Storage = _LocalStorage | _ObjectStorage


def local_path(target: Any) -> Path | None:
    """The absolute path of a local target (a path, ``file:`` URL or local path object), else None.

    A ``file:`` URL is read as RFC 8089 says: its host is empty or ``localhost`` and its path is
    percent-decoded (``file://localhost/tmp/a%20b.jsonl`` is ``/tmp/a b.jsonl``). A local
    ``ObjectStoragePath`` or ``UPath`` counts as local, so it keeps fsync and ``os.replace``.
    """
    if isinstance(target, str):
        if target[:5].lower() == "file:":
            return _file_url_path(target)
        if "://" in target:
            return None
        return Path(target).absolute()
    if getattr(target, "protocol", None) in ("file", "local") and hasattr(target, "path"):
        return Path(target.path).absolute()
    if isinstance(target, os.PathLike):
        return Path(os.fspath(target)).absolute()
    return None


def _file_url_path(url: str) -> Path:
    parts = urlsplit(url)
    if parts.netloc.lower() not in ("", "localhost"):
        raise ErpNetConfigError(
            f"Output URL {url!r} names host {parts.netloc!r}, but a file: URL can only name a file on "
            "this machine: write file:///path (or file://localhost/path), or mount the share and give "
            "its local path."
        )
    return Path(unquote(parts.path)).absolute()


def _storage_for(target: Any, *, private: bool = False) -> tuple[_Storage, Any]:
    """Local targets become ``Path``; other URLs ``UPath``; other path objects are duck-typed."""
    path = local_path(target)
    if path is not None:
        try:
            is_directory = path.is_dir()
        except OSError as error:
            raise ErpNetConfigError(
                f"Cannot reach the output target {str(path)!r}: {error.strerror}. Give the task's user "
                "access to its directory, or choose another output_path."
            ) from None
        if is_directory:
            raise ErpNetConfigError(f"Output target {str(path)!r} is a directory; give a file name.")
        return _LocalStorage(private=private), path
    if isinstance(target, str):
        try:
            from upath import UPath
        except ImportError:
            raise ErpNetConfigError(
                f"Writing to {target!r} needs universal_pathlib (installed with Airflow); "
                "or pass an ObjectStoragePath."
            ) from None
        return _ObjectStorage(), UPath(target)
    if all(hasattr(target, attr) for attr in ("open", "parent", "name", "exists", "unlink")):
        return _ObjectStorage(), target
    raise ErpNetConfigError(
        f"Output target of type {type(target).__name__} is not a path: pass a local path, a URL string "
        "or an ObjectStoragePath / UPath."
    )


class _PartFile:
    """One temporary file being written: its sink, optional gzip layer and format writer."""

    def __init__(
        self,
        storage: _Storage,
        final: Any,
        token: str,
        layout: ResolvedFormat,
        columns: list[Column],
        **options: Any,
    ):
        self.storage = storage
        self.final = final
        self.temp = storage.temp_beside(final, token)
        self.rows = 0
        self.sink = storage.open(self.temp)
        self.gzip = gzip.GzipFile(fileobj=self.sink, mode="wb", mtime=0, filename="") if layout.gzip else None
        try:
            self.writer: FormatWriter = layout.format.writer(self.gzip or self.sink, columns, **options)
        except BaseException:
            self.sink.close()
            storage.remove(self.temp)
            raise

    def write(self, rows: Rows, first_row: int) -> None:
        self.writer.write(rows, first_row)
        self.rows += len(rows)

    def finish(self) -> int:
        """Finish the format and close the file; returns its size in bytes."""
        self.writer.close()
        if self.gzip is not None:
            self.gzip.close()
        size = self.sink.tell()
        self.storage.finish(self.sink)
        return size

    def discard(self) -> bool:
        """Close without finishing; True when every handle closed cleanly."""
        clean = True
        for close in (self.writer.discard, self.gzip and self.gzip.close, self.sink.close):
            if not close:
                continue
            try:
                close()
            except (OSError, ValueError):  # the sink may be what failed; the file is deleted next
                clean = False
        return clean


Describe = Callable[[list[FileInfo]], Manifest]


def _rows_between(rows: Rows, start: int, stop: int) -> Rows:
    if start == 0 and stop == len(rows):
        return rows
    return rows.take(start, stop) if isinstance(rows, TypedPage) else rows[start:stop]


class OutputWriter:
    """One extraction's output, written page by page and committed atomically.

    Use it as a context manager: an exception inside the block aborts (nothing appears at the
    target, temporary files are removed); leaving the block normally commits if ``commit`` was
    not called yet. ``target`` is a local path, a URL string (``s3://...``, via universal_pathlib)
    or a path object with ``open``/``parent``/``name``/``exists``/``unlink`` (ObjectStoragePath).
    ``private`` makes local files readable by this user only (0600), for scratch copies.
    """

    def __init__(
        self,
        target: str | os.PathLike[str] | Any,
        fmt: str | None,
        columns: Sequence[Column],
        *,
        max_rows_per_file: int | None = None,
        row_group_rows: int = DEFAULT_ROW_GROUP_ROWS,
        private: bool = False,
    ) -> None:
        if max_rows_per_file is not None and max_rows_per_file < 1:
            raise ErpNetConfigError(f"max_rows_per_file must be at least 1 (got {max_rows_per_file}).")
        if row_group_rows < 1:
            raise ErpNetConfigError(f"row_group_rows must be at least 1 (got {row_group_rows}).")
        self._storage, self._target = _storage_for(target, private=private)
        self._layout = resolve_format(self._target.name, fmt)
        self._names = TargetNames(self._target.name, self._layout)
        self.columns = list(columns)
        self.max_rows_per_file = max_rows_per_file
        self._options = {"row_group_rows": row_group_rows} if self._layout.format.name == "parquet" else {}
        self._converter = RecordConverter(self.columns)
        if self._layout.format.name == "parquet":
            arrow_schema(self.columns)  # without pyarrow, fail here rather than after the first page
        self.rows = 0
        self.files: list[FileInfo] = []
        self._manifest: Manifest | None = None
        self._finished: list[tuple[_PartFile, int]] = []
        self._current: _PartFile | None = None
        self._placed: list[Any] = []
        self._token = new_token()
        self.run = self._token[:RUN_DIGITS]
        """This run's id, in its part names: ``<stem>-<run>-00000<suffix>``."""
        self._lock = self._storage.claim(self._target, self._names.lock(self.run))
        self._state = "open"

    @property
    def format(self) -> str:
        """``jsonl``, ``csv`` or ``parquet``."""
        return self._layout.format.name

    @property
    def manifest(self) -> Manifest:
        """The manifest published beside the output at commit."""
        if self._manifest is None:
            raise ErpNetError(f"No manifest yet: this output is {self._state}, not committed.")
        return self._manifest

    def __enter__(self) -> OutputWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, traceback: Any) -> None:
        if self._state != "open":
            return
        if exc_type is None:
            self.commit()
        else:
            self.abort()

    def write_page(self, records: Sequence[Mapping[str, Any]] | TypedPage) -> None:
        """Convert and append one page of records; rolls to a new part file when one is full.

        ``records`` are dicts as the client decodes them, or a ``TypedPage`` from a
        ``PageCodec`` built for these columns (the fast path: no Python loop per value).
        """
        self._require_open("write_page")
        rows = self._typed(records)
        start = 0
        while start < len(rows):
            current = self._current or self._open_part()
            room = len(rows) - start
            if self.max_rows_per_file is not None:
                room = min(room, self.max_rows_per_file - current.rows)
            if room == 0:
                self._finish_current()
                continue
            current.write(_rows_between(rows, start, start + room), self.rows + 1)
            self.rows += room
            start += room

    def _typed(self, records: Sequence[Mapping[str, Any]] | TypedPage) -> Rows:
        if isinstance(records, TypedPage):
            codec = records.codec
            if codec.columns == self.columns:
                try:
                    codec.prepare(records)
                    return records
                except NeedsExactPath:
                    return codec.exact_rows(records, self.rows + 1)
            records = codec.as_records(records)
        return self._converter.convert(records, self.rows + 1)

    def commit(self, describe: Describe | None = None) -> list[FileInfo]:
        """Move every file into place, publish the manifest file, and return what was written.

        ``describe`` builds the published manifest from the files (the extraction passes one with
        its entity set, query and checks); without it the manifest holds the writer's own facts.
        An output of no rows is one empty file.
        """
        if self._state == "committed":
            return self.files
        self._require_open("commit")
        try:
            if self._current is None and not self._finished:
                self._open_part()
            self._finish_current()
            files = [FileInfo(str(part.final), part.rows, size) for part, size in self._finished]
            manifest = describe(files) if describe else self.manifest_of(files)
            with self._storage.commit_lock(self._target):
                for part, _ in self._finished:
                    self._move_into_place(part)
                self._storage.sync_directory(self._target)
                self._publish(manifest)
                self._placed = []  # listed by the published manifest: no longer ours to remove
                swept = self._sweep_after_publish()
        except BaseException:
            self.abort()
            raise
        self.files, self._manifest, self._state = files, manifest, "committed"
        self._release()
        # DEBUG: an extraction's own summary line reports rows and bytes, and a staged extraction
        # commits a local spool too, which at INFO read like a second output.
        log.debug(
            "Committed %d file(s) at %s: %d rows, %d bytes; removed %d file(s) of earlier runs.",
            len(files),
            self._target,
            self.rows,
            manifest.bytes,
            swept.removed,
        )
        return self.files

    def abort(self) -> None:
        """Remove every temporary file; nothing at the target changes. Safe to call twice."""
        if self._state in ("committed", "aborted"):
            return
        self._state = "aborted"
        leftovers = 0
        parts = [part for part, _ in self._finished]
        if self._current is not None:
            leftovers += not self._current.discard()
            parts.append(self._current)
            self._current = None
        for path in [part.temp for part in parts] + self._placed:
            try:
                self._storage.remove(path)
            except OSError:
                leftovers += 1
        self._finished, self._placed = [], []
        self._release()
        if leftovers:
            log.warning("Abort could not close or remove %d temporary file(s) beside the target.", leftovers)

    def _open_part(self) -> _PartFile:
        if self.max_rows_per_file is None:
            final = self._target
        else:
            name = self._names.part(len(self._finished), self.run)
            final = self._storage.sibling(self._target, name)
        self._current = _PartFile(
            self._storage, final, self._token, self._layout, self.columns, **self._options
        )
        return self._current

    def _finish_current(self) -> None:
        if self._current is None:
            return
        part, self._current = self._current, None
        try:
            size = part.finish()
        except BaseException:
            self._current = part
            raise
        self._finished.append((part, size))

    def _move_into_place(self, part: _PartFile) -> None:
        try:
            self._storage.move(part.temp, part.final)
        except FileNotFoundError:
            raise ErpNetError(
                f"The temporary file of {part.final} was deleted while this run wrote it, most likely by "
                "another extraction writing the same target. Give each task its own output_path (for "
                "example with {{ ds }} in it), or run one extraction per target at a time."
            ) from None
        if self.max_rows_per_file is not None:
            self._placed.append(part.final)

    def _publish(self, manifest: Manifest) -> None:
        """Replace the manifest file in one step (temporary file, then move)."""
        final = self._storage.sibling(self._target, self._names.manifest)
        temp = self._storage.temp_beside(final, self._token)
        sink = self._storage.open(temp)
        try:
            sink.write(json.dumps(manifest.to_dict(), indent=1).encode("utf-8") + b"\n")
            self._storage.finish(sink)
            self._storage.move(temp, final)
        except BaseException:
            sink.close()
            self._storage.remove(temp)
            raise
        self._storage.sync_directory(self._target)

    def _sweep_after_publish(self) -> Swept:
        """Remove earlier runs' parts and killed runs' leftovers; a failure here loses nothing."""
        keep = {part.final.name for part, _ in self._finished}
        try:
            return sweep(
                self._storage,
                self._target,
                self._names,
                own_run=self.run,
                before_ms=started_ms(self._token),
                keep=keep,
            )
        except OSError as error:
            log.warning("Committed; could not remove earlier runs' files beside %s: %s", self._target, error)
            return Swept(removed=0, live_runs=0)

    def manifest_of(self, files: list[FileInfo], entity_set: str = "", **facts: Any) -> Manifest:
        """A manifest of ``files`` with this writer's format, rows and columns; ``facts`` add the
        other ``Manifest`` fields (query, counts, sections), for a ``describe`` passed to ``commit``."""
        return Manifest(
            entity_set, self.format, files, self.rows, sum(f.bytes for f in files), self.columns, **facts
        )

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.release()

    def _require_open(self, action: str) -> None:
        if self._state != "open":
            raise ErpNetError(f"Cannot {action}: this output was already {self._state}.")


def sweep_abandoned(target: str | os.PathLike[str] | Any, fmt: str | None, *, before: float) -> Swept:
    """Remove the temporary files and locks that dead runs left beside ``target``.

    Locally a run is dead when its lock can be taken; on object storage, when it started before
    ``before`` (a Unix time): a run still writing there loses its temporary files and fails at
    commit with a clear error, since nothing on an object store can tell it is alive.
    """
    storage, final = _storage_for(target)
    names = TargetNames(final.name, resolve_format(final.name, fmt))
    return sweep(storage, final, names, own_run=None, before_ms=int(before * 1000))


def read_published_manifest(target: str | os.PathLike[str] | Any) -> Manifest | None:
    """The manifest published beside ``target`` by its last committed run, or None before the first."""
    storage, final = _storage_for(target)
    path = storage.sibling(final, manifest_name(final.name))
    if not storage.exists(path):
        return None
    try:
        return Manifest.from_dict(json.loads(storage.read(path)))
    except (ValueError, TypeError, KeyError, AttributeError, ErpNetConfigError) as error:
        raise ErpNetError(
            f"{path} is not a readable extraction manifest ({error}); the next committed run replaces it."
        ) from None
