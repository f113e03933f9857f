"""In-run dedupe: free while Ids arrive in order, exact (latest copy wins) when they do not."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_erpnet.client.errors import ErpNetConfigError
from airflow_provider_erpnet.io.dedupe import (
    Deduper,
    SpooledDeduper,
    sql_server_order,
    version_key,
    without,
)

T = "AggregateLastUpdateTimeUtc"


def _ids(n: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    return [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(n)]


def _untouchable() -> Iterator[dict[str, Any]]:
    raise AssertionError("resolve() read the written rows although the Ids were in order")
    yield {}


@pytest.mark.parametrize("order", [str, sql_server_order], ids=["text order", "SQL Server order"])
def test_ids_in_either_server_order_cost_nothing(order: Any) -> None:
    ids = sorted(_ids(5000), key=order)
    deduper = Deduper(T)
    for start in range(0, len(ids), 1000):
        deduper.observe(
            [{"Id": ident.upper(), T: "2025-09-01T00:00:00Z"} for ident in ids[start : start + 1000]]
        )
    assert deduper.ordered
    assert deduper.rows == 5000
    assert deduper._tail == {}  # nothing kept per row
    assert deduper.resolve(_untouchable()) == set()


def test_sql_server_order_compares_the_last_group_first() -> None:
    low_tail = "ffffffff-ffff-ffff-ffff-000000000000"
    high_tail = "00000000-0000-0000-0000-000000000001"
    assert sql_server_order(low_tail) < sql_server_order(high_tail)
    # Within group 3 the low byte (last two hex digits) counts first, as .NET stores it.
    high_first, low_first = "00000000-0000-ff00-0000-000000000000", "00000000-0000-0001-0000-000000000000"
    assert high_first > low_first
    assert sql_server_order(high_first) < sql_server_order(low_first)


@pytest.fixture(params=["in memory", "spooled"])
def spooled(request: pytest.FixtureRequest, tmp_path: Path) -> Path | None:
    """Each decision is checked with ``Deduper`` and with ``SpooledDeduper`` (a SQLite file)."""
    return tmp_path if request.param == "spooled" else None


def _run(
    rows: list[dict[str, Any]], version_field: str | None, page: int = 3, spool: Path | None = None
) -> list[dict[str, Any]]:
    if spool is not None:
        path = spool / f"ids-{uuid.uuid4().hex}.sqlite"
        with SpooledDeduper(path, version_field) as spooled:
            for start in range(0, len(rows), page):
                spooled.observe(rows[start : start + page])
            assert spooled.rows == len(rows)
            return list(without(rows, spooled.superseded()))
    deduper = Deduper(version_field)
    for start in range(0, len(rows), page):
        deduper.observe(rows[start : start + page])
    return list(without(rows, deduper.resolve(iter(rows))))


def test_newer_later_copy_replaces_a_copy_already_written(spooled: Path | None) -> None:
    a, b, c = sorted(_ids(3))
    rows = [
        {"Id": a, T: "2025-09-01T10:00:00Z", "n": 1},
        {"Id": b, T: "2025-09-01T10:00:00Z", "n": 2},
        {"Id": c, T: "2025-09-01T10:00:00Z", "n": 3},
        {"Id": a, T: "2025-09-01T10:30:00.1234567+00:00", "n": 4},  # out of order: a < c
    ]
    assert [row["n"] for row in _run(rows, T, spool=spooled)] == [2, 3, 4]


def test_older_later_copy_is_dropped(spooled: Path | None) -> None:
    a, b = sorted(_ids(2))
    rows = [
        {"Id": a, T: "2025-09-01T12:00:00+02:00", "n": 1},  # 10:00 UTC
        {"Id": b, T: "2025-09-01T09:00:00Z", "n": 2},
        {"Id": a, T: "2025-09-01T09:59:59Z", "n": 3},
    ]
    assert [row["n"] for row in _run(rows, T, spool=spooled)] == [1, 2]


def test_without_version_column_the_last_copy_wins(spooled: Path | None) -> None:
    a, b = sorted(_ids(2))
    rows = [{"Id": a, "n": 1}, {"Id": b, "n": 2}, {"Id": a, "n": 3}, {"Id": a, "n": 4}, {"Id": b, "n": 5}]
    assert [row["n"] for row in _run(rows, None, page=2, spool=spooled)] == [4, 5]


def test_matches_a_brute_force_reference_on_random_streams(spooled: Path | None) -> None:
    rng = random.Random(7)
    ids = _ids(40, seed=3)
    base = dt.datetime(2025, 9, 1, tzinfo=dt.timezone.utc)
    for _ in range(200):
        rows = []
        for n in range(rng.randint(1, 60)):
            stamp = base + dt.timedelta(minutes=rng.randint(0, 5))
            value = stamp.isoformat() if rng.random() < 0.5 else stamp  # text or datetime, as written
            rows.append({"Id": rng.choice(ids), T: None if rng.random() < 0.1 else value, "n": n})
        expected: dict[str, tuple[Any, int]] = {}
        for position, row in enumerate(rows):
            key = (version_key(row[T]), position)
            if row["Id"] not in expected or key > expected[row["Id"]]:
                expected[row["Id"]] = key
        assert sorted(row["n"] for row in _run(rows, T, page=rng.randint(1, 7), spool=spooled)) == sorted(
            position for _, position in expected.values()
        )


def test_record_without_id(tmp_path: Path) -> None:
    with pytest.raises(ErpNetConfigError, match="keep Id in \\$select"):
        Deduper().observe([{"Number": "1"}])
    with (
        SpooledDeduper(tmp_path / "ids.sqlite") as spooled,
        pytest.raises(ErpNetConfigError, match="keep Id"),
    ):
        spooled.observe([{"Number": "1"}])


def test_version_keys() -> None:
    assert version_key(None) < version_key("2020-01-01T00:00:00Z")
    assert version_key("2025-09-01T10:00:00.9999999Z") == version_key(
        dt.datetime(2025, 9, 1, 10, 0, 0, 999999, tzinfo=dt.timezone.utc)
    )
    assert version_key("2025-09-01T12:00:00+02:00") == version_key("2025-09-01T10:00:00Z")
    assert version_key(dt.datetime(2025, 9, 1)) == version_key("2025-09-01T00:00:00Z")
