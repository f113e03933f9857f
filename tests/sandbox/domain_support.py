"""Helpers for the Domain API tests: call `DomainService.handle` directly and decode like a client."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlsplit

from airflow_provider_erpnet.sandbox.domain import DomainResponse, DomainService

BASE = "http://127.0.0.1:8765/api/domain/odata/"
READ = frozenset({"read"})


def call(
    service: DomainService, path: str, query: str = "", *, scopes: frozenset[str] = READ
) -> DomainResponse:
    return service.handle("GET", path, query, base_url=BASE, scopes=scopes)


def decode(response: DomainResponse) -> Any:
    """JSON with non-integer numbers as Decimal, the way the client decodes it."""
    return json.loads(response.body, parse_float=Decimal)


def query(**options: str) -> str:
    """`query(top="5", filter="A eq 1")` -> `$top=5&$filter=A%20eq%201` (percent-encoded like a client)."""
    return "&".join(f"%24{name}={quote(value, safe='')}" for name, value in options.items())


def get_json(service: DomainService, path: str, raw_query: str = "") -> Any:
    response = call(service, path, raw_query)
    assert response.status == 200, response.body[:500]
    return decode(response)


def follow(service: DomainService, path: str, raw_query: str) -> list[dict[str, Any]]:
    """Every page of a collection by following @odata.nextLink; returns the pages' bodies."""
    pages = []
    while True:
        page = get_json(service, path, raw_query)
        pages.append(page)
        link = page.get("@odata.nextLink")
        if link is None:
            return pages
        assert link.startswith(BASE + path + "?"), link
        raw_query = urlsplit(link).query


def strip_annotations(record: dict[str, Any]) -> dict[str, Any]:
    """A wire record without @odata annotations (also in expanded children), comparable with rows()."""
    out = {}
    for name, value in record.items():
        if name.startswith("@odata."):
            continue
        if isinstance(value, list):
            value = [strip_annotations(child) for child in value]
        out[name] = value
    return out
