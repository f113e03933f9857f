"""Where the generated data ends: now for a developer's sandbox, a fixed instant for tests."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from airflow_provider_erpnet.sandbox import FIXED_DATA_END, Sandbox
from airflow_provider_erpnet.sandbox import model as m
from airflow_provider_erpnet.sandbox.__main__ import DEFAULT_SCALE, build_parser
from airflow_provider_erpnet.sandbox.data import BOUNDARY_INSTANTS, Dataset, iso_datetime

UTC = dt.timezone.utc
STAMP = "AggregateLastUpdateTimeUtc"
STAMPS = ("CreationTime", "UpdateTime", STAMP)
DERIVED = ("DocumentDate", "PaymentDueDate", "RequiredDeliveryDate")  # days before or after the stamp


def _seconds(wire: str) -> int:
    return int(dt.datetime.fromisoformat(wire.replace("Z", "+00:00")).timestamp())


def test_another_end_shifts_every_generated_stamp_and_leaves_other_values_alone() -> None:
    end = dt.datetime(2026, 12, 1, 16, 7, 33, 250_000, tzinfo=UTC)
    shift = int((end.replace(microsecond=0) - FIXED_DATA_END).total_seconds())
    fixed, moved = Dataset(300), Dataset(300, end=end)
    assert moved.end == end.replace(microsecond=0)
    fixed_edges = {iso_datetime(instant) for instant in BOUNDARY_INSTANTS}
    for name in (m.CUSTOMERS, m.SALES_ORDERS, m.PRODUCTS):
        for before, after in zip(fixed.rows(name), moved.rows(name), strict=True):
            if before[STAMP] in fixed_edges:  # the deliberate edge-case instants stay put
                assert after == before
                continue
            for field in STAMPS:
                if field in before and before[field] is not None:
                    assert _seconds(after[field]) - _seconds(before[field]) == shift, field
            unchanged = {k: v for k, v in before.items() if k not in (*STAMPS, *DERIVED)}
            assert {k: after[k] for k in unchanged} == unchanged
        assert max(row[STAMP] for row in moved.rows(name)) <= iso_datetime(int(moved.end.timestamp()))


def test_an_end_must_be_aware_and_after_the_fixed_edge_cases() -> None:
    with pytest.raises(ValueError, match="aware"):
        Dataset(10, end=dt.datetime(2026, 12, 1))
    with pytest.raises(ValueError, match="2026-03-29T01:00:00"):
        Dataset(10, end=dt.datetime(2025, 1, 1, tzinfo=UTC))
    parser = build_parser()
    assert parser.parse_args([]).data_end is None  # now
    assert parser.parse_args(["--data-end", "2026-06-30T23:59:59Z"]).data_end == FIXED_DATA_END
    for bad in ("yesterday", "2026-06-30T23:59:59", "2020-01-01T00:00:00Z"):
        with pytest.raises(SystemExit):
            parser.parse_args(["--data-end", bad])


def test_a_sandbox_ends_now_and_the_fixtures_at_the_fixed_end(erpnet_sandbox: Sandbox) -> None:
    assert erpnet_sandbox.dataset.end == FIXED_DATA_END
    before = dt.datetime.now(UTC).replace(microsecond=0)
    with Sandbox(scale=10) as sandbox:
        assert before <= sandbox.dataset.end <= dt.datetime.now(UTC)


def test_at_the_cli_default_scale_every_hour_of_the_last_week_holds_orders_and_customers() -> None:
    """Gaps between consecutive update stamps stay under an hour; shifting the end keeps the gaps."""
    dataset = Dataset(DEFAULT_SCALE)
    end = int(dataset.end.timestamp())
    week_start = end - 7 * 86_400
    for name in (m.SALES_ORDERS, m.CUSTOMERS):
        stamps = sorted(s for s in map(_seconds, dataset.values(name, STAMP)) if s >= week_start)
        edges = [week_start, *stamps, end]
        assert max(b - a for a, b in itertools.pairwise(edges)) < 3600, name
