"""Columns <-> Arrow: the exact types Parquet files and ``read_table`` use.

pyarrow is optional (the ``parquet`` extra) and imported only when a caller needs it. Decimals
go to Arrow as ``Decimal`` objects, checked against the declared precision and scale first so
a value that does not fit fails with the column's name instead of being rounded.
"""

from __future__ import annotations

from datetime import timezone
from decimal import Context, Decimal
from types import ModuleType
from typing import Any

from airflow_provider_erpnet.client.errors import ErpNetConfigError, ErpNetError

from .convert import Row, pair_members
from .jsontext import dumps, loads
from .schema import DEFAULT_PRECISION, DEFAULT_SCALE, Column

_MAX_DECIMAL128 = 38
_WIDE = Context(prec=200)


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


def decimal_facets(column: Column) -> tuple[int, int]:
    if column.precision is None or column.scale is None:
        return DEFAULT_PRECISION, DEFAULT_SCALE
    return column.precision, column.scale


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


def rows_to_batch(columns: list[Column], rows: list[Row], schema: Any, first_row: int = 1) -> Any:
    """A RecordBatch of typed rows (see ``convert``); ``first_row`` numbers rows in errors."""
    pa = require_pyarrow()
    arrays = []
    for column, field in zip(columns, schema, strict=True):
        values = [row[column.name] for row in rows]
        arrays.append(pa.array(_to_arrow_values(column, values, first_row), type=field.type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _to_arrow_values(column: Column, values: list[Any], first_row: int) -> list[Any]:
    kind = column.kind
    if kind == "json":
        return [None if v is None else dumps(v).decode("utf-8") for v in values]
    if kind not in ("decimal", "amount", "quantity"):
        return values
    precision, scale = decimal_facets(column)
    fitted = []
    for number, value in enumerate(values, first_row):
        if value is None:
            fitted.append(None)
            continue
        try:
            if kind == "decimal":
                fitted.append(fit_decimal(value, precision, scale))
            else:
                member = pair_members(kind)[0]
                amount = value[member]
                fitted.append(
                    {**value, member: None if amount is None else fit_decimal(amount, precision, scale)}
                )
        except ValueError as error:
            raise ErpNetError(
                f"Row {number}, column {column.name!r}: {error}. $metadata declares {column.source_type} "
                f"as decimal({precision},{scale}); JSON Lines and CSV output keep any value exactly."
            ) from None
    return fitted


def fit_decimal(value: Decimal, precision: int, scale: int) -> Decimal:
    """``value`` at exactly ``scale`` fraction digits; ``ValueError`` if a digit would be lost."""
    _, digits, exponent = value.as_tuple()
    if not any(digits):
        return Decimal(0).scaleb(-scale)
    fraction = max(0, -exponent)
    integer = max(0, len(digits) + exponent)
    dropped = digits[-(fraction - scale) :] if fraction > scale else ()
    if any(dropped) or integer > precision - scale:
        raise ValueError(
            f"a value with {integer} integer and {fraction} fraction digits does not fit decimal"
            f"({precision},{scale}), which holds {precision - scale} integer and {scale} fraction digits"
        )
    return value.quantize(Decimal(1).scaleb(-scale), context=_WIDE)


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
