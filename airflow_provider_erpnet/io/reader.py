"""Read an extraction's output from its manifest, whatever the format.

``iter_records`` streams typed records (the same values from JSON Lines, CSV and Parquet, see
``convert``); ``read_table`` builds one Arrow table. Paths in the manifest are opened as local
files, or through universal_pathlib when they are URLs; pass ``path_factory`` (for example
Airflow's ``ObjectStoragePath``) when opening needs credentials from a connection.

Both also take several manifests, e.g. the runs before and after a schema change
(``on_schema_change="evolve"``): their files are read in the order given, with the union of their
columns (first appearance order; a column whose type changed takes the latest manifest's type),
a column a file lacks being null.
"""

from __future__ import annotations

import gzip
import io
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, BinaryIO

from airflow_provider_erpnet.client.errors import ErpNetConfigError, ErpNetError

from . import csvcodec
from .arrow import arrow_schema, batch_to_rows, require_pyarrow, rows_to_batch
from .convert import RecordConverter, Row
from .jsontext import loads
from .manifest import Manifest, as_manifest
from .output import local_path
from .schema import Column
from .writers import GZIP_SUFFIX

BATCH_ROWS = 1_000
PathFactory = Callable[[str], Any]


def iter_records(manifest: Manifests, *, path_factory: PathFactory | None = None) -> Iterator[Row]:
    """Every record of every file, in manifest order; memory stays at one batch."""
    manifests = _as_manifests(manifest)
    if len(manifests) == 1:
        yield from _records(manifests[0], path_factory)
        return
    names = [column.name for column in union_columns(manifests)]
    for one in manifests:
        for record in _records(one, path_factory):
            yield {name: record.get(name) for name in names}


def read_table(manifest: Manifests, *, path_factory: PathFactory | None = None) -> Any:
    """All files as one ``pyarrow.Table`` with the columns' exact Arrow types."""
    manifests = _as_manifests(manifest)
    if len(manifests) == 1:
        return _table(manifests[0], path_factory)
    pa = require_pyarrow()
    schema = arrow_schema(union_columns(manifests))
    return pa.concat_tables([_conform(_table(one, path_factory), schema) for one in manifests])


def union_columns(manifests: Sequence[Manifest]) -> list[Column]:
    """Every column of the manifests, in order of first appearance; the latest definition wins."""
    union: dict[str, Column] = {}
    for manifest in manifests:
        for column in manifest.columns:
            union[column.name] = column
    order = dict.fromkeys(column.name for manifest in manifests for column in manifest.columns)
    return [union[name] for name in order]


Manifests = Manifest | dict[str, Any] | Sequence[Manifest | dict[str, Any]]


def _as_manifests(value: Manifests) -> list[Manifest]:
    if isinstance(value, Manifest | dict):
        return [as_manifest(value)]
    manifests = [as_manifest(item) for item in value]
    if not manifests:
        raise ErpNetConfigError(
            "Expected a Manifest, its dict form or a list of them, got list (empty); pass the extraction "
            "task's XCom, or the XComs of several runs to read together."
        )
    return manifests


def _conform(table: Any, schema: Any) -> Any:
    """``table`` with ``schema``'s columns: missing ones null, retyped ones cast to the new type."""
    pa = require_pyarrow()
    arrays = []
    for field in schema:
        if field.name not in table.column_names:
            arrays.append(pa.nulls(table.num_rows, field.type))
            continue
        column = table.column(field.name)
        try:
            arrays.append(column if column.type == field.type else column.cast(field.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
            raise ErpNetError(
                f"Column {field.name!r} changed type from {column.type} to {field.type} and the older "
                f"values do not convert ({error}); read the manifests separately."
            ) from None
    return pa.Table.from_arrays(arrays, schema=schema)


def _records(manifest: Manifest, path_factory: PathFactory | None) -> Iterator[Row]:
    read = _READERS.get(manifest.format)
    if read is None:
        raise ErpNetConfigError(f"Manifest format {manifest.format!r} is not one of {', '.join(_READERS)}.")
    for info in manifest.files:
        with _open(info.path, path_factory) as stream:
            yield from read(stream, info.path, manifest.columns)


def _table(manifest: Manifest, path_factory: PathFactory | None) -> Any:
    pa = require_pyarrow()
    schema = arrow_schema(manifest.columns)
    if manifest.format == "parquet":
        tables = []
        for info in manifest.files:
            with _open(info.path, path_factory) as stream:
                tables.append(pa.parquet.read_table(stream, schema=schema))
        return pa.concat_tables(tables) if tables else schema.empty_table()
    batches = []
    rows = _records(manifest, path_factory)
    while chunk := list(itertools.islice(rows, BATCH_ROWS)):
        batches.append(rows_to_batch(manifest.columns, chunk, schema))
    return pa.Table.from_batches(batches, schema=schema)


@contextmanager
def _open(path: str, path_factory: PathFactory | None) -> Iterator[BinaryIO]:
    if path_factory is not None:
        location = path_factory(path)
    elif (local := local_path(path)) is not None:
        location = local
    else:
        from upath import UPath

        location = UPath(path)
    try:
        stream = location.open("rb")
    except FileNotFoundError:
        raise ErpNetError(
            f"Manifest file {path!r} does not exist; was it moved or deleted after the extraction?"
        ) from None
    with stream:
        if path.lower().endswith(GZIP_SUFFIX):
            with gzip.GzipFile(fileobj=stream, mode="rb") as unzipped:
                yield unzipped  # type: ignore[misc]
        else:
            yield stream


def _typed(converter: RecordConverter, records: Iterable[dict[str, Any]]) -> Iterator[Row]:
    """Type records in bounded batches, numbering rows from 1 across the file."""
    records = iter(records)
    first_row = 1
    while chunk := list(itertools.islice(records, BATCH_ROWS)):
        yield from converter.convert(chunk, first_row)
        first_row += len(chunk)


def _read_jsonl(stream: BinaryIO, path: str, columns: list[Column]) -> Iterator[Row]:
    def records() -> Iterator[dict[str, Any]]:
        for number, line in enumerate(stream, 1):
            if not line.strip():
                continue
            try:
                yield loads(line)
            except ValueError as error:
                raise ErpNetError(f"{path}: line {number} is not valid JSON ({error}).") from None

    yield from _typed(RecordConverter(columns), records())


def _read_csv(stream: BinaryIO, path: str, columns: list[Column]) -> Iterator[Row]:
    text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
    lines = csvcodec.read_lines(text, path)
    expected = csvcodec.header(columns)
    found = next(lines, None)
    if found != expected:
        raise ErpNetError(
            f"{path}: the CSV header does not match the manifest's {len(expected)} columns; "
            "the file was not written for this manifest."
        )

    def records() -> Iterator[dict[str, Any]]:
        for number, fields in enumerate(lines, 2):
            if len(fields) != len(expected):
                raise ErpNetError(
                    f"{path}: record {number} has {len(fields)} fields, expected {len(expected)}."
                )
            try:
                yield csvcodec.decode_row(columns, fields)
            except ValueError as error:
                raise ErpNetError(f"{path}: record {number}: {error}.") from None

    yield from _typed(RecordConverter(columns), records())


def _read_parquet(stream: BinaryIO, path: str, columns: list[Column]) -> Iterator[Row]:
    pa = require_pyarrow()
    parquet = pa.parquet.ParquetFile(stream)
    for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=[c.name for c in columns]):
        yield from batch_to_rows(columns, batch)


_READERS = {"jsonl": _read_jsonl, "csv": _read_csv, "parquet": _read_parquet}
