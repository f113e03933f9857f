"""Rows updated between two hourly runs: the later window carries the new versions, and merging
the windows by Id keeps every row's latest version exactly once (docs/operator.md, "Merging
windows downstream"). The updates are real: `Sandbox.touch` changes the served data.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from airflow.sdk.execution_time.context import OutletEventAccessors

from airflow_provider_erpnet.io import iter_records
from airflow_provider_erpnet.io.convert import parse_timestamp
from airflow_provider_erpnet.operators.odata import ErpNetODataOperator

ORDERS = "Crm_Sales_SalesOrders"
STAMP = "AggregateLastUpdateTimeUtc"
UTC = dt.timezone.utc
HOUR = dt.timedelta(hours=1)
OVERLAP = dt.timedelta(minutes=5)
W1 = dt.datetime(2026, 6, 28, 10, tzinfo=UTC)  # in the last week, where every hour holds orders
W2 = W1 + HOUR
MOVED_TO = W2 + dt.timedelta(minutes=30)


def extract(start: dt.datetime, target: Path) -> dict[str, Any]:
    """One hourly run of the operator, as the scheduler would start it for [start, start + 1 h]."""
    operator = ErpNetODataOperator(
        task_id="orders", entity_set=ORDERS, incremental_column=STAMP, output_path=str(target)
    )
    context = {
        "data_interval_start": start,
        "data_interval_end": start + HOUR,
        "outlet_events": OutletEventAccessors(),
    }
    return operator.execute(context)


def stamp(row: dict[str, Any]) -> dt.datetime:
    return parse_timestamp(row[STAMP])


def test_updates_between_runs_reach_the_later_window_and_merge_to_the_latest(
    erpnet_sandbox_factory, monkeypatch, tmp_path: Path
) -> None:
    sandbox = erpnet_sandbox_factory(scale=20_000)  # 10,000 orders, about a dozen per recent hour
    monkeypatch.setenv("AIRFLOW_CONN_ERPNET_DEFAULT", sandbox.connection_json())
    orders = sandbox.dataset.rows(ORDERS)

    first = extract(W1, tmp_path / "w1.jsonl")
    w1_ids = [record["Id"] for record in iter_records(first)]
    assert w1_ids == [r["Id"] for r in orders if W1 - OVERLAP <= stamp(r) <= W1 + HOUR]
    assert len(w1_ids) >= 5

    outside = [r["Id"] for r in orders if not W1 - OVERLAP <= stamp(r) <= W2 + HOUR][:2]
    moved = w1_ids[:3]
    before = {r["Id"]: r for r in orders if r["Id"] in {*moved, *outside}}
    assert sandbox.touch(ORDERS, [*moved, *outside], MOVED_TO) == 5

    second = extract(W2, tmp_path / "w2.jsonl")
    w2 = {record["Id"]: record for record in iter_records(second)}
    assert second["rows"] == second["server_count"] == len(w2)
    for ident, old in before.items():
        assert w2[ident][STAMP] == MOVED_TO
        assert w2[ident]["ObjectVersion"] == old["ObjectVersion"] + 1
        assert w2[ident]["DocumentNo"] == old["DocumentNo"]

    latest: dict[str, dict[str, Any]] = {}
    for manifest in (first, second):
        for record in iter_records(manifest):
            kept = latest.get(record["Id"])
            if kept is None or (record[STAMP], record["ObjectVersion"]) > (
                kept[STAMP],
                kept["ObjectVersion"],
            ):
                latest[record["Id"]] = record
    current = {r["Id"]: r for r in orders if W1 - OVERLAP <= stamp(r) <= W2 + HOUR}
    current.update({r["Id"]: r for r in orders if r["Id"] in before})
    assert sorted(latest) == sorted(current)
    for ident, record in latest.items():
        row = current[ident]
        assert (record[STAMP], record["ObjectVersion"]) == (stamp(row), row["ObjectVersion"]), ident

    rerun = extract(W1, tmp_path / "w1-again.jsonl")
    assert [record["Id"] for record in iter_records(rerun)] == [i for i in w1_ids if i not in moved]
    assert sandbox.stats()["rows_touched"] == 5
