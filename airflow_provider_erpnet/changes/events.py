"""What a change event says, and the extraction window it asks for.

An event covers the rows whose incremental column lies in ``[since, newest]``; the window an
extraction reads for it starts ``overlap`` earlier (``from``), to catch rows committed late with
an older timestamp, and ends at ``newest`` (``to``). The next event starts one tick after
``newest``, so consecutive events of one watcher cover the column without a gap and the union of
any run of them is one window ``[first from, last to]``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from airflow_provider_erpnet.client.errors import ErpNetConfigError
from airflow_provider_erpnet.operators.windows import Window, check_overlap

from .instants import format_instant, parse_instant, ticks_of, to_datetime
from .probe import Changes

EVENT_KIND = "erpnet.changes"


@dataclass(frozen=True)
class ChangeEvent:
    """Rows of ``entity_set`` whose ``column`` changed in ``[since, newest]`` (ticks)."""

    erpnet_conn_id: str
    entity_set: str
    column: str
    since: int
    newest: int
    count: int
    overlap: dt.timedelta

    @property
    def window_start(self) -> int:
        """``from``: ``since`` less the overlap, in ticks."""
        return self.since - ticks_of(self.overlap)

    @property
    def next_since(self) -> int:
        """Where the next event starts: one tick after the newest row this one covers."""
        return self.newest + 1

    def to_payload(self) -> dict[str, Any]:
        """The trigger event's payload: plain JSON, instants in ISO 8601 with up to seven digits."""
        return {
            "kind": EVENT_KIND,
            "erpnet_conn_id": self.erpnet_conn_id,
            "entity_set": self.entity_set,
            "column": self.column,
            "count": self.count,
            "since": format_instant(self.since),
            "newest": format_instant(self.newest),
            "from": format_instant(self.window_start),
            "to": format_instant(self.newest),
            "overlap_seconds": self.overlap.total_seconds(),
        }

    @classmethod
    def of(
        cls, changes: Changes, *, erpnet_conn_id: str, entity_set: str, column: str, overlap: dt.timedelta
    ) -> ChangeEvent:
        """The event reporting what a probe found."""
        return cls(
            erpnet_conn_id=erpnet_conn_id,
            entity_set=entity_set,
            column=column,
            since=changes.since,
            newest=changes.newest,
            count=changes.count,
            overlap=overlap,
        )

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> ChangeEvent:
        """Inverse of ``to_payload``; raises ``ErpNetConfigError`` for anything else."""
        if not is_change_payload(payload):
            got = f"keys {sorted(payload)}" if isinstance(payload, Mapping) else type(payload).__name__
            raise ErpNetConfigError(
                "Not an ERP.net change event: expected the payload of ErpNetChangesTrigger "
                f"(kind {EVENT_KIND!r}); got {got}."
            )
        overlap = dt.timedelta(seconds=float(payload["overlap_seconds"]))
        return cls(
            erpnet_conn_id=str(payload["erpnet_conn_id"]),
            entity_set=str(payload["entity_set"]),
            column=str(payload["column"]),
            since=parse_instant(payload["since"], what="since"),
            newest=parse_instant(payload["newest"], what="newest"),
            count=int(payload["count"]),
            overlap=check_overlap(overlap),
        )


def is_change_payload(payload: Any) -> bool:
    return isinstance(payload, Mapping) and payload.get("kind") == EVENT_KIND


def window_of(events: Iterable[ChangeEvent]) -> Window:
    """One window covering every event: from the earliest ``from`` to the latest ``to``.

    ``to`` is rounded up to the microsecond (a ``Window`` holds ``datetime``), so the window still
    holds its newest row when that row has a seventh fractional digit.
    """
    events = list(events)
    if not events:
        raise ErpNetConfigError("No change events to take a window from.")
    columns = {event.column for event in events}
    if len(columns) > 1:
        raise ErpNetConfigError(
            f"The change events name different columns ({', '.join(sorted(columns))}); one window "
            "needs one incremental column."
        )
    first = min(events, key=lambda event: event.window_start)
    last = max(events, key=lambda event: event.newest)
    return Window(
        column=first.column,
        start=to_datetime(first.window_start),
        end=to_datetime(last.newest, round_up=True),
        overlap=first.overlap,
    )
