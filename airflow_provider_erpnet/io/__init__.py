"""Extraction output without Airflow: column schema, streaming writers, atomic commit, manifest, reader.

pyarrow is imported only for Parquet output and ``read_table``.
"""

from __future__ import annotations

from .convert import parse_date, parse_timestamp
from .manifest import FileInfo, Manifest
from .output import OutputWriter, read_published_manifest
from .reader import iter_records, read_table
from .schema import KINDS, Column, columns_for
from .writers import FORMATS, resolve_format

__all__ = [
    "FORMATS",
    "KINDS",
    "Column",
    "FileInfo",
    "Manifest",
    "OutputWriter",
    "columns_for",
    "iter_records",
    "parse_date",
    "parse_timestamp",
    "read_published_manifest",
    "read_table",
    "resolve_format",
]
