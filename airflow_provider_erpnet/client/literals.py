"""OData v4 literals for ``$filter`` expressions.

DAG authors pass Python values and get correctly quoted, escaped and zoned literals back, so a
quote in a name or a local time never silently changes what a filter selects::

    f"Number eq {literal(number)} and AggregateLastUpdateTimeUtc ge {literal(since)}"
    f"State in {in_list(['Released', 'Completed'])}"
    f"Customer eq {reference('Crm_Sales_Customers', customer_id)}"
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from .errors import ErpNetConfigError
from .odata import check_entity_set

_SUPPORTED = (
    "str, int, decimal.Decimal, float, bool, None, uuid.UUID, datetime.date, "
    "timezone-aware datetime.datetime, enum.Enum"
)


def literal(value: Any) -> str:
    """Format ``value`` as an OData literal.

    ``datetime`` values must carry a timezone: they are converted to UTC and written with ``Z``
    (ERP.net compares date-times in UTC, so a naive value would be ambiguous). A ``date`` is
    written the way ERP.net's documentation writes date literals, ``2020-01-01Z``. ``Decimal`` and
    ``int`` are written with their exact digits; a finite ``float`` is written with the shortest
    digits that round-trip, which may not be the decimal you meant: prefer ``Decimal`` for money.
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return _string(str(value.value))
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime):
        return _datetime(value)
    if isinstance(value, dt.date):
        return f"{value.isoformat()}Z"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return _decimal(value)
    if isinstance(value, float):
        return _decimal(Decimal(repr(value)))
    raise ErpNetConfigError(
        f"Cannot format a value of type {type(value).__qualname__} as an OData literal; "
        f"supported types: {_SUPPORTED}."
    )


def in_list(values: Iterable[Any]) -> str:
    """Format values as the parenthesised list the ``in`` operator takes: ``(1,2,3)``."""
    if isinstance(values, (str, bytes)):
        raise ErpNetConfigError(
            "in_list() takes a list of values, not a single string; wrap it: in_list([value])."
        )
    items = [literal(value) for value in values]
    if not items:
        raise ErpNetConfigError(
            "in_list() got no values; an empty 'in' matches nothing, skip the filter or the query instead."
        )
    return "(" + ",".join(items) + ")"


def reference(entity_set: str, id: str | uuid.UUID) -> str:
    """Format a reference the way ERP.net filters them: ``'Crm_Sales_Customers(<guid>)'``."""
    return _string(f"{check_entity_set(entity_set)}({as_guid(id)})")


def as_guid(id: str | uuid.UUID) -> uuid.UUID:
    """Parse an ERP.net key, so that only a GUID ever reaches a URL or a filter."""
    if isinstance(id, uuid.UUID):
        return id
    try:
        return uuid.UUID(str(id))
    except ValueError:
        raise ErpNetConfigError(f"{id!r} is not a GUID; ERP.net keys look like 'b5d0c3a4-...'.") from None


def _string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _decimal(value: Decimal) -> str:
    if not value.is_finite():
        raise ErpNetConfigError(f"Cannot use {value!r} in an OData filter: only finite numbers exist there.")
    return format(value, "f")


def _datetime(value: dt.datetime) -> str:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ErpNetConfigError(
            f"datetime {value.isoformat()} has no timezone; attach one "
            "(e.g. value.replace(tzinfo=datetime.timezone.utc)) so the filter means what you intend."
        )
    utc = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    timespec = "microseconds" if utc.microsecond else "seconds"
    return utc.isoformat(timespec=timespec) + "Z"
