"""``ErpNetChangeSensor``: wait until rows of an entity set changed, without holding a worker.

Deferrable by default: the waiting happens in Airflow's triggerer (``ErpNetChangesTrigger``), and
the task resumes with the trigger's event. With ``deferrable=False`` it pokes like any sensor.
Either way the task returns the event (``count``, ``newest``, ``since``, the window ``from``/``to``),
so a downstream extraction can read exactly what changed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseSensorOperator, Context, PokeReturnValue

from airflow_provider_erpnet.changes.events import ChangeEvent
from airflow_provider_erpnet.changes.instants import format_instant, from_datetime, parse_instant
from airflow_provider_erpnet.changes.probe import DEFAULT_COLUMN, ChangeProbe
from airflow_provider_erpnet.client.errors import ErpNetConfigError
from airflow_provider_erpnet.hooks.erpnet import ErpNetHook
from airflow_provider_erpnet.triggers.erpnet import (
    DEFAULT_OVERLAP_SECONDS,
    ErpNetChangesTrigger,
    check_min_changes,
)


class ErpNetChangeSensor(BaseSensorOperator):
    """Wait for rows of ``entity_set`` whose ``column`` is at or after ``since``.

    :param entity_set: e.g. ``Crm_Sales_SalesOrders`` (templated).
    :param erpnet_conn_id: an ``erpnet`` connection.
    :param column: the incremental column, ``AggregateLastUpdateTimeUtc`` by default.
    :param since: ISO 8601 instant or aware ``datetime`` (templated); default: the run's
        ``data_interval_start``.
    :param filter: optional ``$filter`` narrowing the rows that count (templated).
    :param min_changes: succeed once at least this many rows changed.
    :param overlap: how far the returned window's ``from`` reaches back before ``since``.
    :param deferrable: wait in the triggerer (default) rather than in a worker slot.

    ``poke_interval`` is the polling interval in both modes; ``timeout`` and ``soft_fail`` work as
    for any sensor (a deferred wait that times out is skipped with ``soft_fail=True``).
    """

    template_fields: Sequence[str] = ("entity_set", "since", "filter")
    ui_color = "#d9ecf2"

    def __init__(
        self,
        *,
        entity_set: str,
        erpnet_conn_id: str = ErpNetHook.default_conn_name,
        column: str = DEFAULT_COLUMN,
        since: str | dt.datetime | None = None,
        filter: str | None = None,
        min_changes: int = 1,
        overlap: dt.timedelta = dt.timedelta(seconds=DEFAULT_OVERLAP_SECONDS),
        deferrable: bool = True,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("poke_interval", 60)
        super().__init__(**kwargs)
        check_min_changes(min_changes)
        self.entity_set = entity_set
        self.erpnet_conn_id = erpnet_conn_id
        self.column = column
        self.since = since
        self.filter = filter
        self.min_changes = min_changes
        self.overlap = overlap
        self.deferrable = deferrable

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        found = self.poke(context)
        if found:
            return found.xcom_value
        self.defer(
            trigger=ErpNetChangesTrigger(
                entity_set=self.entity_set,
                erpnet_conn_id=self.erpnet_conn_id,
                column=self.column,
                since=format_instant(self._since(context)),
                poll_interval=self.poke_interval,
                overlap_seconds=self.overlap.total_seconds(),
                filter=self.filter or None,
                min_changes=self.min_changes,
            ),
            method_name="execute_complete",
            timeout=dt.timedelta(seconds=self.timeout),
        )

    def poke(self, context: Context) -> PokeReturnValue:
        """One check in a worker: a ``$count`` request, two more when rows changed."""
        probe = ChangeProbe(self.entity_set, self.column, self.filter or None)
        hook = ErpNetHook(self.erpnet_conn_id)
        try:
            changes = probe.changes_since(hook.get_conn(), self._since(context))
        finally:
            hook.close()
        if changes is None or changes.count < self.min_changes:
            self.log.info("%s: %d row(s) changed so far.", self.entity_set, changes.count if changes else 0)
            return PokeReturnValue(is_done=False)
        event = ChangeEvent.of(
            changes,
            erpnet_conn_id=self.erpnet_conn_id,
            entity_set=self.entity_set,
            column=self.column,
            overlap=self.overlap,
        )
        return PokeReturnValue(is_done=True, xcom_value=self._report(event))

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Resume after the trigger fired: the event is the task's return value."""
        return self._report(ChangeEvent.from_payload(event))

    def _report(self, event: ChangeEvent) -> dict[str, Any]:
        self.log.info(
            "%s: %d row(s) changed from %s to %s.",
            event.entity_set,
            event.count,
            format_instant(event.since),
            format_instant(event.newest),
        )
        return event.to_payload()

    def _since(self, context: Context) -> int:
        """Ticks of ``since``, or of the run's ``data_interval_start`` when ``since`` is unset."""
        since = self.since if self.since not in (None, "") else context.get("data_interval_start")
        if since is None:
            raise ErpNetConfigError(
                f"{self.task_id}: this run has no data interval to wait for changes after; pass "
                "since= (an ISO 8601 instant, e.g. '{{ data_interval_start }}' or a fixed time)."
            )
        if isinstance(since, dt.datetime):
            return from_datetime(since)
        return parse_instant(str(since), what="since")
