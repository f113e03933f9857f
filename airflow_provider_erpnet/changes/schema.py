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
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from airflow_provider_erpnet.client.errors import ErpNetConfigError, ErpNetError
from airflow_provider_erpnet.client.metadata import PropertyInfo, ServiceMetadata
from airflow_provider_erpnet.io.manifest import Manifest, as_manifest
from airflow_provider_erpnet.io.output import _storage_for, read_published_manifest

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


@dataclass(frozen=True)
class Drift:
    """The outcome of the check before an extraction: the manifest's ``schema`` section, what
    changed, and (``evolve``) the property names to add to ``$select``."""

    section: dict[str, Any]
    change: SchemaChange
    extra_select: tuple[str, ...] = ()


def check_drift(
    metadata: ServiceMetadata,
    entity_set: str,
    previous: Manifest | None,
    *,
    mode: OnSchemaChange,
    selected: Sequence[str],
    source: str,
    logger: logging.Logger | logging.LoggerAdapter,
) -> Drift:
    """Compare the entity type with ``previous`` (a manifest of the same output, or a named one).

    ``fail`` raises ``ErpNetSchemaChangeError``; ``warn`` logs; ``evolve`` logs and returns the
    names to select: properties added since, and the previous run's selected names that still
    exist (so a column an earlier evolve added stays). ``selected`` is this run's ``$select``.
    """
    current = fingerprint(metadata, entity_set)
    section: dict[str, Any] = {**current, "on_schema_change": mode}
    baseline = previous.schema if previous is not None else None
    if not baseline or "properties" not in baseline:
        if previous is not None:
            logger.info(
                "%s: %s has no schema fingerprint to compare with (an older run).", entity_set, source
            )
        return Drift(section, SchemaChange())
    change = compare(baseline, current)
    section["baseline_sha256"] = baseline.get("sha256")
    what = f"{entity_set}: the entity type changed since the run that wrote {source}: {change.describe()}"
    if change:
        section["changes"] = change.to_dict()
        if mode == "fail":
            raise ErpNetSchemaChangeError(
                f"{what}. Nothing was read or written (on_schema_change='fail', the default for Parquet). "
                "To accept the new schema, run once with on_schema_change='evolve' (added properties "
                "become columns) or 'warn'; the manifest that run writes is the next baseline.",
                change,
            )
        if mode == "warn":
            logger.warning("%s. Extracting the columns the selection gives (on_schema_change='warn').", what)
    if mode != "evolve" or previous is None:
        return Drift(section, change)
    # Evolve keeps the output in step: what was added since, and what the last run selected.
    properties = current["properties"]
    wanted = [*change.added, *previous.query.get("select", "").split(",")]
    extra = tuple(
        name
        for name in dict.fromkeys(wanted)
        if name in properties and name not in selected and not _is_collection_navigation(properties[name])
    )
    if change:
        added = f"adding column(s) {', '.join(extra)}" if extra else "no column to add"
        logger.warning("%s. on_schema_change='evolve': %s.", what, added)
    return Drift(section, change, extra)


def _is_collection_navigation(described: Mapping[str, Any]) -> bool:
    """Collections of entities come through ``$expand``, never ``$select``."""
    return bool(described.get("navigation") and described.get("collection"))


def load_baseline(
    target: Any, baseline: Any, logger: logging.Logger | logging.LoggerAdapter
) -> tuple[Manifest | None, str]:
    """The manifest to compare with, and how to name it in messages.

    ``baseline`` None: the manifest published beside ``target`` by its last run (a damaged one is
    logged and skipped: the next commit replaces it). Otherwise a ``Manifest``, its dict (an XCom),
    or the path or URL of a manifest file. An empty text (a template that rendered nothing, as on
    a DAG's first run) compares with nothing.
    """
    if isinstance(baseline, str) and not baseline.strip():
        return None, "no schema_baseline (it rendered empty)"
    if baseline is None:
        try:
            return read_published_manifest(target), "the previous manifest at this output"
        except ErpNetError as error:
            logger.warning("Not comparing schemas: %s", error)
            return None, "the previous manifest at this output"
    if isinstance(baseline, Manifest | dict):
        return as_manifest(baseline), "the schema_baseline manifest"
    storage, final = _storage_for(baseline)
    try:
        return Manifest.from_dict(json.loads(storage.read(final))), str(final)
    except (OSError, ValueError, TypeError) as error:
        raise ErpNetConfigError(
            f"schema_baseline {str(final)!r} is not a readable manifest file ({error}); name the "
            "_<output name>.manifest.json an earlier run published, or pass its XCom."
        ) from None
