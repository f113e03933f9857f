"""Atomic output: a file appears at its final path only when it is complete.

Rows go to hidden temporary files beside the target (``.<name>.tmp-<hex>``); ``commit`` moves
them into place (locally after fsync, with ``os.replace``; on object storage with the
filesystem's move, a copy and delete on S3), ``abort`` removes them. With ``max_rows_per_file``
the output is split into part files ``<stem>-00000<suffix>``, ``<stem>-00001<suffix>``, ...,
all moved at commit.
"""

from __future__ import annotations

import gzip
import logging
import os
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import unquote, urlsplit

from airflow_provider_erpnet.client.errors import ErpNetConfigError, ErpNetError

from .arrow import arrow_schema
from .convert import RecordConverter, Row
from .manifest import FileInfo
from .schema import Column
from .writers import DEFAULT_ROW_GROUP_ROWS, FormatWriter, ResolvedFormat, resolve_format

log = logging.getLogger(__name__)


class _LocalStorage:
    """Local disk: fsync before the rename, so a committed file survives a crash."""

    def temp_beside(self, final: Path) -> Path:
        return final.with_name(f".{final.name}.tmp-{uuid.uuid4().hex}")

    def sibling(self, final: Path, name: str) -> Path:
        return final.with_name(name)

    def open(self, path: Path) -> BinaryIO:
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(path, "xb")

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

    def exists(self, path: Path) -> bool:
        return path.exists()

    def remove(self, path: Path) -> None:
        path.unlink(missing_ok=True)


class _ObjectStorage:
    """A UPath / ObjectStoragePath-like object: uploads complete on close, moves via its filesystem."""

    def temp_beside(self, final: Any) -> Any:
        return final.parent / f".{final.name}.tmp-{uuid.uuid4().hex}"

    def sibling(self, final: Any, name: str) -> Any:
        return final.parent / name

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

    def exists(self, path: Any) -> bool:
        return bool(path.exists())

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


def _storage_for(target: Any) -> tuple[_Storage, Any]:
    """Local targets become ``Path``; other URLs ``UPath``; other path objects are duck-typed."""
    path = local_path(target)
    if path is not None:
        if path.is_dir():
            raise ErpNetConfigError(f"Output target {str(path)!r} is a directory; give a file name.")
        return _LocalStorage(), path
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
        self, storage: _Storage, final: Any, layout: ResolvedFormat, columns: list[Column], **options: Any
    ):
        self.storage = storage
        self.final = final
        self.temp = storage.temp_beside(final)
        self.rows = 0
        self.sink = storage.open(self.temp)
        self.gzip = gzip.GzipFile(fileobj=self.sink, mode="wb", mtime=0, filename="") if layout.gzip else None
        try:
            self.writer: FormatWriter = layout.format.writer(self.gzip or self.sink, columns, **options)
        except BaseException:
            self.sink.close()
            storage.remove(self.temp)
            raise

    def write(self, rows: list[Row], first_row: int) -> None:
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


