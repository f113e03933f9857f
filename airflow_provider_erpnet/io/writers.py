"""Format writers: typed rows -> bytes of one file, page by page.

A writer never holds more than one page (JSON Lines, CSV) or one row group (Parquet), so memory
does not grow with the number of rows. Writers write to a binary sink they do not own: ``close``
finishes the format (CSV has nothing to add, Parquet writes its footer) and leaves the sink open.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol

from airflow_provider_erpnet.client.errors import ErpNetConfigError

from . import csvcodec
from .arrow import arrow_schema, require_pyarrow, rows_to_batch
from .convert import Row
from .jsontext import dumps_lines
from .pagecodec import TypedPage
from .schema import Column

DEFAULT_ROW_GROUP_ROWS = 50_000
GZIP_SUFFIX = ".gz"


Rows = list[Row] | TypedPage  # typed dicts (``RecordConverter``), or a prepared page of a ``PageCodec``


class FormatWriter(Protocol):
    def write(self, rows: Rows, first_row: int) -> None:
        """Append typed rows; ``first_row`` numbers the first of them in error messages."""

    def close(self) -> None:
        """Finish the file format; the sink stays open."""

    def discard(self) -> None:
        """Stop without finishing: the file is about to be deleted."""


class JsonlWriter:
    """One JSON object per line, keys in column order, decimals as exact JSON numbers."""

    def __init__(self, sink: BinaryIO, columns: list[Column]) -> None:
        self.sink = sink

    def write(self, rows: Rows, first_row: int) -> None:
        self.sink.write(rows.codec.jsonl(rows) if isinstance(rows, TypedPage) else dumps_lines(rows))

    def close(self) -> None:
        """JSON Lines has no trailer."""

    def discard(self) -> None:
        """Nothing is buffered."""


class CsvWriter:
    """A header row, then one flattened line per row (see ``csvcodec``)."""

    def __init__(self, sink: BinaryIO, columns: list[Column]) -> None:
        self.sink = sink
        self.columns = columns
        sink.write(csvcodec.format_line(csvcodec.header(columns)).encode("utf-8"))

    def write(self, rows: Rows, first_row: int) -> None:
        if isinstance(rows, TypedPage):
            self.sink.write(rows.codec.csv(rows))
            return
        text = "".join(csvcodec.format_line(csvcodec.encode_row(self.columns, row)) for row in rows)
        self.sink.write(text.encode("utf-8"))

    def close(self) -> None:
        """CSV has no trailer."""

    def discard(self) -> None:
        """Nothing is buffered."""


class ParquetWriter:
    """Buffers Arrow batches and writes one row group whenever ``row_group_rows`` are buffered."""

    def __init__(
        self, sink: BinaryIO, columns: list[Column], *, row_group_rows: int = DEFAULT_ROW_GROUP_ROWS
    ) -> None:
        pa = require_pyarrow()
        self.columns = columns
        self.schema = arrow_schema(columns)
        self.row_group_rows = row_group_rows
        self._table_from_batches = pa.Table.from_batches
        self._writer = pa.parquet.ParquetWriter(sink, self.schema)
        self._batches: list[Any] = []
        self._buffered = 0

    def write(self, rows: Rows, first_row: int) -> None:
        if not rows:
            return
        if isinstance(rows, TypedPage):
            self._batches.append(rows.codec.arrow_batch(rows, self.schema, first_row))
        else:
            self._batches.append(rows_to_batch(self.columns, rows, self.schema))
        self._buffered += len(rows)
        if self._buffered >= self.row_group_rows:
            self._flush()

    def close(self) -> None:
        self._flush()
        self._writer.close()

    def discard(self) -> None:
        """Drop buffered rows and close the Arrow writer now, while its sink is still open."""
        self._batches = []
        self._buffered = 0
        self._writer.close()

    def _flush(self) -> None:
        if self._buffered:
            table = self._table_from_batches(self._batches, schema=self.schema)
            self._writer.write_table(table, row_group_size=self._buffered)
        self._batches = []
        self._buffered = 0


@dataclass(frozen=True)
class FileFormat:
    """A supported format: its name, the file suffixes that select it, its writer."""

    name: str
    suffixes: tuple[str, ...]
    writer: type[JsonlWriter] | type[CsvWriter] | type[ParquetWriter]
    gzip: bool  # whether ``<suffix>.gz`` is allowed (Parquet compresses internally)


FORMATS = {
    "jsonl": FileFormat("jsonl", (".jsonl", ".ndjson"), JsonlWriter, gzip=True),
    "csv": FileFormat("csv", (".csv",), CsvWriter, gzip=True),
    "parquet": FileFormat("parquet", (".parquet", ".pq"), ParquetWriter, gzip=False),
}


@dataclass(frozen=True)
class ResolvedFormat:
    """The format of one target name, whether it is gzipped, and how to split the name."""

    format: FileFormat
    gzip: bool
    stem: str
    suffix: str  # everything after the stem, e.g. ".jsonl.gz"

    def part_name(self, index: int, run: str | None = None) -> str:
        """``<stem>-<run>-00003<suffix>``; without a run ``<stem>-00003<suffix>``."""
        return f"{self.stem}-{run + '-' if run else ''}{index:05d}{self.suffix}"


def resolve_format(filename: str, fmt: str | None) -> ResolvedFormat:
    """Pick the format from ``fmt`` or, when it is None, from the file name's suffix."""
    lower = filename.lower()
    gzip = lower.endswith(GZIP_SUFFIX)
    base = lower.removesuffix(GZIP_SUFFIX) if gzip else lower
    inferred = next(
        (f for f in FORMATS.values() for s in f.suffixes if base.endswith(s) and len(base) > len(s)), None
    )
    if fmt is None and inferred is None:
        raise ErpNetConfigError(
            f"Cannot tell the output format of {filename!r} from its suffix; use one of {_suffix_list()} "
            f"or pass the format ({', '.join(FORMATS)})."
        )
    chosen = inferred if fmt is None else FORMATS.get(fmt.lower())
    if chosen is None:
        raise ErpNetConfigError(f"Unknown output format {fmt!r}; use one of {', '.join(FORMATS)}.")
    if inferred is not None and inferred is not chosen:
        raise ErpNetConfigError(
            f"Output {filename!r} has a {inferred.name} suffix but format {chosen.name!r} was asked for; "
            "make the suffix and the format agree."
        )
    if gzip and not chosen.gzip:
        raise ErpNetConfigError(
            f"{chosen.name} output cannot be gzipped ({filename!r}); it compresses internally, drop '.gz'."
        )
    if inferred is not None:
        suffix = next(s for s in inferred.suffixes if base.endswith(s)) + (GZIP_SUFFIX if gzip else "")
    else:
        suffix = os.path.splitext(filename)[1]
    return ResolvedFormat(
        chosen, gzip, filename[: len(filename) - len(suffix)], filename[len(filename) - len(suffix) :]
    )


def _suffix_list() -> str:
    plain = [s for f in FORMATS.values() for s in f.suffixes]
    zipped = [s + GZIP_SUFFIX for f in FORMATS.values() if f.gzip for s in f.suffixes]
    return ", ".join(plain + zipped)
