"""ERP.net's dialect of OData, and the standard forms a client falls back to.

Two ERP.net forms are sent by default because ERP.net documents them:

* ``$select=default,Id``: the server's default attributes plus named ones. A standard OData v4
  server answers 400 (no property ``default``); the fallback sends no ``$select`` at all, which
  a standard server answers with every structural property, a superset of what was asked.
* date literals with a zone, ``2020-01-01Z``. A standard server reads ``2020-01-01`` only; the
  fallback rewrites the dates of ``$filter`` (never the inside of string literals).

A ``Dialect`` belongs to one client (one connection, one run): the first request that a server
refuses for one of these forms is retried once in the standard form, and if that succeeds the
choice is kept for every later request; if it fails as well, that error is raised and nothing is
remembered.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import TypeVar

from .errors import ErpNetApiError

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_SELECT = "default"
_DATE_WITH_ZONE = re.compile(r"(?<![\w:.-])(\d{4}-\d\d-\d\d)Z(?![\w:.-])")
_STRING_LITERAL = re.compile(r"'(?:[^']|'')*'")
_MENTIONS_DEFAULT = re.compile(r"\bdefault\b", re.IGNORECASE)


class Dialect:
    """Which of ERP.net's forms the server accepts; both are assumed until it refuses one."""

    def __init__(self) -> None:
        self.default_select = True
        self.zoned_dates = True

    def rewrite(self, params: Mapping[str, str]) -> dict[str, str]:
        """Query options as this server reads them."""
        options = dict(params)
        if not self.default_select and DEFAULT_SELECT in select_names(options.get("$select")):
            del options["$select"]
        if not self.zoned_dates and options.get("$filter"):
            options["$filter"] = standard_dates(options["$filter"])
        return options

    def send(self, request: Callable[[Mapping[str, str] | None], T], params: Mapping[str, str] | None) -> T:
        """``request(options)``, retried in the standard form when the server refuses ERP.net's.

        ``params`` None (a next link sent verbatim) is passed through untouched.
        """
        if params is None:
            return request(None)
        learnt: list[tuple[str, str]] = []
        while True:
            options = self.rewrite(params)
            try:
                answer = request(options)
            except ErpNetApiError as error:
                fallback = self._fallback_for(error, options)
                if fallback is None:
                    for name, _ in learnt:  # the standard form did not help either: learn nothing
                        setattr(self, name, True)
                    raise
                setattr(self, fallback, False)
                learnt.append((fallback, error.server_message or "no message"))
                continue
            for name, said in learnt:
                log.info(_LEARNT[name], said)
            return answer

    def _fallback_for(self, error: ErpNetApiError, options: Mapping[str, str]) -> str | None:
        """The attribute to switch off for a 400 that an ERP.net form may explain, or None."""
        if error.status != 400:
            return None
        message = error.server_message
        blames_default = message is None or _MENTIONS_DEFAULT.search(message) is not None
        if self.default_select and blames_default and DEFAULT_SELECT in select_names(options.get("$select")):
            return "default_select"
        if self.zoned_dates and _DATE_WITH_ZONE.search(_outside_strings(options.get("$filter") or "")):
            return "zoned_dates"
        return None


_LEARNT = {
    "default_select": "The Domain API refused ERP.net's $select=default (it said: %s); reading without "
    "$select instead, which a standard OData server answers with every structural property.",
    "zoned_dates": "The Domain API refused ERP.net's date literals such as 2020-01-01Z (it said: %s); "
    "sending standard dates such as 2020-01-01 for the rest of this run.",
}


def select_names(select: str | None) -> list[str]:
    """The names of a ``$select`` value."""
    return [name.strip() for name in (select or "").split(",") if name.strip()]


def standard_dates(filter_text: str) -> str:
    """``2020-01-01Z`` -> ``2020-01-01`` outside string literals; date-times keep their ``Z``."""
    pieces: list[str] = []
    position = 0
    for literal in _STRING_LITERAL.finditer(filter_text):
        pieces.append(_DATE_WITH_ZONE.sub(r"\1", filter_text[position : literal.start()]))
        pieces.append(literal.group())
        position = literal.end()
    pieces.append(_DATE_WITH_ZONE.sub(r"\1", filter_text[position:]))
    return "".join(pieces)


def _outside_strings(filter_text: str) -> str:
    return _STRING_LITERAL.sub("''", filter_text)
