"""Source values -> one typed Python value per column kind.

Writers and the reader meet in this form, so a record reads back the same from every format:
``Decimal`` for decimals (never float), ``date``, UTC ``datetime`` (microseconds), ``str`` for
strings, enums and references (the ``@odata.id``), ``{"Value", "Currency"|"Unit"}`` dicts for
amounts and quantities, ``{language: text}`` for multilanguage strings, and decoded JSON for the
rest. The canonical form is also what ``iter_records`` yields.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, timedelta, timezone
from decimal import Context, Decimal, InvalidOperation
from typing import Any

from airflow_provider_erpnet.client.errors import ErpNetError

from .schema import DEFAULT_PRECISION, DEFAULT_SCALE, Column

Row = dict[str, Any]

_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?"
    r"\s*([Zz]|[+-]\d{2}(?::?\d{2})?)?"
)
_MEMBERS = {"amount": ("Value", "Currency"), "quantity": ("Value", "Unit")}
REFERENCE_KEY = "@odata.id"
_WIDE = Context(prec=200)


def parse_date(text: str) -> date:
    """The calendar date as written: ``2020-05-08``, ``2020-05-08Z`` or ``2020-05-08T00:00:00Z``."""
    match = _ISO.fullmatch(text.strip())
    if not match:
        raise ValueError(f"{text[:40]!r} is not an ISO date (YYYY-MM-DD)")
    return date(int(match[1]), int(match[2]), int(match[3]))


def parse_timestamp(text: str) -> datetime:
    """An ISO 8601 date-time as UTC; digits beyond microseconds are dropped, no offset means UTC."""
    match = _ISO.fullmatch(text.strip())
    if not match:
        raise ValueError(f"{text[:40]!r} is not an ISO date-time (YYYY-MM-DDTHH:MM:SSZ)")
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    micros = int((fraction or "0")[:6].ljust(6, "0"))
    moment = datetime(
        int(year),
        int(month),
        int(day),
        int(hour or 0),
        int(minute or 0),
        int(second or 0),
        micros,
        tzinfo=_zone(offset),
    )
    return moment.astimezone(timezone.utc)


def format_timestamp(moment: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS[.ffffff]Z``: the text form CSV and JSON Lines share."""
    return moment.astimezone(timezone.utc).replace(tzinfo=None).isoformat() + "Z"


def _zone(offset: str | None) -> timezone:
    if offset is None or offset in "Zz":
        return timezone.utc
    digits = offset[1:].replace(":", "")
    delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:] or 0))
    return timezone(-delta if offset[0] == "-" else delta)


def to_string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    return value


def to_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {type(value).__name__}")
    return value


def to_decimal(value: Any) -> Decimal:
    if isinstance(value, float):
        raise ValueError(
            "got a float, which cannot carry an exact decimal; decode JSON with Decimal for "
            "non-integers (msgspec float_hook=Decimal or json parse_float=Decimal)"
        )
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, str)):
        raise ValueError(f"expected a decimal number, got {type(value).__name__}")
    try:
        number = value if isinstance(value, Decimal) else Decimal(value)
    except InvalidOperation:
        raise ValueError(f"a text of {len(value)} characters is not a decimal number") from None
    if not number.is_finite():
        raise ValueError("NaN and infinity are not decimal values")
    return number


def decimal_facets(column: Column) -> tuple[int, int]:
    """The column's (precision, scale); (38, 10) when ``$metadata`` gave none."""
    if column.precision is None or column.scale is None:
        return DEFAULT_PRECISION, DEFAULT_SCALE
    return column.precision, column.scale


def fit_decimal(value: Decimal, precision: int, scale: int) -> Decimal:
    """``value`` if it fits ``decimal(precision, scale)``; ``ValueError`` naming its digit counts if not.

    The rule Parquet applies, for every format: at most ``precision - scale`` integer digits and no
    non-zero digit beyond ``scale``. Only the exponent and the number of digits are read, so
    ``1E+400000000`` is refused before anything writes it out as plain digits. Zeros beyond the
    scale are dropped (``1.50000`` -> ``1.500``), and a zero is written at the scale, so no value
    is ever formatted wider than its column.
    """
    _, digits, exponent = value.as_tuple()
    fraction = max(0, -exponent)
    if not any(digits):
        return value if fraction <= scale and exponent <= 0 else Decimal(0).scaleb(-scale)
    integer = max(0, len(digits) + exponent)
    lost = fraction > scale and any(digits[-(fraction - scale) :])
    if lost or integer > precision - scale:
        raise ValueError(
            f"a value with {integer} integer and {fraction} fraction digits does not fit decimal"
            f"({precision},{scale}), which holds {precision - scale} integer and {scale} fraction digits"
        )
    return value.quantize(Decimal(1).scaleb(-scale), context=_WIDE) if fraction > scale else value


