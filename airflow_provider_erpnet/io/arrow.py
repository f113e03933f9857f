"""Columns <-> Arrow: the exact types Parquet files and ``read_table`` use.

pyarrow is optional (the ``parquet`` extra) and imported only when a caller needs it. Decimals
go to Arrow as ``Decimal`` objects that ``convert`` already checked against the declared
precision and scale (``fit_decimal``), so none is rounded.
"""

from __future__ import annotations

from datetime import timezone
from types import ModuleType
from typing import Any

from airflow_provider_erpnet.client.errors import ErpNetConfigError

from .convert import Row, decimal_facets, pair_members
from .jsontext import dumps, loads
from .schema import Column

_MAX_DECIMAL128 = 38


def require_pyarrow() -> ModuleType:
    """The ``pyarrow`` module, or a configuration error that says how to install it."""
    try:
        import pyarrow
        import pyarrow.parquet  # the Parquet bindings load on import
    except ImportError:
        raise ErpNetConfigError(
            "Parquet output and read_table need pyarrow, which is not installed: "
            "pip install 'airflow-provider-erpnet[parquet]' (or write format 'jsonl' or 'csv')."
        ) from None
    return pyarrow


def arrow_type(column: Column) -> Any:
    pa = require_pyarrow()
    kind = column.kind
    if kind in ("string", "enum", "reference", "json"):
        return pa.string()
    if kind == "bool":
        return pa.bool_()
    if kind == "int32":
        return pa.int32()
    if kind == "int64":
        return pa.int64()
    if kind == "date":
        return pa.date32()
    if kind == "timestamp":
        return pa.timestamp("us", tz="UTC")
    if kind == "multilang":
        return pa.map_(pa.string(), pa.string())
    precision, scale = decimal_facets(column)
    number = (pa.decimal128 if precision <= _MAX_DECIMAL128 else pa.decimal256)(precision, scale)
    if kind == "decimal":
        return number
    value, label = pair_members(kind)
    return pa.struct([pa.field(value, number), pa.field(label, pa.string())])


def arrow_schema(columns: list[Column]) -> Any:
    """The Arrow schema; each field's metadata keeps the source type, kind and decimal facets."""
    pa = require_pyarrow()
    return pa.schema(
        [pa.field(c.name, arrow_type(c), nullable=True, metadata=_field_metadata(c)) for c in columns]
    )


def _field_metadata(column: Column) -> dict[str, str]:
    metadata = {"erpnet.kind": column.kind, "erpnet.nullable": str(column.nullable).lower()}
    if column.source_type:
        metadata["erpnet.source_type"] = column.source_type
    if column.kind in ("decimal", "amount", "quantity"):
        precision, scale = decimal_facets(column)
        metadata["erpnet.precision"] = str(precision)
        metadata["erpnet.scale"] = str(scale)
    return metadata


def rows_to_batch(columns: list[Column], rows: list[Row], schema: Any) -> Any:
    """A RecordBatch of typed rows (see ``convert``: decimals already fit their columns)."""
    pa = require_pyarrow()
    arrays = []
    for column, field in zip(columns, schema, strict=True):
        values = [row[column.name] for row in rows]
        arrays.append(pa.array(_to_arrow_values(column, values), type=field.type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _to_arrow_values(column: Column, values: list[Any]) -> list[Any]:
    if column.kind == "json":
        return [None if v is None else dumps(v).decode("utf-8") for v in values]
    return values


def batch_to_rows(columns: list[Column], batch: Any) -> list[Row]:
    """Typed rows from an Arrow batch written by ``rows_to_batch``."""
    data = {
        column.name: _from_arrow_values(column, batch.column(column.name).to_pylist()) for column in columns
    }
    return [dict(zip(data, values, strict=True)) for values in zip(*data.values(), strict=True)]


def _from_arrow_values(column: Column, values: list[Any]) -> list[Any]:
    kind = column.kind
    if kind == "json":
        return [None if v is None else loads(v) for v in values]
    if kind == "multilang":
        return [None if v is None else dict(v) for v in values]
    if kind == "timestamp":
        return [None if v is None else v.astimezone(timezone.utc) for v in values]
    return values
