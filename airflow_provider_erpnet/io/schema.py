"""Output columns derived from ``$metadata``.

Every writer and the reader work from the same list of ``Column``s, so the three formats agree on
names, order and types, and a manifest can describe its files without the instance's metadata.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_erpnet.client.errors import ErpNetConfigError
from airflow_provider_erpnet.client.redact import server_text

if TYPE_CHECKING:
    from airflow_provider_erpnet.client.metadata import (
        NavigationInfo,
        PropertyInfo,
        ServiceMetadata,
        StructuredType,
    )

KINDS = frozenset(
    {
        "string",
        "bool",
        "int32",
        "int64",
        "decimal",
        "date",
        "timestamp",
        "amount",
        "quantity",
        "multilang",
        "reference",
        "enum",
        "json",
    }
)

# Edm.Decimal without Precision/Scale facets: 28 integer and 10 fraction digits, which holds any
# ERP.net amount (18,2), quantity (18,3) and rate without rounding.
DEFAULT_PRECISION = 38
DEFAULT_SCALE = 10

_EDM_KINDS = {
    "Edm.String": "string",
    "Edm.Guid": "string",
    "Edm.TimeOfDay": "string",
    "Edm.Duration": "string",
    "Edm.Binary": "string",
    "Edm.Boolean": "bool",
    "Edm.Byte": "int32",
    "Edm.SByte": "int32",
    "Edm.Int16": "int32",
    "Edm.Int32": "int32",
    "Edm.Int64": "int64",
    "Edm.Decimal": "decimal",
    "Edm.Date": "date",
    "Edm.DateTimeOffset": "timestamp",
}
# Complex types recognised by their name inside the service namespace (``Erp.Amount``).
_COMPLEX_KINDS = {"Amount": "amount", "Quantity": "quantity", "MultilanguageString": "multilang"}

DEFAULT_SELECT = "default"
ALL_SELECT = "*"
_HIDDEN_BY_DEFAULT = ("Id", "AggregateLastUpdateTimeUtc")
_CUSTOM_PREFIX = "CustomProperty_"


@dataclass(frozen=True)
class Column:
    """One output column: its name in records and files, and how values are typed."""

    name: str
    kind: str
    nullable: bool = True
    precision: int | None = None
    scale: int | None = None
    source_type: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ErpNetConfigError(
                f"Column {self.name!r} has unknown kind {self.kind!r}; use one of {', '.join(sorted(KINDS))}."
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form, for manifests."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Column:
        """Inverse of ``to_dict``; unknown keys are ignored so newer manifests stay readable."""
        return cls(
            name=data["name"],
            kind=data["kind"],
            nullable=bool(data.get("nullable", True)),
            precision=data.get("precision"),
            scale=data.get("scale"),
            source_type=data.get("source_type"),
        )


def columns_for(
    metadata: ServiceMetadata,
    entity_set: str,
    select: str | Sequence[str] | None,
    expand: str | None = None,
    *,
    sent: Collection[str] | None = None,
) -> list[Column]:
    """Columns of an extraction, in output order.

    ``select`` follows the server: ``None`` or an item ``"default"`` stands for the default
    attributes (structural properties and references except ``Id``, ``AggregateLastUpdateTimeUtc``,
    custom properties and collections), expanded in place; ``"*"`` for every structural property
    and reference (what a standard OData server sends without ``$select``); other items are added
    where listed. Each navigation named in ``expand`` becomes a ``json`` column holding the
    expanded value.

    ``sent``: the keys of the records the server answered with. ERP.net's ``default`` also leaves
    out calculated attributes that ``$metadata`` does not mark, and an instance's default set can
    differ from any rule, while null values are still sent: so with ``sent``, ``default`` and
    ``*`` keep only the columns the server actually sent. Explicitly named columns always stay,
    and no member of ``$metadata`` the server sent is ever left out (it is added after the others).
    """
    entity = metadata.entity_type(entity_set)
    mapper = _Mapper(metadata, entity_set, entity)
    names = _split_select(select)
    ordered: dict[str, Column] = {}
    for name in names:
        if name in (DEFAULT_SELECT, ALL_SELECT):
            rule = mapper.defaults() if name == DEFAULT_SELECT else mapper.structural()
            chosen = [column for column in rule if sent is None or column.name in sent]
        else:
            chosen = [mapper.column(name)]
        for column in chosen:
            ordered.setdefault(column.name, column)
    expanded = {name: mapper.expanded(name) for name in _split_expand(expand)}
    for name in mapper.names():
        if sent is not None and name in sent and name not in ordered and name not in expanded:
            ordered[name] = mapper.column(name)
    ordered.update(expanded)
    return list(ordered.values())


def _split_select(select: str | Sequence[str] | None) -> list[str]:
    if select is None:
        return [DEFAULT_SELECT]
    items = select.split(",") if isinstance(select, str) else list(select)
    names = [item.strip() for item in items if item.strip()]
    return names or [DEFAULT_SELECT]


def _split_expand(expand: str | None) -> list[str]:
    """Top-level navigation names of an ``$expand`` value, nested options ignored."""
    names: list[str] = []
    depth = 0
    current = ""
    for char in expand or "":
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            names.append(current)
            current = ""
        elif depth == 0:
            current += char
    names.append(current)
    return [name.strip() for name in names if name.strip()]


class _Mapper:
    """Turns the members of one entity type into columns."""

    def __init__(self, metadata: ServiceMetadata, entity_set: str, entity: StructuredType) -> None:
        self.metadata = metadata
        self.entity_set = entity_set
        self.properties = {p.name: p for p in entity.properties}
        self.navigations = {n.name: n for n in entity.navigations}

    def defaults(self) -> list[Column]:
        properties = [
            self._property(p)
            for p in self.properties.values()
            if not p.collection and _shown_by_default(p.name)
        ]
        references = [
            self._navigation(n)
            for n in self.navigations.values()
            if not n.collection and _shown_by_default(n.name)
        ]
        return properties + references

    def structural(self) -> list[Column]:
        """Every property and reference: what ``$select=*`` (or no ``$select``) returns."""
        properties = [self._property(p) for p in self.properties.values()]
        references = [self._navigation(n) for n in self.navigations.values() if not n.collection]
        return properties + references

    def names(self) -> list[str]:
        """Every member of the entity type, properties first, in ``$metadata`` order."""
        return [*self.properties, *self.navigations]

    def column(self, name: str) -> Column:
        if name in self.properties:
            return self._property(self.properties[name])
        if name in self.navigations:
            return self._navigation(self.navigations[name])
        raise ErpNetConfigError(self._unknown("$select", name, [*self.properties, *self.navigations]))

    def expanded(self, name: str) -> Column:
        navigation = self.navigations.get(name)
        if navigation is None:
            raise ErpNetConfigError(self._unknown("$expand", name, list(self.navigations)))
        return Column(name, "json", source_type=type_label(navigation.type, navigation.collection))

    def _unknown(self, option: str, name: str, candidates: list[str]) -> str:
        by_lower = {candidate.lower(): candidate for candidate in candidates}
        close = [
            by_lower[m] for m in difflib.get_close_matches(name.lower(), list(by_lower), n=3, cutoff=0.6)
        ]
        names = ", ".join(server_text(candidate, 100) or "''" for candidate in close)  # the server's names
        hint = f"did you mean {names}?" if close else "no member has a similar name."
        return (
            f"{option} names {name!r}, which {self.entity_set} does not have; {hint} "
            "Names are case sensitive."
        )

    def _property(self, prop: PropertyInfo) -> Column:
        source = type_label(prop.type, prop.collection)
        if prop.collection:
            return Column(prop.name, "json", prop.nullable, source_type=source)
        kind = _EDM_KINDS.get(prop.type) or self._named_kind(prop.type)
        if kind == "decimal":
            precision, scale = _decimal_facets(prop.precision, prop.scale)
            return Column(prop.name, kind, prop.nullable, precision, scale, source)
        if kind in ("amount", "quantity"):
            precision, scale = self._value_facets(prop.type)
            return Column(prop.name, kind, prop.nullable, precision, scale, source)
        return Column(prop.name, kind, prop.nullable, source_type=source)

    def _navigation(self, navigation: NavigationInfo) -> Column:
        kind = "json" if navigation.collection else "reference"
        return Column(navigation.name, kind, source_type=type_label(navigation.type, navigation.collection))

    def _named_kind(self, type_name: str) -> str:
        if type_name in self.metadata.enum_types:
            return "enum"
        namespace, _, short = type_name.rpartition(".")
        if namespace == self.metadata.namespace and short in _COMPLEX_KINDS:
            return _COMPLEX_KINDS[short]
        return "json"

    def _value_facets(self, type_name: str) -> tuple[int, int]:
        """Precision and scale of the ``Value`` of an amount or quantity type."""
        complex_type = self.metadata.complex_types.get(type_name)
        value = (
            next((p for p in complex_type.properties if p.name == "Value"), None) if complex_type else None
        )
        return _decimal_facets(value.precision, value.scale) if value else (DEFAULT_PRECISION, DEFAULT_SCALE)


def _shown_by_default(name: str) -> bool:
    return name not in _HIDDEN_BY_DEFAULT and not name.startswith(_CUSTOM_PREFIX)


def _decimal_facets(precision: int | None, scale: int | None) -> tuple[int, int]:
    """Declared facets, or the documented wide default when either is missing."""
    if precision is None or scale is None or scale > precision:
        return DEFAULT_PRECISION, DEFAULT_SCALE
    return precision, scale


def type_label(type_name: str, collection: bool) -> str:
    return f"Collection({type_name})" if collection else type_name
