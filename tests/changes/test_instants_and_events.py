"""Instants at tick precision, change events and the windows they ask for (no server needed)."""

from __future__ import annotations

import datetime as dt

import pytest

from airflow_provider_erpnet.changes.events import ChangeEvent, is_change_payload, window_of
from airflow_provider_erpnet.changes.instants import (
    format_instant,
    from_datetime,
    parse_instant,
    to_datetime,
)
from airflow_provider_erpnet.client.errors import ErpNetConfigError

UTC = dt.timezone.utc


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-06-30T10:15:00Z", "2026-06-30T10:15:00Z"),
        ("2026-06-30T10:15:00.1234567Z", "2026-06-30T10:15:00.1234567Z"),
        ("2026-06-30T10:15:00.123456789Z", "2026-06-30T10:15:00.1234567Z"),  # beyond ticks: dropped
        ("2026-06-30T12:15:00.5+02:00", "2026-06-30T10:15:00.5Z"),
        ("2026-06-30 10:15:00+00:00", "2026-06-30T10:15:00Z"),  # str(datetime), a rendered template
        ("2026-06-30T10:15", "2026-06-30T10:15:00Z"),  # no zone: UTC, as ERP.net writes
        ("1969-12-31T23:59:59.9999999Z", "1969-12-31T23:59:59.9999999Z"),
    ],
)
def test_instants_read_and_write_every_digit(text: str, expected: str) -> None:
    ticks = parse_instant(text)
    assert format_instant(ticks) == expected
    assert parse_instant(format_instant(ticks)) == ticks


def test_bad_instants_name_the_value() -> None:
    with pytest.raises(ErpNetConfigError, match=r"since must be an ISO 8601 .* got 'yesterday'"):
        parse_instant("yesterday", what="since")
    with pytest.raises(ErpNetConfigError, match="not a valid date-time"):
        parse_instant("2026-02-30T00:00:00Z")
    with pytest.raises(ErpNetConfigError, match="no time zone"):
        from_datetime(dt.datetime(2026, 1, 1))


def test_datetimes_round_down_or_up_to_the_microsecond() -> None:
    ticks = parse_instant("2026-06-30T10:15:00.1234567Z")
    assert to_datetime(ticks) == dt.datetime(2026, 6, 30, 10, 15, 0, 123456, tzinfo=UTC)
    assert to_datetime(ticks, round_up=True) == dt.datetime(2026, 6, 30, 10, 15, 0, 123457, tzinfo=UTC)
    whole = from_datetime(dt.datetime(2026, 6, 30, 12, 15, tzinfo=dt.timezone(dt.timedelta(hours=2))))
    assert (
        to_datetime(whole, round_up=True)
        == to_datetime(whole)
        == dt.datetime(2026, 6, 30, 10, 15, tzinfo=UTC)
    )


def event(since: str, newest: str, count: int = 1, column: str = "AggregateLastUpdateTimeUtc") -> ChangeEvent:
    return ChangeEvent(
        erpnet_conn_id="erpnet_default",
        entity_set="Crm_Sales_SalesOrders",
        column=column,
        since=parse_instant(since),
        newest=parse_instant(newest),
        count=count,
        overlap=dt.timedelta(minutes=5),
    )


def test_an_event_payload_is_plain_json_and_reads_back() -> None:
    first = event("2026-07-01T08:00:00Z", "2026-07-01T08:30:00.0000001Z", 4)
    payload = first.to_payload()
    assert payload == {
        "kind": "erpnet.changes",
        "erpnet_conn_id": "erpnet_default",
        "entity_set": "Crm_Sales_SalesOrders",
        "column": "AggregateLastUpdateTimeUtc",
        "count": 4,
        "since": "2026-07-01T08:00:00Z",
        "newest": "2026-07-01T08:30:00.0000001Z",
        "from": "2026-07-01T07:55:00Z",
        "to": "2026-07-01T08:30:00.0000001Z",
        "overlap_seconds": 300.0,
    }
    assert is_change_payload(payload) and not is_change_payload({"count": 4})
    assert ChangeEvent.from_payload(payload) == first
    assert format_instant(first.next_since) == "2026-07-01T08:30:00.0000002Z"
    with pytest.raises(ErpNetConfigError, match=r"Not an ERP\.net change event"):
        ChangeEvent.from_payload({"count": 4})


def test_consecutive_events_make_one_window_that_holds_their_newest_rows() -> None:
    first = event("2026-07-01T08:00:00Z", "2026-07-01T08:30:00.0000001Z")
    second = event(format_instant(first.next_since), "2026-07-01T09:10:00Z")
    window = window_of([second, first])
    assert window.start == dt.datetime(2026, 7, 1, 7, 55, tzinfo=UTC)
    assert window.end == dt.datetime(2026, 7, 1, 9, 10, tzinfo=UTC)
    assert window_of([first]).end == dt.datetime(2026, 7, 1, 8, 30, 0, 1, tzinfo=UTC)  # rounded up
    assert window.filter() == (
        "AggregateLastUpdateTimeUtc ge 2026-07-01T07:55:00Z "
        "and AggregateLastUpdateTimeUtc le 2026-07-01T09:10:00Z"
    )
    with pytest.raises(ErpNetConfigError, match="different columns"):
        window_of([first, event("2026-07-01T08:00:00Z", "2026-07-01T08:00:00Z", column="CreationTime")])
    with pytest.raises(ErpNetConfigError, match="No change events"):
        window_of([])
