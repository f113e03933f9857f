"""JSON text for output files: decimals stay exact numbers in both directions.

Encoding writes ``Decimal`` as a JSON number from its own digits (msgspec ``decimal_format``),
non-ASCII characters as UTF-8, dates as ISO text and UTC date-times with ``Z``. Decoding is the
client's: non-integers come back as ``Decimal``.
"""

from __future__ import annotations

from typing import Any

import msgspec

from airflow_provider_erpnet.client.jsonutil import loads

__all__ = ["dumps", "dumps_lines", "loads"]

_ENCODER = msgspec.json.Encoder(decimal_format="number")


def dumps(value: Any) -> bytes:
    """One JSON document as UTF-8 bytes."""
    return _ENCODER.encode(value)


def dumps_lines(values: list[Any]) -> bytes:
    """JSON Lines: one document per value, each ending with a newline."""
    return _ENCODER.encode_lines(values)
