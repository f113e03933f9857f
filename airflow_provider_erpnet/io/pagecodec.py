"""Whole pages of the Domain API's JSON -> what each writer needs, without a Python loop per value.

``PageCodec`` is built once per extraction from the output columns (that is, from ``$metadata``).
It generates one msgspec struct type per record shape, so a page body is decoded in C straight
into typed records: decimals as ``Decimal`` from their own digits (never float), integers range
checked, references, amounts and multilanguage texts as small structs and dicts, unknown keys
(``@odata.etag``, columns not selected) skipped. Writers then turn the page into bytes in a few
calls per *column*: msgspec encodes JSON Lines, ``map`` over C functions builds CSV fields,
Arrow converts whole columns for Parquet.

The codec is the fast form of ``convert.RecordConverter``, not a second definition of the output:
every value it cannot prove canonical with a column-wide check sends the page to the exact path
(``RecordConverter`` on the same records), which either converts it or raises the precise error
(row, column, reason). Checks run on joined column text or C iterators: dates and timestamps
must already be in the output form (``2020-05-08``, ``2020-05-08T07:11:12[.123456]Z``; anything
else, such as offsets or seven fraction digits, is converted per value), decimals plain digits
within their column's precision and scale (``convert.fit_decimal`` decides the rest),
amounts with both members null become null, multilanguage annotation keys are dropped.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from itertools import chain, repeat
from operator import and_, attrgetter, is_
from typing import Annotated, Any

import msgspec
from msgspec.structs import astuple

from airflow_provider_erpnet.client.jsonutil import loads, strip_bom

from . import csvcodec
from .arrow import require_pyarrow, rows_to_batch
from .convert import (
    RecordConverter,
    Row,
    decimal_facets,
    format_timestamp,
    pair_members,
    to_date,
    to_multilang,
    to_timestamp,
)
from .jsontext import dumps
from .schema import Column

_INT_BOUNDS = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
_DATES = msgspec.json.Decoder(list[date])
_DATETIMES = msgspec.json.Decoder(list[datetime])
_ENCODER = msgspec.json.Encoder(decimal_format="number")
_MIDNIGHT_UTC = "T00:00:00Z"
_BOOL_TEXT = {True: "true", False: "false", None: ""}
_NULL_TEXT = {"None": ""}
_JSON_NULL = {"null": None}
_NO_DECIMAL = Decimal("NaN")  # stands in for null while formatting; real values were checked finite


class NeedsExactPath(Exception):
    """A value the column-wide checks cannot vouch for: convert this page with ``RecordConverter``."""


class TypedPage(list):  # type: ignore[type-arg]
    """The records of one page as the codec's structs (a list, so paging code treats it as records)."""

    def __init__(
        self,
        records: Iterable[Any],
        codec: PageCodec,
        *,
        prepared: bool = False,
        columns: list[list[Any]] | None = None,
        unsynced: Iterable[int] = (),
    ) -> None:
        super().__init__(records)
        self.codec = codec
        self.prepared = prepared  # checked and normalised by ``PageCodec.prepare``
        self._columns = columns
        self._unsynced = set(unsynced)  # columns replaced since the records were last updated

    def columns(self) -> list[list[Any]]:
        """One list of values per column (None for null), made once: one pass over the records.

        The pass makes a tuple per record, which the cyclic garbage collector tracks: a page's
        worth of them set it off about once a page, and each run visited every record of the page
        (in a worker with Airflow imported, py-spy --native: a quarter of the extraction's time).
        The tuples are gone when this returns, so the collector is paused while they exist.
        """
        if self._columns is None:
            if self:
                with _collector_paused():
                    self._columns = list(map(list, zip(*map(astuple, self), strict=True)))
            else:
                self._columns = [[] for _ in self.codec.columns]
        return self._columns

    def column(self, name: str) -> list[Any]:
        """Every record's value of one column, None for null."""
        return self.columns()[self.codec.position(name)]

    def set_column(self, index: int, values: list[Any]) -> None:
        """Replace a column's values; the records follow in ``synced`` (only JSON Lines reads them)."""
        self.columns()[index] = values
        self._unsynced.add(index)

    def synced(self) -> TypedPage:
        """This page, its records updated with every column replaced since the last call."""
        for index in sorted(self._unsynced):
            list(map(setattr, self, repeat(self.codec.attributes[index]), self.columns()[index]))
        self._unsynced.clear()
        return self

    def take(self, start: int, stop: int) -> TypedPage:
        columns = None if self._columns is None else [values[start:stop] for values in self._columns]
        return TypedPage(
            self[start:stop], self.codec, prepared=self.prepared, columns=columns, unsynced=self._unsynced
        )


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off for a moment (left alone if someone else turned it off)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class PageCodec:
    """Decodes page bodies into ``TypedPage``s for one list of columns and encodes them per format."""

    def __init__(self, columns: Sequence[Column]) -> None:
        self.columns = list(columns)
        self.converter = RecordConverter(self.columns)
        self._reference = msgspec.defstruct(
            "Reference", [("id", str, msgspec.field(name="@odata.id"))], frozen=True, gc=False
        )
        self._pairs = {
            kind: msgspec.defstruct(
                kind.capitalize(),
                [(member, str | None if i else Decimal | None, None) for i, member in enumerate(members)],
                frozen=True,
                gc=False,
            )
            for kind, members in (("amount", pair_members("amount")), ("quantity", pair_members("quantity")))
        }
        # Record fields are positional attributes f0, f1, ... renamed to the column names, so any
        # column name (even one that is not a Python identifier) works.
        self.attributes = [f"f{index}" for index in range(len(self.columns))]
        self._positions = {column.name: index for index, column in enumerate(self.columns)}
        record = msgspec.defstruct(
            "Record",
            [
                (attribute, self._field_type(c) | None, msgspec.field(name=c.name, default=None))
                for c, attribute in zip(self.columns, self.attributes, strict=True)
            ],
            gc=False,
        )
        envelope = msgspec.defstruct(
            "PageBody",
            [
                ("value", list[record]),
                ("next_link", str | None, msgspec.field(name="@odata.nextLink", default=None)),
            ],
            gc=False,
        )
        self._decoder = msgspec.json.Decoder(envelope, float_hook=Decimal)
        checks = {
            "date": _check_dates,
            "timestamp": _check_timestamps,
            "decimal": _check_decimals,
            "amount": _check_pairs,
            "quantity": _check_pairs,
            "multilang": _check_multilang,
            "reference": self._reference_ids,
        }
        self._fixes = [(index, c, checks[c.kind]) for index, c in enumerate(self.columns) if c.kind in checks]

    def position(self, name: str) -> int:
        """The index of a column among the codec's columns (and its records' fields)."""
        return self._positions[name]

    def decode(self, body: bytes) -> Any:
        """A body whose ``value`` is a ``TypedPage``; on a type mismatch, the generic decoding.

        The generic form (dicts, ``Decimal`` for non-integers) goes through ``RecordConverter``,
        which gives the exact error for a value of the wrong type, or converts what the strict
        structs refused (an int for a decimal member written as text, say).
        """
        data = strip_bom(body)
        try:
            page = self._decoder.decode(data)
        except msgspec.ValidationError:
            return loads(data)
        page.value = TypedPage(page.value, self)
        return page

    def prepare(self, page: TypedPage) -> None:
        """Check and normalise a page in place; raises ``NeedsExactPath`` when it cannot."""
        if page.prepared:
            return
        columns = page.columns()
        for index, column, check in self._fixes:
            fixed = check(column, columns[index])
            if fixed is not None:
                page.set_column(index, fixed)
        page.prepared = True

    def as_records(self, page: Sequence[Any]) -> list[dict[str, Any]]:
        """The page as plain dicts keyed by column name, the input ``RecordConverter`` takes."""
        return msgspec.to_builtins(list(page), builtin_types=(Decimal,))

    def exact_rows(self, page: Sequence[Any], first_row: int) -> list[Row]:
        """The exact path for one page: typed rows, or the precise error."""
        return self.converter.convert(self.as_records(page), first_row)

    def jsonl(self, page: TypedPage) -> bytes:
        """JSON Lines of a prepared page: the bytes ``dumps_lines`` writes for its typed rows."""
        return _ENCODER.encode_lines(page.synced())

    def csv(self, page: TypedPage) -> bytes:
        """CSV lines of a prepared page: the bytes ``csvcodec`` writes for its typed rows."""
        if not page:
            return b""
        fields: list[list[str]] = []
        for column, values in zip(self.columns, page.columns(), strict=True):
            fields.extend(self._csv_fields(column, values))
        # Fields and separators slotted into one list, then one join: no Python call per row.
        width, rows = len(fields), len(page)
        parts = [","] * (2 * width * rows)
        parts[2 * width - 1 :: 2 * width] = ["\n"] * rows
        for index, texts in enumerate(fields):
            parts[2 * index :: 2 * width] = texts
        return "".join(parts).encode("utf-8")

    def arrow_batch(self, page: TypedPage, schema: Any, first_row: int) -> Any:
        """An Arrow RecordBatch of a prepared page; a value Arrow refuses takes the exact path."""
        pa = require_pyarrow()
        try:
            arrays = [
                self._arrow_array(pa, column, field.type, values)
                for column, field, values in zip(self.columns, schema, page.columns(), strict=True)
            ]
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            return rows_to_batch(self.columns, self.exact_rows(page, first_row), schema)
        return pa.RecordBatch.from_arrays(arrays, schema=schema)

    def _csv_fields(self, column: Column, values: list[Any]) -> list[list[str]]:
        kind = column.kind
        if kind in ("date", "timestamp"):  # prepared: in the output form, which needs no quotes
            return [["" if value is None else value for value in values]]
        if kind in ("string", "enum"):
            return [_csv_texts(values)]
        if kind == "bool":
            return [list(map(_BOOL_TEXT.get, values))]
        if kind in _INT_BOUNDS:
            return [_int_texts(values)]
        if kind == "decimal":
            return [_decimal_texts(values)]
        if kind == "reference":
            return [_csv_texts(values)]
        if kind in self._pairs:
            numbers, labels = _pair_columns(kind, values)
            return [_decimal_texts(numbers), _csv_texts(labels)]
        # multilang and json: compact JSON text, quoted as CSV requires (per value: rare columns)
        return [[csvcodec.quote(None if value is None else dumps(value).decode("utf-8")) for value in values]]

    @staticmethod
    def _reference_ids(column: Column, values: list[Any]) -> list[str | None]:
        """References -> their ``@odata.id`` text, null kept (prepare writes them back)."""
        return [None if value is None else value.id for value in values]

    def _arrow_array(self, pa: Any, column: Column, arrow_type: Any, values: list[Any]) -> Any:
        kind = column.kind
        if kind == "date":
            return pa.array(values, pa.string()).cast(arrow_type)
        if kind == "timestamp":
            return pa.array(values, pa.string()).cast(arrow_type)
        if kind in self._pairs:
            numbers, labels = _pair_columns(kind, values)
            children = [
                pa.array(numbers, arrow_type.field(0).type),
                pa.array(labels, arrow_type.field(1).type),
            ]
            mask = pa.array(list(map(is_, values, repeat(None))), pa.bool_())
            return pa.StructArray.from_arrays(children, fields=list(arrow_type), mask=mask)
        if kind == "json":
            texts = list(map(bytes.decode, map(_ENCODER.encode, values)))
            return pa.array(list(map(_JSON_NULL.get, texts, texts)), arrow_type)
        return pa.array(values, arrow_type)

    def _field_type(self, column: Column) -> Any:
        kind = column.kind
        if kind in ("string", "enum", "date", "timestamp"):
            return str
        if kind == "bool":
            return bool
        if kind in _INT_BOUNDS:
            low, high = _INT_BOUNDS[kind]
            return Annotated[int, msgspec.Meta(ge=low, le=high)]
        if kind == "decimal":
            return Decimal
        if kind in self._pairs:
            return self._pairs[kind]
        if kind == "multilang":
            return dict[str, str | None]
        if kind == "reference":
            return self._reference
        return Any


