"""What happened to each delivery, buffered and written in batches.

Successes delete their delivery row, retries move it to the next attempt time, final
errors become error records (SPEC §5's dead-letter log) and drops just end. Counter
deltas and trace steps are written in the same transaction, so what the reports say is
exactly what happened to the rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, bindparam, update

from sluice import jsonutil
from sluice.engine.router import TraceStep
from sluice.ids import new_id
from sluice.reporting.counters import CounterDelta
from sluice.storage import fast
from sluice.storage.tables import deliveries, error_records, traces

BODY_LIMIT = 8192


class InFlight:
    """An event whose first delivery attempts run from memory, not from table rows.

    Nothing of its routing is written until every one of those attempts has an outcome;
    then, in one transaction, the event is marked routed and its counters, error records
    and any rows for retries are written. A crash before that leaves the event unrouted,
    so it is routed again: at least once, and the counters stay exact.
    """

    __slots__ = ("errors", "event_seq", "pending", "profile_id", "rows", "tally", "traces")

    def __init__(
        self,
        event_seq: int,
        profile_id: str,
        pending: int,
        tally: list[tuple[str, str, str]],
        rows: list[dict[str, Any]],
        traces: list[TraceStep],
    ) -> None:
        self.event_seq = event_seq
        self.profile_id = profile_id
        self.pending = pending
        self.tally = tally  # (action id, connector id, counter name)
        self.rows = rows  # deliveries to insert once the event is done
        self.errors: list[ErrorRecord] = []
        self.traces = traces


@dataclass(slots=True)
class Item:
    """One delivery: an event for an action (``seq`` 0 while it has no table row)."""

    seq: int
    event_id: str
    action_id: str
    connector_id: str
    profile_id: str
    attempts: int
    received_at: float
    payload: dict[str, Any]
    data: dict[str, Any] | None = None
    inflight: InFlight | None = None

    @property
    def context(self) -> dict[str, Any]:
        """What the mappings see: the event, or the visitor context of audience actions."""
        return self.data if self.data is not None else self.payload


@dataclass
class ErrorRecord:
    item: Item
    connector_name: str
    action_name: str
    attempts: int
    category: str
    status_code: int | None
    message: str
    request: dict[str, Any] | None
    response: dict[str, Any] | None


@dataclass
class Outcomes:
    """Everything to write in one transaction."""

    done: list[int] = field(default_factory=list)  # delivery seqs to delete
    retries: list[dict[str, Any]] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)  # deliveries to insert
    routed: list[int] = field(default_factory=list)  # event seqs now fully routed
    errors: list[ErrorRecord] = field(default_factory=list)
    counts: CounterDelta = field(default_factory=CounterDelta)
    traces: list[TraceStep] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.done) + len(self.retries) + len(self.rows) + len(self.routed)

    def _settle(self, flight: InFlight, item: Item, name: str, now: float) -> None:
        flight.tally.append((item.action_id, item.connector_id, name))
        flight.pending -= 1
        if flight.pending == 0:
            self.routed.append(flight.event_seq)
            add = self.counts.add
            for action_id, connector_id, counter in flight.tally:
                add(action_id, connector_id, flight.profile_id, now, counter)
            if flight.rows:
                self.rows.extend(flight.rows)
            if flight.errors:
                self.errors.extend(flight.errors)
            if flight.traces:
                self.traces.extend(flight.traces)

    def success(self, item: Item, now: float) -> None:
        flight = item.inflight
        if flight is not None:
            self._settle(flight, item, "success", now)
            return
        self.done.append(item.seq)
        self.counts.add(item.action_id, item.connector_id, item.profile_id, now, "success")

    def drop(self, item: Item, now: float) -> None:
        flight = item.inflight
        if flight is not None:
            self._settle(flight, item, "dropped", now)
            return
        self.done.append(item.seq)
        self.counts.add(item.action_id, item.connector_id, item.profile_id, now, "dropped")

    def retry(self, item: Item, at: float, attempts: int, message: str, now: float) -> None:
        flight = item.inflight
        if flight is not None:
            flight.rows.append(
                {
                    "event_seq": flight.event_seq,
                    "event_id": item.event_id,
                    "profile_id": item.profile_id,
                    "connector_id": item.connector_id,
                    "action_id": item.action_id,
                    "attempts": attempts,
                    "next_at": at,
                    "lease_until": None,
                    "created_at": now,
                    "data": jsonutil.dumps(item.data) if item.data is not None else None,
                    "last_error": message[:1000],
                }
            )
            self._settle(flight, item, "retried", now)
            return
        self.retries.append(
            {
                "b_seq": item.seq,
                "attempts": attempts,
                "next_at": at,
                "lease_until": None,
                "last_error": message[:1000],
            }
        )
        self.counts.add(item.action_id, item.connector_id, item.profile_id, now, "retried")

    def error(self, record: ErrorRecord, now: float) -> None:
        item = record.item
        flight = item.inflight
        if flight is not None:
            flight.errors.append(record)
            self._settle(flight, item, "error", now)
            return
        self.done.append(item.seq)
        self.errors.append(record)
        self.counts.add(item.action_id, item.connector_id, item.profile_id, now, "error")

    def write(self, conn: Connection, now: float) -> None:
        if self.errors:
            conn.execute(error_records.insert(), [_error_row(e, now) for e in self.errors])
        if self.retries:
            conn.execute(
                update(deliveries)
                .where(deliveries.c.seq == bindparam("b_seq"))
                .values(
                    attempts=bindparam("attempts"),
                    next_at=bindparam("next_at"),
                    lease_until=bindparam("lease_until"),
                    last_error=bindparam("last_error"),
                ),
                self.retries,
            )
        fast.executemany(conn, "DELETE FROM deliveries WHERE seq = ?", [(s,) for s in self.done])
        if self.rows:
            conn.execute(deliveries.insert(), self.rows)
        fast.executemany(
            conn,
            f"UPDATE events SET routed = {fast.true(conn)} WHERE seq = ?",
            [(s,) for s in self.routed],
        )
        if self.traces:
            conn.execute(traces.insert(), [t.row(now) for t in self.traces])
        self.counts.write(conn)


def _cut(text: str | None) -> str | None:
    if text is None:
        return None
    return text if len(text) <= BODY_LIMIT else text[:BODY_LIMIT]


def _error_row(record: ErrorRecord, now: float) -> dict[str, Any]:
    item = record.item
    visitor = item.payload.get("tealium_visitor_id")
    return {
        "id": new_id("err"),
        "profile_id": item.profile_id,
        "timestamp": now,
        "connector_id": item.connector_id,
        "connector_name": record.connector_name,
        "action_id": item.action_id,
        "action_name": record.action_name,
        "event_id": item.event_id,
        "visitor_id": str(visitor) if visitor not in (None, "") else None,
        "attempts": record.attempts,
        "category": record.category,
        "status_code": record.status_code,
        "message": record.message[:2000],
        "request": jsonutil.dumps(record.request) if record.request is not None else None,
        "response": jsonutil.dumps(record.response) if record.response is not None else None,
        "event": jsonutil.dumps(item.payload),
        "data": jsonutil.dumps(item.data) if item.data is not None else None,
        "replayed_at": None,
    }
