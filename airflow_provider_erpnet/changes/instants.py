"""Instants at the precision ERP.net stores them: 100-ns ticks since 1970, UTC.

``AggregateLastUpdateTimeUtc`` can carry seven fractional digits while a Python ``datetime`` holds
six, so a watermark kept as a ``datetime`` could sit before the newest row it has already seen
and report it again. Change detection keeps instants as integer ticks and converts to
``datetime`` only for windows, rounding the end of a window up so that it still holds its newest row.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re

from airflow_provider_erpnet.client.errors import ErpNetConfigError

TICKS_PER_SECOND = 10_000_000
_TICKS_PER_MICROSECOND = 10
_UTC = dt.timezone.utc
_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|z|[+-]\d{2}:?\d{2})?"
)


def parse_instant(text: str, *, what: str = "instant") -> int:
    """Ticks of an ISO 8601 date-time; ``Z`` or an offset, none meaning UTC (as ERP.net writes).

    Accepts the form ``str(datetime)`` renders (a space instead of ``T``), so templated values such
    as ``{{ data_interval_start }}`` work. Digits beyond the seventh are dropped. ``what`` names the
    value in the error message.
    """
    match = _ISO.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ErpNetConfigError(
            f"{what} must be an ISO 8601 date-time such as 2026-06-30T10:15:00Z, got {text!r}."
        )
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        moment = dt.datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0))
    except ValueError as exc:
        raise ErpNetConfigError(f"{what} {text!r} is not a valid date-time ({exc}).") from None
    offset = 0
    if zone and zone not in ("Z", "z"):
        digits = zone.replace(":", "")
        offset = (int(digits[1:3]) * 3600 + int(digits[3:5]) * 60) * (1 if digits[0] == "+" else -1)
    seconds = calendar.timegm(moment.timetuple()) - offset
    return seconds * TICKS_PER_SECOND + int((fraction or "")[:7].ljust(7, "0"))


def format_instant(ticks: int) -> str:
    """``2026-06-30T10:15:00Z``, with as many fractional digits as the value needs (at most seven).

    The form is both an OData date-time literal and what ``parse_instant`` reads back exactly.
    """
    seconds, fraction = divmod(ticks, TICKS_PER_SECOND)
    text = dt.datetime.fromtimestamp(seconds, _UTC).strftime("%Y-%m-%dT%H:%M:%S")
    digits = f"{fraction:07d}".rstrip("0")
    return f"{text}.{digits}Z" if digits else f"{text}Z"


def from_datetime(moment: dt.datetime) -> int:
    """Ticks of an aware ``datetime``; a naive one is refused, since its zone would be a guess."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ErpNetConfigError(
            f"{moment.isoformat()} has no time zone; attach one (e.g. datetime.timezone.utc)."
        )
    delta = moment - dt.datetime(1970, 1, 1, tzinfo=_UTC)
    return (delta // dt.timedelta(microseconds=1)) * _TICKS_PER_MICROSECOND


def to_datetime(ticks: int, *, round_up: bool = False) -> dt.datetime:
    """An aware UTC ``datetime`` (microseconds): truncated, or rounded up with ``round_up``."""
    micros, rest = divmod(ticks, _TICKS_PER_MICROSECOND)
    if round_up and rest:
        micros += 1
    return dt.datetime(1970, 1, 1, tzinfo=_UTC) + dt.timedelta(microseconds=micros)


def ticks_of(delta: dt.timedelta) -> int:
    """A duration in ticks (microsecond resolution, like ``timedelta``)."""
    return (delta // dt.timedelta(microseconds=1)) * _TICKS_PER_MICROSECOND
