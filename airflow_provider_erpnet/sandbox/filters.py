"""`$filter` as ERP.net's Domain API understands it: parse, type against the model, evaluate.

Supported: `eq`, `ge`, `le`, `and`, `in`, parentheses, `contains`/`startswith`/`endswith`, and the
literal kinds ERP.net documents. `or`, `ne`, `lt`, `gt`, `not` (and arithmetic) give the 500 domain
error ERP.net gives for an unsupported operator. Evaluation works on one cached *key column* per
filtered property (comparable Python values in Id order), so a predicate is a few list scans.

``standard=True`` reads literals as a standard OData v4 server does: a date is ``2020-01-01``, and
ERP.net's form with a zone (``2020-01-01Z``) is a syntax error.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from functools import partial
from operator import eq, ge, le
from typing import Any

from . import model as m
from .data import Dataset

Run = Callable[[Sequence[int] | None], list[int]]
"""A compiled filter: positions (None = every row, in Id order) -> the matching ones, same order."""

SUPPORTED_OPERATORS = ("eq", "ge", "le", "and", "in")
UNSUPPORTED_OPERATORS = frozenset(
    {"or", "ne", "lt", "gt", "not", "has", "add", "sub", "mul", "div", "divby", "mod"}
)
FUNCTIONS = ("contains", "startswith", "endswith")
# Standard OData functions ERP.net does not support (a 500 domain error, like the operators).
UNSUPPORTED_FUNCTIONS = frozenset(
    {
        "tolower", "toupper", "trim", "length", "indexof", "substring", "concat", "matchespattern",
        "year", "month", "day", "hour", "minute", "second", "fractionalseconds", "date", "time",
        "totaloffsetminutes", "now", "mindatetime", "maxdatetime", "totalseconds", "round", "floor",
        "ceiling", "cast", "isof", "any", "all",
    }
)  # fmt: skip
# ERP.net's own extensions, which this sandbox does not implement.
VENDOR_FUNCTIONS = frozenset({"equalnull", "lessequalnull", "greaterequalnull"})

_KEYWORDS = frozenset({*SUPPORTED_OPERATORS, *UNSUPPORTED_OPERATORS})
_TICKS_PER_SECOND = 10_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)

_TOKEN = re.compile(
    r"""
     (?P<ws>\s+)
    |(?P<guid>[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12})(?![\w-])
    |(?P<datetime>\d{4}-\d\d-\d\dT[0-9:.]+(?:Z|[+-]\d\d:\d\d)?)(?![\w:.+-])
    |(?P<date>\d{4}-\d\d-\d\dZ?)(?![\w:.-])
    |(?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)[mMdD]?(?![\w.])
    |(?P<string>'(?:[^']|'')*')
    |(?P<typed>[A-Za-z_][\w.]*'(?:[^']|'')*')
    |(?P<name>[A-Za-z_]\w*)
    |(?P<punct>[(),])
    """,
    re.VERBOSE,
)
_GUID = re.compile(r"[0-9A-Fa-f]{8}(?:-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}")
_DATETIME = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d)(?::(\d\d)(?:\.(\d+))?)?(?:(Z)|([+-])(\d\d):(\d\d))?"
)


@dataclass(frozen=True)
class Literal:
    kind: str  # string, guid, datetime, date, number, bool, null, enum
    value: Any  # str; int ticks for datetime; "YYYY-MM-DD" for date; Decimal or int; bool; None
    text: str


@dataclass(frozen=True)
class Name:
    name: str


@dataclass(frozen=True)
class Compare:
    left: Any
    op: str
    right: Any


@dataclass(frozen=True)
class InList:
    left: Any
    items: tuple[Any, ...]


@dataclass(frozen=True)
class Call:
    function: str
    args: tuple[Any, ...]


@dataclass(frozen=True)
class And:
    left: Any
    right: Any


def _unsupported_operator(op: str) -> m.QueryError:
    return m.unsupported(f"The operator '{op}' is not supported in $filter by the ERP.net Domain API.")


def _syntax(text: str, pos: int, detail: str) -> m.QueryError:
    return m.bad_request(f"Syntax error in $filter at position {pos}: {detail}. The filter was: {text}")


def parse_instant(text: str) -> int:
    """A wire date-time (`2026-01-05T13:45:12Z`) as 100-ns ticks since 1970 (exact, no float)."""
    moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    return (moment - _EPOCH) // _MICROSECOND * 10


def _datetime_literal(text: str, pos: int, source: str) -> Literal:
    match = _DATETIME.fullmatch(text)
    if match is None:
        raise _syntax(source, pos, f"'{text}' is not a date-time (use 2023-06-09T09:55:00Z)")
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = match.groups()
    if not zulu and not sign:
        raise _syntax(
            source,
            pos,
            f"date-time '{text}' needs a time zone: add Z or an offset like +02:00 "
            "(in a URL, percent-encode '+' as %2B)",
        )
    if fraction and len(fraction) > 7:
        raise _syntax(source, pos, f"date-time '{text}' has more than 7 fractional digits")
    try:
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0))
    except ValueError as exc:
        raise _syntax(source, pos, f"'{text}' is not a valid date-time ({exc})") from None
    offset = 0 if zulu else (int(off_h) * 3600 + int(off_m) * 60) * (1 if sign == "+" else -1)
    seconds = (moment.replace(tzinfo=timezone.utc) - _EPOCH) // timedelta(seconds=1) - offset
    return Literal("datetime", seconds * _TICKS_PER_SECOND + int((fraction or "").ljust(7, "0")), text)


def _date_literal(text: str, pos: int, source: str, standard: bool) -> Literal:
    if standard and text.endswith("Z"):
        raise _syntax(source, pos, f"'{text}' is not a date literal; a date has no zone, e.g. {text[:-1]}")
    try:
        day = date.fromisoformat(text.rstrip("Z"))
    except ValueError:
        raise _syntax(source, pos, f"'{text}' is not a valid date") from None
    return Literal("date", day.isoformat(), text)


def _number_literal(text: str) -> Literal:
    value = Decimal(text)
    return Literal("number", int(value) if re.fullmatch(r"-?\d+", text) else value, text)


def _typed_literal(text: str, pos: int, source: str) -> Literal:
    prefix, _, quoted = text.partition("'")
    inner = quoted[:-1].replace("''", "'")
    if prefix in {t.full_name for t in m.ENUM_TYPES} or prefix in {t.name for t in m.ENUM_TYPES}:
        return Literal("enum", inner, text)
    if prefix.lower() in ("datetimeoffset", "datetime"):
        return _datetime_literal(inner, pos, source)
    if prefix.lower() == "guid":
        return Literal("guid", inner.lower(), text)
    raise _syntax(source, pos, f"unknown literal type prefix '{prefix}'")


def tokenize(text: str, *, standard: bool = False) -> list[tuple[str, Any, int]]:
    """(kind, value, position) triples; literals already converted, names kept as written."""
    tokens: list[tuple[str, Any, int]] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            detail = (
                "unterminated string literal" if text[pos] == "'" else f"unexpected character {text[pos]!r}"
            )
            raise _syntax(text, pos, detail)
        kind, raw = match.lastgroup, match.group(match.lastgroup or 0)
        if kind == "number":
            raw = match.group("number")
        if kind == "guid":
            tokens.append(("literal", Literal("guid", raw.lower(), raw), pos))
        elif kind == "datetime":
            tokens.append(("literal", _datetime_literal(raw, pos, text), pos))
        elif kind == "date":
            tokens.append(("literal", _date_literal(raw, pos, text, standard), pos))
        elif kind == "number":
            tokens.append(("literal", _number_literal(raw), pos))
        elif kind == "string":
            tokens.append(("literal", Literal("string", raw[1:-1].replace("''", "'"), raw), pos))
        elif kind == "typed" and raw.partition("'")[0] in _KEYWORDS:  # "eq'x'": no space needed
            prefix, _, quoted = raw.partition("'")
            tokens.append(("name", prefix, pos))
            tokens.append(("literal", Literal("string", quoted[:-1].replace("''", "'"), "'" + quoted), pos))
        elif kind == "typed":
            tokens.append(("literal", _typed_literal(raw, pos, text), pos))
        elif kind == "name":
            tokens.append(("name", raw, pos))
        elif kind == "punct":
            tokens.append((raw, raw, pos))
        pos = match.end()
    tokens.append(("end", None, len(text)))
    return tokens


class _Parser:
    """Recursive descent: and-expression of comparisons, `in` lists, calls and parentheses."""

    def __init__(self, text: str, standard: bool = False) -> None:
        self.text = text
        self.tokens = tokenize(text, standard=standard)
        self.index = 0

    def parse(self) -> Any:
        if self.tokens[0][0] == "end":
            raise _syntax(self.text, 0, "the filter is empty")
        node = self._and()
        kind, value, pos = self.tokens[self.index]
        if kind != "end":
            raise self._unexpected(kind, value, pos, "expected 'and' or the end of the filter")
        return node

    def _peek(self) -> tuple[str, Any, int]:
        return self.tokens[self.index]

    def _next(self) -> tuple[str, Any, int]:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def _keyword(self) -> str | None:
        kind, value, _ = self._peek()
        return value if kind == "name" and value in (*SUPPORTED_OPERATORS, *UNSUPPORTED_OPERATORS) else None

    def _unexpected(self, kind: str, value: Any, pos: int, expected: str) -> m.QueryError:
        if kind == "name" and value in UNSUPPORTED_OPERATORS:
            return _unsupported_operator(value)
        shown = "the end of the filter" if kind == "end" else repr(value.text if kind == "literal" else value)
        return _syntax(self.text, pos, f"{expected}, found {shown}")

    def _and(self) -> Any:
        node = self._comparison()
        while self._keyword() == "and":
            self._next()
            node = And(node, self._comparison())
        return node

    def _comparison(self) -> Any:
        if self._keyword() == "not":
            raise _unsupported_operator("not")
        left = self._primary()
        keyword = self._keyword()
        if keyword in ("eq", "ge", "le"):
            self._next()
            return Compare(left, keyword, self._primary())
        if keyword == "in":
            self._next()
            return InList(left, self._list())
        if keyword in UNSUPPORTED_OPERATORS and keyword != "and":
            raise _unsupported_operator(keyword)
        return left

    def _list(self) -> tuple[Any, ...]:
        kind, value, pos = self._next()
        if kind != "(":
            raise self._unexpected(kind, value, pos, "expected '(' after 'in'")
        items = [self._primary()]
        while self._peek()[0] == ",":
            self._next()
            items.append(self._primary())
        kind, value, pos = self._next()
        if kind != ")":
            raise self._unexpected(kind, value, pos, "expected ',' or ')' in the 'in' list")
        return tuple(items)

    def _primary(self) -> Any:
        kind, value, pos = self._next()
        if kind == "(":
            node = self._and()
            kind, value, pos = self._next()
            if kind != ")":
                raise self._unexpected(kind, value, pos, "expected ')'")
            return node
        if kind == "literal":
            return value
        if kind == "name":
            if self._peek()[0] == "(":
                return self._call(value, pos)
            if value in ("true", "false"):
                return Literal("bool", value == "true", value)
            if value == "null":
                return Literal("null", None, value)
            if value in SUPPORTED_OPERATORS or value in UNSUPPORTED_OPERATORS:
                raise self._unexpected(kind, value, pos, "expected a property or a literal")
            return Name(value)
        raise self._unexpected(kind, value, pos, "expected a property or a literal")

    def _call(self, function: str, pos: int) -> Call:
        if function in UNSUPPORTED_FUNCTIONS:
            raise m.unsupported(
                f"The function '{function}' is not supported in $filter by the ERP.net Domain API."
            )
        if function in VENDOR_FUNCTIONS:
            raise m.QueryError(
                501,
                f"The ERP.net function '{function}' is not implemented by the sandbox.",
                code="NotImplemented",
            )
        if function not in FUNCTIONS:
            raise _syntax(self.text, pos, f"unknown function '{function}'")
        self._next()
        args = [self._primary()]
        while self._peek()[0] == ",":
            self._next()
            args.append(self._primary())
        kind, value, close = self._next()
        if kind != ")":
            raise self._unexpected(kind, value, close, f"expected ')' to close {function}(")
        return Call(function, tuple(args))


def parse(text: str, *, standard: bool = False) -> Any:
    """The syntax tree of a `$filter` (raises QueryError on syntax or unsupported operators)."""
    return _Parser(text, standard).parse()


@dataclass(frozen=True)
class Target:
    """A filterable/sortable property as written: a property, or an Amount/Quantity's `<Prop>Value`."""

    entity: m.EntitySet
    prop: m.Property
    written: str

    @property
    def via_value(self) -> bool:
        return self.written != self.prop.name

    @property
    def kind(self) -> m.Kind:
        return m.Kind.DECIMAL if self.via_value else self.prop.kind

    @property
    def type_label(self) -> str:
        if self.kind is m.Kind.REFERENCE:
            return f"reference to {self.prop.target}"
        return "Edm.Decimal" if self.via_value else self.prop.edm_type


