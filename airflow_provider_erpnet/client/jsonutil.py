"""JSON decoding that keeps ERP.net amounts exact.

ERP.net sends amounts and quantities as JSON numbers with up to 18 significant digits; a float
would silently round them. msgspec hands ``float_hook`` the number's original text, so
``Decimal`` keeps every digit (and trailing zeros); integers stay ``int``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec

_DECODER = msgspec.json.Decoder(float_hook=Decimal)
_UTF8_BOM = b"\xef\xbb\xbf"


class TooDeep(ValueError):
    """The document nests arrays or objects deeper than the decoder can follow (no ERP.net answer does)."""


def loads(data: bytes | str) -> Any:
    """Decode a JSON document; numbers with a fraction or exponent become ``Decimal``.

    Raises ``ValueError`` when ``data`` is not valid JSON: ``msgspec.DecodeError``, or
    :class:`TooDeep` for nesting the decoder cannot follow (it stops at the interpreter's
    recursion limit, about a thousand levels).
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    try:
        return _DECODER.decode(strip_bom(data))
    except RecursionError:
        raise TooDeep("JSON nested too deeply to decode") from None


def strip_bom(data: bytes) -> bytes:
    """``data`` without a leading UTF-8 byte order mark (some servers send one)."""
    return data.removeprefix(_UTF8_BOM)
