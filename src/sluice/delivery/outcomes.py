"""What happened to each delivery, buffered and written in batches.

Successes delete their delivery row, retries move it to the next attempt time, final
errors become error records (SPEC §5's dead-letter log) and drops just end. Counter
deltas and trace steps are written in the same transaction, so what the reports say is
exactly what happened to the rows.

Outcomes of delivery rows are written only for the rows this process still holds the
lease of (``lease.owned``); a late outcome for a row another process took over is
discarded with its counters, error record and trace steps, and reported as lost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from sluice import jsonutil
from sluice.delivery import lease
from sluice.engine.router import TraceStep
from sluice.ids import new_id
from sluice.reporting.counters import CounterDelta
from sluice.storage import fast, queue
from sluice.storage.tables import error_records, traces

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
    """Everything to write in one transaction, on behalf of lease owner ``owner``."""

    owner: str
    done: list[int] = field(default_factory=list)  # delivery seqs to delete
    retries: list[dict[str, Any]] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)  # deliveries to insert
    routed: list[int] = field(default_factory=list)  # event seqs now fully routed
    errors: list[ErrorRecord] = field(default_factory=list)
    counts: CounterDelta = field(default_factory=CounterDelta)
    traces: list[TraceStep] = field(default_factory=list)
    # Of delivery rows, written only if this process still holds the row's lease.
    row_counts: list[tuple[int, str, str, str, float, str]] = field(default_factory=list)
    row_traces: list[tuple[int, TraceStep]] = field(default_factory=list)
    # Per connector, when the earliest row this write makes claimable falls due: its
    # runner is woken for it once the write committed (``DeliveryEngine._flush``).
    due: dict[str, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.done) + len(self.retries) + len(self.rows) + len(self.routed)

    def _settle(self, flight: InFlight, item: Item, name: str | None, now: float) -> None:
        """One of the event's in-memory attempts is over (``name``: its counter, if any)."""
        if name is not None:
            flight.tally.append((item.action_id, item.connector_id, name))
        flight.pending -= 1
        if flight.pending == 0:
            self._write_event(flight, now)

    def _write_event(self, flight: InFlight, now: float) -> None:
        """Every first attempt of the event has an outcome: write it all at once."""
        self.routed.append(flight.event_seq)
        add = self.counts.add
        for action_id, connector_id, counter in flight.tally:
            add(action_id, connector_id, flight.profile_id, now, counter)
        if flight.rows:
            self.rows.extend(flight.rows)
            for row in flight.rows:
                self._due(row["connector_id"], row["next_at"])
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
        self._count(item, now, "success")

    def drop(self, item: Item, now: float) -> None:
        flight = item.inflight
        if flight is not None:
            self._settle(flight, item, "dropped", now)
            return
        self.done.append(item.seq)
        self._count(item, now, "dropped")

    def retry(self, item: Item, at: float, attempts: int, message: str, now: float) -> None:
        flight = item.inflight
        if flight is not None:
            flight.rows.append(_row(flight, item, attempts, at, message, now))
            self._settle(flight, item, "retried", now)
            return
        self.retries.append(
            {
                "b_seq": item.seq,
                "attempts": attempts,
                "next_at": at,
                "last_error": message[:1000],
            }
        )
        self._due(item.connector_id, at)
        self._count(item, now, "retried")

    def _due(self, connector_id: str, at: float) -> None:
        if at < self.due.get(connector_id, at + 1):
            self.due[connector_id] = at

    def defer(self, item: Item, at: float, why: str, now: float) -> None:
        """An in-memory first attempt that cannot go out soon (its connector is paused or
        throttled): it becomes a row due at ``at``, not an attempt and not counted, so the
        rest of its event (retry rows of other connectors, counters) is written now."""
        flight = item.inflight
        assert flight is not None, "only in-memory items are deferred"
        item.inflight = None
        flight.rows.append(_row(flight, item, item.attempts, at, f"waiting: {why}", now))
        self._settle(flight, item, None, now)

    def error(self, record: ErrorRecord, now: float) -> None:
        item = record.item
        flight = item.inflight
        if flight is not None:
            flight.errors.append(record)
            self._settle(flight, item, "error", now)
            return
        self.done.append(item.seq)
        self.errors.append(record)
        self._count(item, now, "error")

    def trace(self, item: Item, step: TraceStep) -> None:
        if item.seq:
            self.row_traces.append((item.seq, step))
        else:
            self.traces.append(step)

    def _count(self, item: Item, now: float, name: str) -> None:
        self.row_counts.append(
            (item.seq, item.action_id, item.connector_id, item.profile_id, now, name)
        )

    def merge(self, newer: Outcomes) -> None:
        """Take in what was recorded since (after a failed write, to try both again)."""
        self.done.extend(newer.done)
        self.retries.extend(newer.retries)
        self.rows.extend(newer.rows)
        self.routed.extend(newer.routed)
        self.errors.extend(newer.errors)
        self.counts.merge(newer.counts)
        self.traces.extend(newer.traces)
        self.row_counts.extend(newer.row_counts)
        self.row_traces.extend(newer.row_traces)
        for connector_id, at in newer.due.items():
            self._due(connector_id, at)

    def write(self, conn: Connection, now: float) -> list[int]:
        """Write it all; returns the delivery rows whose lease was lost (not written).

        Leaves ``self`` as it was: the writer runs it again if the transaction fails.
        """
        claimed = {*self.done, *(r["b_seq"] for r in self.retries)}
        held = lease.owned(conn, claimed, self.owner) if claimed else set()
        done, retries, errors = self.done, self.retries, self.errors
        if len(held) < len(claimed):
            # Rows only: in-memory first attempts (seq 0) have no lease to lose.
            done = [seq for seq in done if seq in held]
            retries = [r for r in retries if r["b_seq"] in held]
            errors = [e for e in errors if not e.item.seq or e.item.seq in held]
        counts = self.counts
        if self.row_counts:
            counts = CounterDelta()
            counts.merge(self.counts)
            for seq, action_id, connector_id, profile_id, at, name in self.row_counts:
                if seq in held:
                    counts.add(action_id, connector_id, profile_id, at, name)
        steps = self.traces + [step for seq, step in self.row_traces if seq in held]
        if errors:
            conn.execute(error_records.insert(), [_error_row(e, now) for e in errors])
        fast.executemany(
            conn,
            _RETRY,
            [(r["attempts"], r["next_at"], r["last_error"], r["b_seq"]) for r in retries],
        )
        fast.executemany(conn, "DELETE FROM deliveries WHERE seq = ?", [(s,) for s in done])
        queue.append_deliveries(conn, self.rows)
        fast.mark_routed(conn, self.routed)
        if steps:
            conn.execute(traces.insert(), [t.row(now) for t in steps])
        counts.write(conn)
        return sorted(claimed - held)


_RETRY = (
    "UPDATE deliveries SET attempts = ?, next_at = ?, lease_until = NULL, lease_owner = NULL,"
    " last_error = ? WHERE seq = ?"
)


def _row(
    flight: InFlight, item: Item, attempts: int, at: float, message: str, now: float
) -> dict[str, Any]:
    """The delivery row that carries an in-memory item on once its event is written."""
    return {
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