def _present(values: list[Any]) -> list[Any]:
    return [value for value in values if value is not None]


def _per_value(values: list[Any], convert: Callable[[Any], Any]) -> list[Any]:
    """The slow fix for a column the checks refused; a ValueError sends the page to the exact path."""
    try:
        return [None if value is None else convert(value) for value in values]
    except (ValueError, TypeError) as error:
        raise NeedsExactPath from error


def _round_trips(texts: list[str], decoder: msgspec.json.Decoder) -> bool:
    """Whether every text decodes (valid calendar values) and is already the form msgspec writes back.

    msgspec writes dates as ``2020-05-08`` and UTC date-times as ``2020-05-08T07:11:12[.123456]Z``
    (six digits when there is a fraction), the output form: three C calls for a whole column.
    """
    encoded = _ENCODER.encode(texts)
    try:
        return bool(_ENCODER.encode(decoder.decode(encoded)) == encoded)
    except msgspec.ValidationError:
        return False


def _check_dates(column: Column, values: list[Any]) -> list[Any] | None:
    present = _present(values)
    if _round_trips(present, _DATES):
        return None
    if {text[10:] for text in present} == {_MIDNIGHT_UTC}:  # ERP.net's form, 2020-05-08T00:00:00Z
        dates = [None if text is None else text[:10] for text in values]
        if _round_trips(_present(dates), _DATES):
            return dates
    return _per_value(values, lambda text: to_date(text).isoformat())