class OutputWriter:
    """One extraction's output, written page by page and committed atomically.

    Use it as a context manager: an exception inside the block aborts (nothing appears at the
    target, temporary files are removed); leaving the block normally commits if ``commit`` was
    not called yet. ``target`` is a local path, a URL string (``s3://...``, via universal_pathlib)
    or a path object with ``open``/``parent``/``name``/``exists``/``unlink`` (ObjectStoragePath).
    """

    def __init__(
        self,
        target: str | os.PathLike[str] | Any,
        fmt: str | None,
        columns: Sequence[Column],
        *,
        max_rows_per_file: int | None = None,
        row_group_rows: int = DEFAULT_ROW_GROUP_ROWS,
    ) -> None:
        if max_rows_per_file is not None and max_rows_per_file < 1:
            raise ErpNetConfigError(f"max_rows_per_file must be at least 1 (got {max_rows_per_file}).")
        if row_group_rows < 1:
            raise ErpNetConfigError(f"row_group_rows must be at least 1 (got {row_group_rows}).")
        self._storage, self._target = _storage_for(target)
        self._layout = resolve_format(self._target.name, fmt)
        self.columns = list(columns)
        self.max_rows_per_file = max_rows_per_file
        self._options = {"row_group_rows": row_group_rows} if self._layout.format.name == "parquet" else {}
        self._converter = RecordConverter(self.columns)
        if self._layout.format.name == "parquet":
            arrow_schema(self.columns)  # without pyarrow, fail here rather than after the first page
        self.rows = 0
        self.files: list[FileInfo] = []
        self._finished: list[tuple[_PartFile, int]] = []
        self._current: _PartFile | None = None
        self._state = "open"

    @property
    def format(self) -> str:
        """``jsonl``, ``csv`` or ``parquet``."""
        return self._layout.format.name

    def __enter__(self) -> OutputWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, traceback: Any) -> None:
        if self._state != "open":
            return
        if exc_type is None:
            self.commit()
        else:
            self.abort()

    def write_page(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Convert and append one page of records; rolls to a new part file when one is full."""
        self._require_open("write_page")
        rows = self._converter.convert(records, self.rows + 1)
        start = 0
        while start < len(rows):
            current = self._current or self._open_part()
            room = len(rows) - start
            if self.max_rows_per_file is not None:
                room = min(room, self.max_rows_per_file - current.rows)
            if room == 0:
                self._finish_current()
                continue
            current.write(rows[start : start + room], self.rows + 1)
            self.rows += room
            start += room

    def commit(self) -> list[FileInfo]:
        """Move every file into place and return what was written; an output of no rows is one empty file."""
        if self._state == "committed":
            return self.files
        self._require_open("commit")
        try:
            if self._current is None and not self._finished:
                self._open_part()
            self._finish_current()
            for part, _ in self._finished:
                self._storage.move(part.temp, part.final)
            self._storage.sync_directory(self._target)
            if self.max_rows_per_file is not None:
                self._remove_stale_parts(len(self._finished))
        except BaseException:
            self.abort()
            raise
        self.files = [FileInfo(str(part.final), part.rows, size) for part, size in self._finished]
        self._state = "committed"
        # DEBUG: an extraction's own summary line reports rows and bytes, and a staged extraction
        # commits a local spool too, which at INFO read like a second output.
        log.debug(
            "Committed %d file(s) at %s: %d rows, %d bytes.",
            len(self.files),
            self._target,
            self.rows,
            sum(f.bytes for f in self.files),
        )
        return self.files

    def abort(self) -> None:
        """Remove every temporary file; nothing at the target changes. Safe to call twice."""
        if self._state == "committed":
            return
        self._state = "aborted"
        leftovers = 0
        parts = [part for part, _ in self._finished]
        if self._current is not None:
            leftovers += not self._current.discard()
            parts.append(self._current)
            self._current = None
        for part in parts:
            try:
                self._storage.remove(part.temp)
            except OSError:
                leftovers += 1
        self._finished = []
        if leftovers:
            log.warning("Abort could not close or remove %d temporary file(s) beside the target.", leftovers)

    def _open_part(self) -> _PartFile:
        if self.max_rows_per_file is None:
            final = self._target
        else:
            final = self._storage.sibling(self._target, self._layout.part_name(len(self._finished)))
        self._current = _PartFile(self._storage, final, self._layout, self.columns, **self._options)
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

    def _remove_stale_parts(self, count: int) -> None:
        """Delete parts numbered ``count`` and up left by an earlier, larger run of the same target."""
        index = count
        while True:
            stale = self._storage.sibling(self._target, self._layout.part_name(index))
            if not self._storage.exists(stale):
                return
            self._storage.remove(stale)
            index += 1

    def _require_open(self, action: str) -> None:
        if self._state != "open":
            raise ErpNetError(f"Cannot {action}: this output was already {self._state}.")
