"""Schema drift: a fingerprint of an entity type from ``$metadata``, and what changed between two.

ERP.net administrators add custom properties (``CustomProperty_*``) and new versions add
attributes, so an entity type can change between two runs of the same extraction. Every
extraction records the fingerprint of its entity type in its manifest (``Manifest.schema``); the
next run at the same output location compares its own with it and, by ``on_schema_change``:

* ``"fail"`` (default for Parquet, where a changed file schema breaks readers): stop before any
  page is read, naming every added, removed and retyped property;
* ``"warn"`` (default for JSON Lines and CSV): log the same and extract as configured;
* ``"evolve"``: log it and keep the output in step: properties added since the last run become
  new columns (appended), columns the last run wrote stay as long as the property exists, a
  removed property's column ends. Readers read old and new files together (``iter_records`` and
  ``read_table`` take several manifests and use the union of their columns).

A property is described by its type, collection flag, nullability, precision, scale and maximum
length; a structured type used by a property (``Erp.Amount``) is described by its members, so a
change of an amount's precision counts as a retype. Single-valued navigations (references) count
as properties; collections of entities (``Lines``) too.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from airflow_provider_erpnet.client.errors import ErpNetConfigError, ErpNetError
from airflow_provider_erpnet.client.metadata import PropertyInfo, ServiceMetadata

OnSchemaChange = Literal["fail", "warn", "evolve"]
MODES: tuple[OnSchemaChange, ...] = ("fail", "warn", "evolve")


class ErpNetSchemaChangeError(ErpNetError):
    """The entity type changed since the last run and ``on_schema_change="fail"``."""

    def __init__(self, message: str, change: SchemaChange) -> None:
        super().__init__(message)
        self.change = change


def schema_change_mode(value: Any, fmt: str) -> OnSchemaChange:
    """``value`` checked, or the default for ``fmt`` ("fail" for Parquet, "warn" otherwise)."""
    if value is None:
        return "fail" if fmt == "parquet" else "warn"
    if value not in MODES:
        raise ErpNetConfigError(
            f"on_schema_change must be one of {', '.join(MODES)} (or None), got {value!r}."
        )
    return value


def fingerprint(metadata: ServiceMetadata, entity_set: str) -> dict[str, Any]:
    """The entity type of ``entity_set`` as plain JSON: ``entity_type``, ``properties``, ``sha256``."""
    entity = metadata.entity_type(entity_set)
    properties: dict[str, Any] = {prop.name: _describe(metadata, prop) for prop in entity.properties}
    for navigation in entity.navigations:
        properties[navigation.name] = {
            "type": navigation.type,
            "collection": navigation.collection,
            "navigation": True,
        }
    canonical = json.dumps(properties, sort_keys=True, separators=(",", ":"))
    return {
        "entity_type": entity.name,
        "properties": properties,
        "sha256": hashlib.sha256(canonical.encode("utf-8")).hexdigest(),
    }


def _describe(metadata: ServiceMetadata, prop: PropertyInfo) -> dict[str, Any]:
    described: dict[str, Any] = {"type": prop.type, "nullable": prop.nullable}
    if prop.collection:
        described["collection"] = True
    for facet in ("precision", "scale", "max_length"):
        if getattr(prop, facet) is not None:
            described[facet] = getattr(prop, facet)
    structured = metadata.complex_types.get(prop.type)
    if structured is not None and structured.properties:
        described["members"] = {
            member.name: _describe(metadata, member)
            for member in structured.properties
            if member.type != prop.type  # a recursive type is described once
        }
    return described


@dataclass(frozen=True)
class SchemaChange:
    """Properties added, removed and retyped (name, before, after) between two fingerprints."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    retyped: tuple[tuple[str, dict[str, Any], dict[str, Any]], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.retyped)

    def describe(self) -> str:
        """``added CustomProperty_Color (Erp.CustomPropertyValue); retyped Number (...) -> (...)``."""
        parts = []
        if self.added:
            parts.append("added " + ", ".join(self.added))
        if self.removed:
            parts.append("removed " + ", ".join(self.removed))
        for name, before, after in self.retyped:
            parts.append(f"retyped {name} ({_label(before)} -> {_label(after)})")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "added": list(self.added),
            "removed": list(self.removed),
            "retyped": [name for name, _, _ in self.retyped],
        }


def compare(before: Mapping[str, Any], after: Mapping[str, Any]) -> SchemaChange:
    """What changed from fingerprint ``before`` to ``after`` (property order does not count)."""
    old, new = before.get("properties") or {}, after.get("properties") or {}
    return SchemaChange(
        added=tuple(name for name in new if name not in old),
        removed=tuple(name for name in old if name not in new),
        retyped=tuple((name, old[name], new[name]) for name in new if name in old and old[name] != new[name]),
    )


def _label(described: Mapping[str, Any]) -> str:
    text = str(described.get("type"))
    if described.get("collection"):
        text = f"Collection({text})"
    facets = [str(described[f]) for f in ("precision", "scale") if f in described]
    if facets:
        text += f"({','.join(facets)})"
    if "max_length" in described:
        text += f" max {described['max_length']}"
    if described.get("nullable") is False:
        text += " not null"
    if "members" in described:
        text += " {" + ", ".join(f"{n}: {_label(m)}" for n, m in described["members"].items()) + "}"
    return text
