"""``$metadata`` (EDMX, OData v4 CSDL) -> ``ServiceMetadata``.

Each ERP.net instance has its own model (custom properties add properties), so schemas and
column types come from the instance's ``$metadata``, never from a list shipped with this package.

Parsing uses the standard library: ``xml.etree.ElementTree`` neither fetches external entities
nor DTDs, and the expat it ships with limits entity expansion, which is enough for a document
fetched from the configured, authenticated API.
"""

from __future__ import annotations

import difflib
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from .errors import ErpNetConfigError, ErpNetTransportError
from .redact import server_text

_EDMX = "{http://docs.oasis-open.org/odata/ns/edmx}"
_EDM = "{http://docs.oasis-open.org/odata/ns/edm}"
# ERP.net types derive a level or two deep; a chain of thousands only makes resolution slow and big.
MAX_BASE_TYPE_DEPTH = 64
# A facet (Precision, Scale, MaxLength) longer than this is no number ERP.net uses.
_MAX_FACET_DIGITS = 9


@dataclass(frozen=True)
class PropertyInfo:
    """A structural property; ``type`` is the element type when ``collection`` is true."""

    name: str
    type: str
    collection: bool
    nullable: bool
    precision: int | None
    scale: int | None
    max_length: int | None


@dataclass(frozen=True)
class NavigationInfo:
    """A navigation property: a reference (single) or child rows (collection)."""

    name: str
    type: str
    collection: bool


@dataclass(frozen=True)
class StructuredType:
    """An entity or complex type, with the members of its base types included."""

    name: str
    key: tuple[str, ...]
    properties: tuple[PropertyInfo, ...]
    navigations: tuple[NavigationInfo, ...]
    open_type: bool


@dataclass(frozen=True)
class EnumTypeInfo:
    name: str
    members: tuple[str, ...]


@dataclass(frozen=True)
class ServiceMetadata:
    """The model of one Domain API: types by full name, entity sets by name."""

    namespace: str
    entity_types: Mapping[str, StructuredType]
    complex_types: Mapping[str, StructuredType]
    enum_types: Mapping[str, EnumTypeInfo]
    entity_sets: Mapping[str, str]

    def entity_type(self, entity_set: str) -> StructuredType:
        """The entity type behind ``entity_set``; unknown names raise with the closest matches."""
        type_name = self.entity_sets.get(entity_set)
        if type_name is None:
            raise ErpNetConfigError(
                unknown_entity_set_message(entity_set, self.closest_entity_sets(entity_set))
            )
        try:
            return self.entity_types[type_name]
        except KeyError:
            raise ErpNetConfigError(
                f"$metadata declares entity set {entity_set!r} of type {server_text(type_name, 100)!r} "
                "but not that type."
            ) from None

    def closest_entity_sets(self, name: str, n: int = 3) -> list[str]:
        """Entity set names that look like ``name`` (case-insensitive), best first."""
        by_lower = {set_name.lower(): set_name for set_name in self.entity_sets}
        matches = difflib.get_close_matches(name.lower(), list(by_lower), n=n, cutoff=0.6)
        return [by_lower[match] for match in matches]


def unknown_entity_set_message(entity_set: str, suggestions: list[str]) -> str:
    """One wording for an unknown entity set, wherever it is detected."""
    names = ", ".join(server_text(name, 100) or "''" for name in suggestions)
    hint = f"did you mean {names}?" if suggestions else "no entity set has a similar name."
    return (
        f"Unknown entity set {entity_set!r}; {hint} "
        "Names are case sensitive and plural, e.g. 'Crm_Sales_Customers'."
    )


def parse_metadata(xml: bytes) -> ServiceMetadata:
    """Parse an EDMX document (OData v4) into a ``ServiceMetadata``."""
    try:
        root = ET.fromstring(xml)
    except (ET.ParseError, ValueError, LookupError) as error:
        raise ErpNetTransportError(
            f"$metadata is not valid XML ({server_text(error, 200)}); check that api_url points at the "
            "OData service root.",
            setting="api_url",
        ) from None
    if root.tag != f"{_EDMX}Edmx":
        raise ErpNetTransportError(
            f"$metadata is not an OData v4 EDMX document (root element {server_text(root.tag, 100)!r}); "
            "check that api_url points at the OData service root.",
            setting="api_url",
        )
    schemas = root.findall(f"{_EDMX}DataServices/{_EDM}Schema")
    if not schemas:
        raise ErpNetTransportError("$metadata contains no Schema element.", setting="api_url")
    return _Parser(schemas).result()