def _check_timestamps(column: Column, values: list[Any]) -> list[Any] | None:
    present = _present(values)
    # msgspec also writes back offsets (+03:00) and naive values as they were: each text must end in Z.
    if _round_trips(present, _DATETIMES) and _ENCODER.encode(present).count(b'Z"') == len(present):
        return None
    return _per_value(values, lambda text: format_timestamp(to_timestamp(text)))


def _check_decimals(column: Column, values: list[Any]) -> None:
    present = _present(values)
    if present and not _fitting_decimals(*decimal_facets(column)).fullmatch(
        "\n".join(map(str, present)) + "\n"
    ):
        raise NeedsExactPath
    return None


@functools.cache
def _fitting_decimals(precision: int, scale: int) -> re.Pattern[str]:
    """``str`` forms of decimals that fit ``decimal(precision, scale)`` as they are: plain digits,
    at most P-S before the point and S after it. Anything else (an exponent, zeros beyond the
    scale, too many digits, NaN) takes the exact path, where ``fit_decimal`` normalises or refuses."""
    integer = precision - scale
    whole = rf"(?:0|[1-9]\d{{0,{integer - 1}}})" if integer > 0 else "0"
    fraction = rf"(?:\.\d{{1,{scale}}})?" if scale > 0 else ""
    return re.compile(rf"(?:-?{whole}{fraction}\n)*")