def to_date(value: Any) -> date:
    if isinstance(value, datetime):
        raise ValueError("expected a date, got a datetime")
    if isinstance(value, date):
        return value
    return parse_date(to_string(value))


def to_timestamp(value: Any) -> datetime:
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
        return aware.astimezone(timezone.utc)
    return parse_timestamp(to_string(value))


def to_reference(value: Any) -> str:
    if isinstance(value, Mapping):
        if REFERENCE_KEY not in value:
            raise ValueError(
                "got an object without '@odata.id' (an expanded entity?); name the navigation in "
                "expand to write it as a json column"
            )
        value = value[REFERENCE_KEY]
    return to_string(value)


def to_multilang(value: Any) -> dict[str, str | None]:
    if not isinstance(value, Mapping):
        raise ValueError(f"expected an object keyed by language code, got {type(value).__name__}")
    texts = {}
    for language, text in value.items():
        if str(language).startswith("@"):
            continue
        texts[str(language)] = None if text is None else to_string(text)
    return texts


def _to_pair(
    members: tuple[str, str], number_of: Callable[[Any], Decimal] = to_decimal
) -> Callable[[Any], dict[str, Any] | None]:
    value_key, label_key = members

    def convert(value: Any) -> dict[str, Any] | None:
        if not isinstance(value, Mapping):
            raise ValueError(
                f"expected an object with {value_key} and {label_key}, got {type(value).__name__}"
            )
        number, label = value.get(value_key), value.get(label_key)
        if number is None and label is None:
            return None
        return {
            value_key: None if number is None else number_of(number),
            label_key: None if label is None else to_string(label),
        }

    return convert


def _to_int(kind: str) -> Callable[[Any], int]:
    low, high = _INT_RANGES[kind]

    def convert(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected an integer, got {type(value).__name__}")
        if not low <= value <= high:
            raise ValueError(f"{value} is outside the {kind} range")
        return value

    return convert


def _keep(value: Any) -> Any:
    return value


CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "string": to_string,
    "enum": to_string,
    "bool": to_bool,
    "int32": _to_int("int32"),
    "int64": _to_int("int64"),
    "decimal": to_decimal,
    "date": to_date,
    "timestamp": to_timestamp,
    "amount": _to_pair(_MEMBERS["amount"]),
    "quantity": _to_pair(_MEMBERS["quantity"]),
    "multilang": to_multilang,
    "reference": to_reference,
    "json": _keep,
}


def converter_for(column: Column) -> Callable[[Any], Any]:
    """How one column's values are typed; decimals (also amounts' and quantities' Value) are checked
    against the column's precision and scale, so every format refuses what Parquet refuses."""
    if column.kind not in ("decimal", "amount", "quantity"):
        return CONVERTERS[column.kind]
    precision, scale = decimal_facets(column)

    def checked(value: Any) -> Decimal:
        number = to_decimal(value)
        try:
            return fit_decimal(number, precision, scale)
        except ValueError as error:
            raise ValueError(
                f"{error}. $metadata declares {column.source_type or 'it'} as decimal({precision},{scale}) "
                "and the server sent more; leave the column out of select, or have the instance's "
                "metadata or data corrected"
            ) from None

    return checked if column.kind == "decimal" else _to_pair(_MEMBERS[column.kind], checked)


def pair_members(kind: str) -> tuple[str, str]:
    """``("Value", "Currency")`` for amounts, ``("Value", "Unit")`` for quantities."""
    return _MEMBERS[kind]


class RecordConverter:
    """Projects records onto the columns and types every value; keys outside the columns are dropped."""

    def __init__(self, columns: list[Column]) -> None:
        self.columns = columns
        self._plan = [(column, converter_for(column)) for column in columns]

    def convert(self, records: Iterable[Mapping[str, Any]], first_row: int = 1) -> list[Row]:
        """Typed rows; ``first_row`` numbers the first record in error messages."""
        rows = []
        for number, record in enumerate(records, first_row):
            if not isinstance(record, Mapping):
                raise ErpNetError(f"Row {number} is a {type(record).__name__}, not a record (dict).")
            row = {}
            for column, convert in self._plan:
                value = record.get(column.name)
                try:
                    row[column.name] = None if value is None else convert(value)
                except (ValueError, TypeError, OverflowError) as error:
                    raise ErpNetError(
                        f"Row {number}, column {column.name!r} ({column.kind}): {error}."
                    ) from error
            rows.append(row)
        return rows