class _Parser:
    """Collects declarations from every schema, then resolves aliases and base types."""

    def __init__(self, schemas: list[ET.Element]) -> None:
        self.aliases = {s.get("Alias"): s.get("Namespace", "") for s in schemas if s.get("Alias")}
        self.schemas = schemas
        self.raw_types: dict[str, tuple[ET.Element, bool]] = {}  # full name -> (element, is entity)
        self.resolved: dict[str, StructuredType] = {}

    def result(self) -> ServiceMetadata:
        enums: dict[str, EnumTypeInfo] = {}
        sets: dict[str, str] = {}
        namespace = self.schemas[0].get("Namespace", "")
        for schema in self.schemas:
            ns = schema.get("Namespace", "")
            for element in schema:
                name = f"{ns}.{element.get('Name')}"
                if element.tag == f"{_EDM}EntityType":
                    self.raw_types[name] = (element, True)
                elif element.tag == f"{_EDM}ComplexType":
                    self.raw_types[name] = (element, False)
                elif element.tag == f"{_EDM}EnumType":
                    members = tuple(m.get("Name", "") for m in element.findall(f"{_EDM}Member"))
                    enums[name] = EnumTypeInfo(name=name, members=members)
                elif element.tag == f"{_EDM}EntityContainer":
                    namespace = ns
                    for entity_set in element.findall(f"{_EDM}EntitySet"):
                        sets[entity_set.get("Name", "")] = self._qualified(entity_set.get("EntityType", ""))
        resolved = {name: self._structured(name, set()) for name in self.raw_types}
        return ServiceMetadata(
            namespace=namespace,
            entity_types=MappingProxyType({n: t for n, t in resolved.items() if self.raw_types[n][1]}),
            complex_types=MappingProxyType({n: t for n, t in resolved.items() if not self.raw_types[n][1]}),
            enum_types=MappingProxyType(enums),
            entity_sets=MappingProxyType(sets),
        )

    def _structured(self, name: str, visiting: set[str]) -> StructuredType:
        if name in self.resolved:
            return self.resolved[name]
        if name in visiting:
            raise ErpNetTransportError(f"$metadata: type {server_text(name, 100)!r} is its own base type.")
        if len(visiting) >= MAX_BASE_TYPE_DEPTH:
            raise ErpNetTransportError(
                f"$metadata: type {server_text(name, 100)!r} derives from more than {MAX_BASE_TYPE_DEPTH} "
                "base types; that is no ERP.net model. Check that api_url points at ERP.net's Domain API.",
                setting="api_url",
            )
        element, _ = self.raw_types[name]
        base = None
        if element.get("BaseType"):
            base_name = self._qualified(element.get("BaseType", ""))
            if base_name not in self.raw_types:
                raise ErpNetTransportError(
                    f"$metadata: type {server_text(name, 100)!r} derives from unknown "
                    f"{server_text(base_name, 100)!r}."
                )
            base = self._structured(base_name, visiting | {name})
        key_element = element.find(f"{_EDM}Key")
        key = (
            ()
            if key_element is None
            else tuple(r.get("Name", "") for r in key_element.findall(f"{_EDM}PropertyRef"))
        )
        properties = tuple(self._property(p) for p in element.findall(f"{_EDM}Property"))
        navigations = tuple(self._navigation(p) for p in element.findall(f"{_EDM}NavigationProperty"))
        open_type = element.get("OpenType", "false").lower() == "true"
        if base is not None:
            key = key or base.key
            properties = base.properties + properties
            navigations = base.navigations + navigations
            open_type = open_type or base.open_type
        self.resolved[name] = StructuredType(name, key, properties, navigations, open_type)
        return self.resolved[name]

    def _property(self, element: ET.Element) -> PropertyInfo:
        type_name, collection = self._type(element)
        return PropertyInfo(
            name=element.get("Name", ""),
            type=type_name,
            collection=collection,
            nullable=element.get("Nullable", "true").lower() != "false",
            precision=_int_facet(element, "Precision"),
            scale=_int_facet(element, "Scale"),
            max_length=_int_facet(element, "MaxLength"),
        )

    def _navigation(self, element: ET.Element) -> NavigationInfo:
        type_name, collection = self._type(element)
        return NavigationInfo(name=element.get("Name", ""), type=type_name, collection=collection)

    def _type(self, element: ET.Element) -> tuple[str, bool]:
        declared = element.get("Type", "")
        if declared.startswith("Collection(") and declared.endswith(")"):
            return self._qualified(declared[len("Collection(") : -1]), True
        return self._qualified(declared), False

    def _qualified(self, type_name: str) -> str:
        """Replace a schema alias (``self.Amount``) by its namespace (``Erp.Amount``)."""
        prefix, dot, rest = type_name.rpartition(".")
        if dot and prefix in self.aliases:
            return f"{self.aliases[prefix]}.{rest}"
        return type_name


def _int_facet(element: ET.Element, facet: str) -> int | None:
    """A numeric facet; ``max``, ``variable`` and other non-numbers mean "no fixed limit"."""
    value = element.get(facet)
    valid = value is not None and value.isascii() and value.isdigit() and len(value) <= _MAX_FACET_DIGITS
    return int(value) if valid else None
