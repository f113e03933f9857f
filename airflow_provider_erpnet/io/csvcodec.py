"""CSV flattening: typed rows <-> RFC 4180 lines that keep null apart from the empty string.

The standard ``csv`` module cannot tell an empty quoted field from an empty one before Python
3.12, so fields are written and split here: a null is an empty field, an empty string is ``""``.
Amounts and quantities take two columns (``<Col>.Value``, ``<Col>.Currency``/``<Col>.Unit``);
multilanguage and json values are JSON text; decimals are plain digits, never exponents.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TextIO

from airflow_provider_erpnet.client.errors import ErpNetError

from .convert import Row, format_timestamp, pair_members
from .jsontext import dumps, loads
from .schema import Column

LINE_END = "\n"
_NEEDS_QUOTES = re.compile(r'[",\r\n]|^\s|\s$')
_QUOTE_CHARS = ',"\r\n'
_FIELD = re.compile(r'"((?:[^"]|"")*)"|([^,"]*)')


def header(columns: list[Column]) -> list[str]:
    """Flattened column names, in file order."""
    names: list[str] = []
    for column in columns:
        if column.kind in ("amount", "quantity"):
            names.extend(f"{column.name}.{member}" for member in pair_members(column.kind))
        else:
            names.append(column.name)
    return names


def format_line(fields: Sequence[str | None]) -> str:
    return ",".join(quote(field) for field in fields) + LINE_END


def encode_row(columns: list[Column], row: Row) -> list[str | None]:
    """The flattened text fields of one typed row; ``None`` for nulls."""
    fields: list[str | None] = []
    for column in columns:
        value = row[column.name]
        if column.kind in ("amount", "quantity"):
            members = pair_members(column.kind)
            fields.extend(_text(value[m]) if value is not None else None for m in members)
        elif value is None:
            fields.append(None)
        elif column.kind in ("multilang", "json"):
            fields.append(dumps(value).decode("utf-8"))
        else:
            fields.append(_text(value))
    return fields


def decode_row(columns: list[Column], fields: list[str | None]) -> dict[str, Any]:
    """Rebuild the nested, JSON-like record that ``encode_row`` flattened (before typing).

    Raises ``ValueError`` when a field does not parse as its column's kind.
    """
    record: dict[str, Any] = {}
    position = 0
    for column in columns:
        if column.kind in ("amount", "quantity"):
            members = pair_members(column.kind)
            parts = fields[position : position + 2]
            position += 2
            record[column.name] = None if parts == [None, None] else dict(zip(members, parts, strict=True))
            continue
        text = fields[position]
        position += 1
        record[column.name] = None if text is None else _parse(column, text)
    return record


def read_lines(stream: TextIO, path: str) -> Iterator[list[str | None]]:
    """Split a CSV stream into records; quoted fields may hold commas, quotes and newlines."""
    pending = ""
    for line in stream:
        pending += line
        if pending.count('"') % 2:
            continue
        yield split_line(pending.removesuffix("\n").removesuffix("\r"), path)
        pending = ""
    if pending:
        raise ErpNetError(f"{path} ends inside a quoted CSV field: the file is truncated.")


def split_line(line: str, path: str) -> list[str | None]:
    fields: list[str | None] = []
    position = 0
    while True:
        match = _FIELD.match(line, position)
        quoted, plain = match.group(1), match.group(2)
        fields.append(quoted.replace('""', '"') if quoted is not None else (plain or None))
        position = match.end()
        if position == len(line):
            return fields
        if line[position] != ",":
            raise ErpNetError(f"{path}: malformed CSV near character {position + 1} of a record.")
        position += 1


def needs_quotes_any(text: str) -> bool:
    """Whether ``text`` holds a character that forces quotes: , " CR or LF (edge spaces aside)."""
    return any(char in text for char in _QUOTE_CHARS)


def quoted_fields(texts: Iterable[str]) -> dict[str, str]:
    """``{text: its quoted field}`` for the non-empty texts that CSV writes quoted (a C-level filter)."""
    return {text: quote(text) for text in filter(_NEEDS_QUOTES.search, texts)}


def quote(field: str | None) -> str:
    """One field as written: null empty, quoted when empty or when it holds , " CR LF or edge spaces."""
    if field is None:
        return ""
    if field == "" or _NEEDS_QUOTES.search(field):
        return '"' + field.replace('"', '""') + '"'
    return field


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return format_timestamp(value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _parse(column: Column, text: str) -> Any:
    kind = column.kind
    if kind == "bool":
        if text not in ("true", "false"):
            raise ValueError(f"{text[:10]!r} is not true or false")
        return text == "true"
    if kind in ("int32", "int64"):
        return int(text)
    if kind in ("multilang", "json"):
        return loads(text)
    return text