def resolve(entity: m.EntitySet, name: str) -> Target:
    """The property a filter or `$orderby` names; `CreditLimitValue` reaches into the Amount."""
    prop = entity.by_name.get(name)
    if prop is None and name.endswith("Value"):
        base = entity.by_name.get(name[: -len("Value")])
        if base is not None and base.kind in m.COMPLEX_VALUE_KINDS:
            return Target(entity, base, name)
    prop = entity.property(name)
    if prop.kind is m.Kind.CHILDREN:
        raise m.bad_request(f"The child collection '{name}' cannot be used in $filter or $orderby.")
    if prop.kind in m.COMPLEX_VALUE_KINDS:
        raise m.bad_request(
            f"'{name}' is a {prop.edm_type}: use '{name}Value' to filter or sort by its value."
        )
    return Target(entity, prop, name)


def _key_function(target: Target) -> Callable[[Any], Any] | None:
    """Wire value -> comparable key (None: the wire value is its own key)."""
    if target.via_value:
        return lambda wire: None if wire is None else wire["Value"]
    kind = target.kind
    if kind is m.Kind.REFERENCE:
        return lambda wire: None if wire is None else wire["@odata.id"]
    if kind is m.Kind.DATETIME:
        return lambda wire: None if wire is None else parse_instant(wire)
    if kind is m.Kind.MULTILANG:
        return lambda wire: None if wire is None else tuple(v for v in wire.values() if isinstance(v, str))
    return None


