"""Pure ERP.net Domain API client (no Airflow import): tokens, paging, literals, metadata."""

from __future__ import annotations

from .client import ErpNetClient
from .errors import (
    ErpNetApiError,
    ErpNetAuthError,
    ErpNetConfigError,
    ErpNetError,
    ErpNetIncompleteError,
    ErpNetTransportError,
)
from .literals import in_list, literal, reference
from .metadata import (
    EnumTypeInfo,
    NavigationInfo,
    PropertyInfo,
    ServiceMetadata,
    StructuredType,
    parse_metadata,
)
from .odata import ODataQuery, Page
from .settings import ErpNetSettings

__all__ = [
    "EnumTypeInfo",
    "ErpNetApiError",
    "ErpNetAuthError",
    "ErpNetClient",
    "ErpNetConfigError",
    "ErpNetError",
    "ErpNetIncompleteError",
    "ErpNetSettings",
    "ErpNetTransportError",
    "NavigationInfo",
    "ODataQuery",
    "Page",
    "PropertyInfo",
    "ServiceMetadata",
    "StructuredType",
    "in_list",
    "literal",
    "parse_metadata",
    "reference",
]
