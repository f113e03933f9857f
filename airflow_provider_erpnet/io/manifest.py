"""The manifest: what an extraction wrote, small enough for XCom.

Downstream tasks get file paths, counts and the column schema, never records; ``to_dict`` gives
plain JSON types so any XCom backend can store it, and ``from_dict`` reads it back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from airflow_provider_erpnet.client.errors import ErpNetConfigError

from .schema import Column

MANIFEST_VERSION = 1


@dataclass(frozen=True)
class FileInfo:
    """One committed file: where it is (a local path or a URL), rows, and size in bytes."""

    path: str
    rows: int
    bytes: int

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "rows": self.rows, "bytes": self.bytes}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FileInfo:
        return cls(path=str(data["path"]), rows=int(data["rows"]), bytes=int(data["bytes"]))


@dataclass
class Manifest:
    """An extraction's committed output, its query and its checks."""

    entity_set: str
    format: str
    files: list[FileInfo]
    rows: int
    bytes: int
    columns: list[Column]
    query: dict[str, str] = field(default_factory=dict)
    window: dict[str, Any] | None = None
    server_count: int | None = None
    duplicates_removed: int = 0
    duration_seconds: float = 0.0
    # Sections other producers add; left out of ``to_dict`` while None.
    schema: dict[str, Any] | None = None  # the entity type's fingerprint (changes.schema)
    reconciliation: dict[str, Any] | None = None  # Id reconciliation counts (changes.reconcile)
    partition: dict[str, Any] | None = None  # a part of a partitioned extraction: its ``Partition.to_dict()``
    parts: list[dict[str, Any]] | None = None  # a gathered extraction: one summary per part

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types only (str, int, float, None, lists, dicts)."""
        sections: dict[str, Any] = {
            name: dict(value)
            for name, value in (
                ("schema", self.schema),
                ("reconciliation", self.reconciliation),
                ("partition", self.partition),
            )
            if value is not None
        }
        if self.parts is not None:
            sections["parts"] = [dict(part) for part in self.parts]
        return {
            "version": MANIFEST_VERSION,
            "entity_set": self.entity_set,
            "format": self.format,
            "files": [f.to_dict() for f in self.files],
            "rows": self.rows,
            "bytes": self.bytes,
            "columns": [c.to_dict() for c in self.columns],
            "query": dict(self.query),
            "window": None if self.window is None else dict(self.window),
            "server_count": self.server_count,
            "duplicates_removed": self.duplicates_removed,
            "duration_seconds": self.duration_seconds,
            **sections,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        """Inverse of ``to_dict``; unknown keys are ignored so newer manifests stay readable."""
        missing = [key for key in ("entity_set", "format", "files", "columns") if key not in data]
        if missing:
            raise ErpNetConfigError(
                f"Not an ERP.net extraction manifest (missing {', '.join(missing)}); pass the value the "
                "extraction task returned (its XCom)."
            )
        files = [FileInfo.from_dict(f) for f in data["files"]]
        return cls(
            entity_set=data["entity_set"],
            format=data["format"],
            files=files,
            rows=int(data.get("rows", sum(f.rows for f in files))),
            bytes=int(data.get("bytes", sum(f.bytes for f in files))),
            columns=[Column.from_dict(c) for c in data["columns"]],
            query=dict(data.get("query") or {}),
            window=None if data.get("window") is None else dict(data["window"]),
            server_count=data.get("server_count"),
            duplicates_removed=int(data.get("duplicates_removed", 0)),
            duration_seconds=float(data.get("duration_seconds", 0.0)),
            schema=_section(data, "schema"),
            reconciliation=_section(data, "reconciliation"),
            partition=_section(data, "partition"),
            parts=None if data.get("parts") is None else [dict(part) for part in data["parts"]],
        )


def _section(data: dict[str, Any], name: str) -> dict[str, Any] | None:
    value = data.get(name)
    return dict(value) if isinstance(value, dict) else None


def as_manifest(value: Manifest | dict[str, Any]) -> Manifest:
    """Accept either form a downstream task may hold."""
    if isinstance(value, Manifest):
        return value
    if isinstance(value, dict):
        return Manifest.from_dict(value)
    raise ErpNetConfigError(
        f"Expected a Manifest or its dict form, got {type(value).__name__}; pass the extraction task's XCom."
    )
