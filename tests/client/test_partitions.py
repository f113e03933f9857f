"""The partition planner: balanced, disjoint ranges that cover every row, now and after creations.

Against the sandbox (Id ranges in text order, CreationTime), and against an in-memory server that
compares GUIDs the way SQL Server does or refuses Id ranges, to reach the other branches.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import uuid
from collections.abc import Callable

import pytest

from airflow_provider_erpnet.client import ErpNetClient
from airflow_provider_erpnet.client.errors import ErpNetApiError, ErpNetConfigError, ErpNetIncompleteError
from airflow_provider_erpnet.client.partitions import (
    SQL_SERVER_ORDER,
    TEXT_ORDER,
    Partition,
    as_partition,
    check_plan,
    plan_partitions,
)
from airflow_provider_erpnet.sandbox import Sandbox

CUSTOMERS = "Crm_Sales_Customers"


def ids_of(client: ErpNetClient, partition: Partition, base: str | None = None) -> list[str]:
    text = " and ".join(f"({f})" for f in (base, partition.filter) if f) or None
    return [r["Id"] for r in client.iter_records(CUSTOMERS, filter=text, select="Id")]


def assert_exact_cover(client: ErpNetClient, plan: list[Partition], expected: list[str], base=None) -> None:
    seen = [ids_of(client, p, base) for p in plan]
    flat = [ident for part in seen for ident in part]
    assert len(flat) == len(set(flat)), "a row is in two partitions"
    assert sorted(flat) == sorted(expected), "a row is in no partition"


@pytest.mark.parametrize("n", [1, 2, 5, 8])
def test_id_partitions_are_balanced_and_cover_each_row_once(
    erpnet_sandbox_factory: Callable[..., Sandbox], sandbox_settings_for, n: int
) -> None:
    sandbox = erpnet_sandbox_factory(scale=6000)
    with ErpNetClient(sandbox_settings_for(sandbox)) as client:
        plan = client.plan_partitions(CUSTOMERS, n)
        assert [(p.index, p.of, p.column) for p in plan] == [(i, n, "Id") for i in range(n)]
        assert len({p.plan for p in plan}) == 1 and plan[0].plan
        assert sum(p.count for p in plan) == plan[0].total == 6000
        ideal = 6000 / n
        assert all(abs(p.count - ideal) <= 0.15 * ideal for p in plan), [p.count for p in plan]
        if n > 1:
            assert plan[0].lower is None and plan[-1].upper is None  # open ends: nothing falls outside
        assert_exact_cover(client, plan, [row["Id"] for row in sandbox.dataset.rows(CUSTOMERS)])
        assert [len(ids_of(client, p)) for p in plan] == [p.count for p in plan]


def test_rows_created_after_planning_fall_into_exactly_one_partition(
    erpnet_sandbox_factory: Callable[..., Sandbox], sandbox_settings_for
) -> None:
    sandbox = erpnet_sandbox_factory(scale=3000)
    with ErpNetClient(sandbox_settings_for(sandbox)) as client:
        plan = client.plan_partitions(CUSTOMERS, 6)
        created = sandbox.create(CUSTOMERS, 60)
        now = [row["Id"] for row in sandbox.dataset.rows(CUSTOMERS)]
        assert_exact_cover(client, plan, now)
        receiving = {p.index for p in plan for ident in ids_of(client, p) if ident in created}
        assert len(receiving) > 2, "new rows should spread over several partitions"


def test_a_filter_is_part_of_every_count(
    erpnet_sandbox_factory: Callable[..., Sandbox], sandbox_settings_for
) -> None:
    sandbox = erpnet_sandbox_factory(scale=4000)
    active = "Active eq true"
    with ErpNetClient(sandbox_settings_for(sandbox)) as client:
        plan = client.plan_partitions(CUSTOMERS, 3, filter=active)
        expected = [row["Id"] for row in sandbox.dataset.rows(CUSTOMERS) if row["Active"]]
        assert plan[0].total == sum(p.count for p in plan) == len(expected) < 4000
        assert {p.base_filter for p in plan} == {active}
        assert_exact_cover(client, plan, expected, base=active)


def test_creation_time_partitions_need_a_way_to_select_nulls(
    erpnet_sandbox_factory: Callable[..., Sandbox], sandbox_settings_for
) -> None:
    sandbox = erpnet_sandbox_factory(scale=3000)
    dated = "CreationTime ge 1900-01-01T00:00:00Z"
    with ErpNetClient(sandbox_settings_for(sandbox)) as client:
        # The sandbox, like ERP.net's documentation, allows only ge/le on CreationTime: no 'eq null'.
        with pytest.raises(ErpNetConfigError, match=r"row\(s\) have no CreationTime .* partition by Id"):
            client.plan_partitions(CUSTOMERS, 4, by="CreationTime")
        plan = client.plan_partitions(CUSTOMERS, 4, by="CreationTime", filter=dated)
        assert [p.column for p in plan] == ["CreationTime"] * 4 and not any(p.nulls for p in plan)
        assert re.fullmatch(r"CreationTime le \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.9999999Z", plan[0].filter)
        expected = [r["Id"] for r in sandbox.dataset.rows(CUSTOMERS) if r["CreationTime"] is not None]
        assert_exact_cover(client, plan, expected, base=dated)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"partitions": 0}, "partitions must be a whole number >= 1"),
        ({"partitions": True}, "partitions must be a whole number >= 1"),
        ({"partitions": 2, "by": "UpdateTime"}, "no edit changes"),
    ],
)
def test_bad_arguments_are_refused_before_any_request(kwargs: dict, needle: str) -> None:
    def no_server(*_: object) -> int:
        raise AssertionError("no request expected")

    with pytest.raises(ErpNetConfigError, match=needle):
        plan_partitions(no_server, no_server, CUSTOMERS, **kwargs)


# An in-memory server: random GUIDs, $count over `Id ge/le` (and CreationTime) ANDed together.


class FakeServer:
    def __init__(self, rows: int, *, order=TEXT_ORDER, id_ranges: bool = True, nulls_selectable=True) -> None:
        rng = random.Random(7)
        self.ids = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(rows)]
        self.keys = {ident: order.key(ident) for ident in self.ids}
        stamps = [None if i % 10 == 0 else 1_600_000_000 + i * 37 for i in range(rows)]
        self.created = dict(zip(self.ids, stamps, strict=True))
        self.order = order
        self.id_ranges = id_ranges
        self.nulls_selectable = nulls_selectable

    def count(self, text: str | None) -> int:
        tests = self._tests(text or "")
        return sum(1 for ident in self.ids if all(test(ident) for test in tests))

    def matches(self, ident: str, text: str | None) -> bool:
        return all(test(ident) for test in self._tests(text or ""))

    def sample(self, orderby: str) -> list[str]:
        return sorted(self.ids, key=self.keys.get, reverse=orderby.endswith("desc"))[:100]

    def _tests(self, text: str) -> list[Callable[[str], bool]]:
        """One predicate per `<column> ge|le|eq <literal>`; other conditions match every row."""
        tests: list[Callable[[str], bool]] = []
        for column, op, value in re.findall(r"(\w+) (ge|le|eq) ([\w:.-]+)", text):
            if column == "Id":
                if not self.id_ranges:
                    raise ErpNetApiError("refused", status=500)
                tests.append(_compare(self.keys.get, op, self.order.key(value)))
            elif column == "CreationTime" and value == "null":
                if not self.nulls_selectable:
                    raise ErpNetApiError("refused", status=400)
                tests.append(lambda ident: self.created[ident] is None)
            elif column == "CreationTime":
                tests.append(_compare(self.created.get, op, _epoch(value)))
        return tests


def _compare(key: Callable[[str], int | None], op: str, bound: float) -> Callable[[str], bool]:
    if op == "ge":
        return lambda ident: (value := key(ident)) is not None and value >= bound
    return lambda ident: (value := key(ident)) is not None and value <= bound


def _epoch(text: str) -> float:
    return dt.datetime.fromisoformat(text.rstrip("Z")[:26]).replace(tzinfo=dt.timezone.utc).timestamp()


def fake_plan(server: FakeServer, n: int, **kwargs) -> list[Partition]:
    return plan_partitions(
        server.count, server.sample, CUSTOMERS, n, properties=["Id", "CreationTime"], **kwargs
    )


def covered_once(server: FakeServer, plan: list[Partition]) -> bool:
    owners = [[p.index for p in plan if server.matches(ident, p.filter)] for ident in server.ids]
    return all(len(found) == 1 for found in owners)


def test_guid_orders_round_trip_and_sql_server_compares_the_last_group_first() -> None:
    ident = "00112233-4455-6677-8899-aabbccddeeff"
    for order in (TEXT_ORDER, SQL_SERVER_ORDER):
        assert order.guid(order.key(ident)) == ident
    assert SQL_SERVER_ORDER.key(ident).to_bytes(16, "big").hex() == "aabbccddeeff8899776655443322110" + "0"
    low, high = "ffffffff-ffff-ffff-ffff-000000000000", "00000000-0000-0000-0000-000000000001"
    assert SQL_SERVER_ORDER.key(low) < SQL_SERVER_ORDER.key(high)
    assert TEXT_ORDER.key(low) > TEXT_ORDER.key(high)


def test_a_server_that_sorts_guids_like_sql_server_gets_ranges_in_its_order() -> None:
    server = FakeServer(2000, order=SQL_SERVER_ORDER)
    plan = fake_plan(server, 7)
    assert sum(p.count for p in plan) == 2000 and covered_once(server, plan)
    assert all(abs(p.count - 2000 / 7) <= 0.15 * 2000 / 7 for p in plan)


def test_without_an_id_order_sample_the_counts_pick_the_order_that_adds_up() -> None:
    server = FakeServer(1500, order=SQL_SERVER_ORDER)
    server.sample = lambda orderby: (_ for _ in ()).throw(ErpNetApiError("no $orderby", status=400))
    plan = fake_plan(server, 4)
    assert covered_once(server, plan) and sum(p.count for p in plan) == 1500


def test_a_server_refusing_id_ranges_gets_creation_time_ranges_and_a_null_partition() -> None:
    server = FakeServer(1000, id_ranges=False)
    plan = fake_plan(server, 5)
    assert [p.column for p in plan] == ["CreationTime"] * 5
    assert plan[-1].nulls and plan[-1].filter == "CreationTime eq null" and plan[-1].count == 100
    assert covered_once(server, plan) and sum(p.count for p in plan) == 1000
    with pytest.raises(ErpNetConfigError, match="cannot partition by Id: the server refuses ge/le on Id"):
        fake_plan(server, 3, by="Id")
    no_nulls = FakeServer(1000, id_ranges=False, nulls_selectable=False)
    with pytest.raises(ErpNetConfigError, match="100 row"):
        fake_plan(no_nulls, 3)


def test_partitions_round_trip_through_their_dict_form() -> None:
    server = FakeServer(300)
    plan = fake_plan(server, 3, filter="Active eq true")
    for partition in plan:
        data = partition.to_dict()
        assert data["filter"] == partition.filter
        assert as_partition(data) == partition == as_partition(partition)
    assert plan[1].label == "part-002-of-003"
    with pytest.raises(ErpNetConfigError, match="missing entity_set"):
        as_partition({"column": "Id", "index": 0, "of": 1})
    with pytest.raises(ErpNetConfigError, match=r"outside 0\.\.2"):
        as_partition({**plan[0].to_dict(), "index": 3})
    with pytest.raises(ErpNetConfigError, match="pass the planning task's output"):
        as_partition("Id le 5")  # type: ignore[arg-type]


def test_check_plan_names_missing_repeated_and_foreign_parts() -> None:
    plan = fake_plan(FakeServer(400), 4)
    check_plan(plan)
    with pytest.raises(ErpNetIncompleteError, match=r"missing 1, 3; repeated 0"):
        check_plan([plan[0], plan[0], plan[2]])
    other = fake_plan(FakeServer(400), 4)
    with pytest.raises(ErpNetConfigError, match="different partition plans"):
        check_plan([*plan[:2], *other[2:]])
