"""Query strings the way RFC 3986 and OData's URL conventions write them.

``requests`` encodes ``params`` like an HTML form (``application/x-www-form-urlencoded``), where a
space becomes ``+``. In a URL, RFC 3986 gives ``+`` no special meaning, so a standard OData server
reads ``$filter=Name+eq+'x'`` with literal plus signs and refuses it. Here every character except
RFC 3986's unreserved ones is percent-encoded, in option names and values alike: a space is
``%20``, ``$`` is ``%24``, and the quotes, commas, parentheses, ``&``, ``=``, ``+`` and ``#`` inside
literals are escaped too, so every server decodes exactly the text the caller wrote.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote, urlencode


def encode_query(params: Mapping[str, str]) -> str:
    """``{"$filter": "A eq 'x y'"}`` -> ``%24filter=A%20eq%20%27x%20y%27``."""
    return urlencode(params, quote_via=quote, safe="")


def with_query(url: str, params: Mapping[str, str] | None) -> str:
    """``url`` with ``params`` appended to whatever query it already has; unchanged without params."""
    if not params:
        return url
    if "?" not in url:
        return f"{url}?{encode_query(params)}"
    separator = "" if url.endswith(("?", "&")) else "&"
    return f"{url}{separator}{encode_query(params)}"