def _check_pairs(column: Column, values: list[Any]) -> list[Any] | None:
    number, label = pair_members(column.kind)
    present = _present(values)
    numbers = list(map(attrgetter(number), present))
    _check_decimals(column, numbers)
    # ``is`` tests only: comparing a Decimal with None goes through Python-level ABC checks.
    no_number = map(is_, numbers, repeat(None))
    if any(map(and_, no_number, map(is_, map(attrgetter(label), present), repeat(None)))):
        return [
            None if v is None or (getattr(v, number) is None and getattr(v, label) is None) else v
            for v in values
        ]
    return None


def _check_multilang(column: Column, values: list[Any]) -> list[Any] | None:
    keys = "\n".join(chain.from_iterable(_present(values)))
    if ("\n" + keys).find("\n@") >= 0:
        return _per_value(values, to_multilang)
    return None


def _pair_columns(kind: str, values: list[Any]) -> tuple[list[Any], list[Any]]:
    """An amount or quantity column as its number and label columns (a null pair: both null)."""
    number, label = map(attrgetter, pair_members(kind))
    return [None if v is None else number(v) for v in values], [
        None if v is None else label(v) for v in values
    ]


def _int_texts(values: list[int | None]) -> list[str]:
    """Digits; null -> empty field. Counts and days repeat a lot: each distinct value is written once."""
    distinct = set(values)
    if len(distinct) * 2 > len(values):
        return _blank_nulls(list(map(str, values)))
    texts = {value: "" if value is None else str(value) for value in distinct}
    return list(map(texts.__getitem__, values))


def _blank_nulls(texts: list[str]) -> list[str]:
    """``str(None)`` fields -> empty fields (C-level: a dict lookup per value)."""
    return list(map(_NULL_TEXT.get, texts, texts))


def _decimal_texts(values: list[Any]) -> list[str]:
    """Plain digits, never exponents (``format(d, "f")``); null -> empty field."""
    texts = list(map(str, values))  # str() is format "f" unless it writes an exponent ("None" has no E)
    if "E" in "".join(texts):
        return ["" if value is None else format(value, "f") for value in values]
    return _blank_nulls(texts)


def _csv_texts(values: list[str | None]) -> list[str]:
    """Text fields: null empty, ``""`` for the empty string, quotes where CSV needs them."""
    present = list(filter(None, values))  # the non-empty texts, without a Python call per value
    if present and (csvcodec.needs_quotes_any("".join(present)) or present != list(map(str.strip, present))):
        fields = csvcodec.quoted_fields(present)
        fields.update(_EMPTY_FIELDS)
        return list(map(fields.get, values, values))
    if len(present) == len(values):  # no null, no empty string: the texts are the fields
        return values
    return list(map(_EMPTY_FIELDS.get, values, values))


_EMPTY_FIELDS = {None: "", "": '""'}