class Columns:
    """Key columns per (entity set, property), built on first use and kept: filters and sorts
    over the same property share them. Each column remembers the set's revision it was built
    from and is rebuilt once `Dataset.touch` has moved the set past it."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self._columns: dict[tuple[str, str], tuple[int, list[Any]]] = {}
        self._lock = threading.Lock()

    def get(self, target: Target) -> list[Any]:
        key = (target.entity.name, target.written)
        revision = self.dataset.revision(target.entity.name)  # before reading values: never newer than them
        found = self._columns.get(key)
        if found is None or found[0] < revision:
            with self._lock:
                found = self._columns.get(key)
                if found is None or found[0] < revision:
                    values = self.dataset.values(target.entity.name, target.prop.name)
                    convert = _key_function(target)
                    column = list(values) if convert is None else [convert(v) for v in values]
                    found = self._columns[key] = (revision, column)
        return found[1]


def _mismatch(target: Target, literal: Literal) -> m.QueryError:
    return m.bad_request(
        f"Cannot compare property '{target.written}' ({target.type_label}) with the {literal.kind} "
        f"literal {literal.text} in $filter."
    )


def _guid_text(literal: Literal) -> str | None:
    if literal.kind == "guid":
        return literal.value
    if literal.kind == "string" and _GUID.fullmatch(literal.value):
        return literal.value.lower()
    return None


def _reference_key(target: Target, literal: Literal) -> str:
    """References are compared by OData id: 'Set(guid)'; a bare GUID means the declared target."""
    guid = _guid_text(literal)
    if guid is not None:
        return f"{target.prop.target}({guid})"
    match = literal.kind == "string" and re.fullmatch(r"(\w+)\(([0-9A-Fa-f-]{36})\)", literal.value)
    if not match:
        raise m.bad_request(
            f"Filter '{target.written}' by its OData id, e.g. {target.written} eq "
            f"'{target.prop.target}(00000000-0000-0000-0000-000000000000)'; got {literal.text}."
        )
    if match.group(1) != target.prop.target:
        raise m.bad_request(
            f"'{target.written}' references {target.prop.target}, not {match.group(1)} "
            f"(literal {literal.text})."
        )
    return f"{match.group(1)}({match.group(2).lower()})"


def _key(target: Target, literal: Literal) -> Any:
    """A literal as a key comparable with the target's column (None for null)."""
    if literal.kind == "null":
        return None
    kind, lk, value = target.kind, literal.kind, literal.value
    if kind is m.Kind.STRING and lk == "string":
        return value
    if kind is m.Kind.GUID and _guid_text(literal) is not None:
        return _guid_text(literal)
    if kind is m.Kind.BOOLEAN and lk == "bool":
        return value
    if kind is m.Kind.INT32 and lk == "number" and value == int(value):
        return int(value)
    if kind is m.Kind.DECIMAL and lk == "number":
        return Decimal(value)
    if kind is m.Kind.DATE and lk == "date":
        return value
    if kind is m.Kind.DATE and lk == "datetime":  # documented: truncated to the UTC date
        return (_EPOCH + timedelta(microseconds=value // 10)).date().isoformat()
    if kind is m.Kind.DATETIME and lk == "datetime":
        return value
    if kind is m.Kind.DATETIME and lk == "date":
        return parse_instant(f"{value}T00:00:00Z")
    if kind is m.Kind.ENUM and lk in ("string", "enum"):
        enum = target.prop.enum
        assert enum is not None
        if value not in enum.names:
            raise m.bad_request(
                f"'{value}' is not a member of {enum.full_name} (property '{target.written}'); "
                f"members: {', '.join(enum.names)}."
            )
        return value
    if kind is m.Kind.REFERENCE and lk in ("string", "guid"):
        return _reference_key(target, literal)
    raise _mismatch(target, literal)


def _scan(column: list[Any], test: Callable[[Any], bool], *, nulls: bool = False) -> Run:
    """A leaf predicate: positions whose key passes `test` (null keys only if `nulls`)."""
    if nulls:

        def run_all(candidates: Sequence[int] | None) -> list[int]:
            if candidates is None:
                return [i for i, v in enumerate(column) if test(v)]
            return [i for i in candidates if test(column[i])]

        return run_all

    def run(candidates: Sequence[int] | None) -> list[int]:
        if candidates is None:
            return [i for i, v in enumerate(column) if v is not None and test(v)]
        return [i for i in candidates if (v := column[i]) is not None and test(v)]

    return run


class _Compiler:
    def __init__(self, entity: m.EntitySet, columns: Columns) -> None:
        self.entity = entity
        self.columns = columns

    def compile(self, node: Any) -> Run:
        if isinstance(node, And):
            left, right = self.compile(node.left), self.compile(node.right)
            return lambda candidates: right(left(candidates))
        if isinstance(node, Compare):
            return self._compare(node)
        if isinstance(node, InList):
            return self._in(node)
        if isinstance(node, Call):
            return self._call(node)
        if isinstance(node, Name):  # a Boolean property on its own means "is true"
            return self._compare(Compare(node, "eq", Literal("bool", True, "true")))
        raise m.bad_request(f"$filter must be a condition; {getattr(node, 'text', node)!r} is not one.")

    def _target(self, node: Name, operator: str) -> Target:
        target = resolve(self.entity, node.name)
        allowed = target.prop.filter_ops
        if allowed is not None and operator not in allowed:
            raise m.bad_request(
                f"Property '{target.written}' of {self.entity.full_type_name} can be filtered only with "
                f"{', '.join(sorted(allowed))}; '{operator}' is not allowed."
            )
        if target.kind is m.Kind.MULTILANG and operator != "contains":
            raise m.bad_request(
                f"'{target.written}' is a multilanguage string: it supports only contains() in $filter."
            )
        return target

    def _compare(self, node: Compare) -> Run:
        left, op, right = node.left, node.op, node.right
        if isinstance(left, Literal) and isinstance(right, Name):
            left, right, op = right, left, {"ge": "le", "le": "ge"}.get(op, op)
        if not isinstance(left, Name) or not isinstance(right, Literal):
            raise m.bad_request(
                f"Each comparison in $filter must compare a property with a literal (operator '{op}')."
            )
        target = self._target(left, op)
        key = _key(target, right)
        column = self.columns.get(target)
        if key is None:
            if op != "eq":
                raise m.bad_request(f"null can only be compared with eq ('{target.written} {op} null').")
            return _scan(column, lambda v: v is None, nulls=True)
        if target.kind in (m.Kind.REFERENCE, m.Kind.GUID) and op != "eq" and target.prop.name != "Id":
            raise m.bad_request(f"'{target.written}' supports only eq and in.")
        if target.kind is m.Kind.ENUM and op != "eq":
            assert target.prop.enum is not None
            names = target.prop.enum.names
            at = names.index(key)
            return _scan(column, frozenset(names[at:] if op == "ge" else names[: at + 1]).__contains__)
        if op == "eq":
            return _scan(column, partial(eq, key))
        # key <= v for ge, key >= v for le: partial keeps the test in C.
        return _scan(column, partial(le if op == "ge" else ge, key))

    def _in(self, node: InList) -> Run:
        if not isinstance(node.left, Name) or not all(isinstance(i, Literal) for i in node.items):
            raise m.bad_request("'in' needs a property on the left and a list of literals on the right.")
        target = self._target(node.left, "in")
        keys = frozenset(_key(target, item) for item in node.items)
        return _scan(self.columns.get(target), keys.__contains__, nulls=None in keys)

    def _call(self, node: Call) -> Run:
        if len(node.args) != 2 or not isinstance(node.args[0], Name) or not isinstance(node.args[1], Literal):
            raise m.bad_request(
                f"{node.function}() takes a property and a string literal, e.g. {node.function}(Name,'x')."
            )
        target = self._target(node.args[0], node.function)
        literal = node.args[1]
        if literal.kind != "string" or target.kind not in (m.Kind.STRING, m.Kind.MULTILANG):
            raise m.bad_request(
                f"{node.function}() works on string properties and string literals; got "
                f"'{target.written}' ({target.type_label}) and {literal.text}."
            )
        text = literal.value
        column = self.columns.get(target)
        if target.kind is m.Kind.MULTILANG:
            return _scan(column, lambda values: any(text in v for v in values))
        if node.function == "contains":
            return _scan(column, lambda v: text in v)
        if node.function == "startswith":
            return _scan(column, lambda v: v.startswith(text))
        return _scan(column, lambda v: v.endswith(text))


def compile_filter(text: str, entity: m.EntitySet, columns: Columns, *, standard: bool = False) -> Run:
    """A `$filter` compiled against one entity set; raises QueryError with the API's status."""
    return _Compiler(entity, columns).compile(parse(text, standard=standard))
