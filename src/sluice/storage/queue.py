"""The queue's statements, on both backends: events stored, unrouted events claimed and
counted, delivery rows inserted, leases voided at start-up.

Events are never updated once stored: routing appends each event's seq to
``event_routes``, and only events from ``route_low`` on are looked at, a mark below which
every event is routed. PostgreSQL is shared by many processes: a claim locks the rows it
reads, and ``sluice.storage.datasets`` keeps the mark. SQLite has one writing process: it
reads unrouted events after the last seq it took, and moves the mark up itself
(``advance_route_low``), dropping the routes below it.

(An event's ``routed`` flag is set only for events stored already routed, such as the
visits AudienceStream stores. SQLite once set it when routing; marking thousands of
events a second that way rewrote their rows, and the flag's index, in the WAL.)
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, func, select, update

from sluice.storage import fast, notify
from sluice.storage.tables import deliveries

ROUTE_LOW = "route_low"  # the name of the route mark in ``queue_marks``

_INSERT_EVENT = (
    "INSERT INTO events (id, profile_id, received_at, payload, visitor_id, routed)"
    " VALUES (?, ?, ?, ?, ?, false)"
)
# A delivery row's columns but its seq; a row (a dict) leaves out those that are null.
_ROW_COLUMNS = (
    "event_seq",
    "event_id",
    "profile_id",
    "connector_id",
    "action_id",
    "attempts",
    "next_at",
    "lease_until",
    "lease_owner",
    "created_at",
    "data",
    "last_error",
)
_INSERT_DELIVERY = (
    f"INSERT INTO deliveries (seq, {', '.join(_ROW_COLUMNS)})"
    f" VALUES (?, {fast.marks(len(_ROW_COLUMNS))})"
)
_APPEND_DELIVERY = (
    f"INSERT INTO deliveries ({', '.join(_ROW_COLUMNS)}) VALUES ({fast.marks(len(_ROW_COLUMNS))})"
)
# SQLite: the events not routed yet, from a lower bound on (the same twice, as below).
# ``routed = 0`` rather than ``NOT routed``: then the (routed, seq) index skips events of
# databases routed before ``event_routes`` was used on SQLite.
_UNROUTED_SQLITE = (
    " FROM events e WHERE e.routed = 0 AND e.seq >= ?"
    " AND NOT EXISTS (SELECT 1 FROM event_routes r WHERE r.event_seq = e.seq"
    " AND r.event_seq >= ?)"
)
_CLAIM_SQLITE = (
    "SELECT e.seq, e.id, e.profile_id, e.received_at, e.payload"
    + _UNROUTED_SQLITE
    + " ORDER BY e.seq LIMIT ?"
)
# PostgreSQL: the events not routed yet, from a lower bound (the route mark) on. The bound
# is passed as a value, twice: only then does the planner leave older datasets of both
# tables out and walk both indexes in order (a merge anti join that stops after ``LIMIT``
# rows); with the mark as a subquery it hashed every route ever appended.
_UNROUTED_PG = (
    " FROM events e WHERE e.seq >= ? AND NOT e.routed"
    " AND NOT EXISTS (SELECT 1 FROM event_routes r WHERE r.event_seq = e.seq"
    " AND r.event_seq >= ?)"
)
_CLAIM_PG = (
    "SELECT e.seq, e.id, e.profile_id, e.received_at, e.payload"
    + _UNROUTED_PG
    + " ORDER BY e.seq LIMIT ? FOR UPDATE OF e SKIP LOCKED"
)

Row = tuple[Any, ...]


def store_events(conn: Connection, rows: list[Row]) -> None:
    """Insert accepted events: (id, profile id, received at, payload, visitor id)."""
    fast.executemany(conn, _INSERT_EVENT, rows)
    notify.later(conn, notify.EVENTS)  # PostgreSQL: wakes the workers when it commits


def _unrouted(conn: Connection) -> str:
    return _UNROUTED_PG if conn.dialect.name == "postgresql" else _UNROUTED_SQLITE


def route_low(conn: Connection) -> int:
    """The route mark, below which every event is routed."""
    row = fast.fetchall(conn, "SELECT value FROM queue_marks WHERE name = ?", (ROUTE_LOW,))
    return int(row[0][0]) if row else 0


def claim_events(conn: Connection, after: int, limit: int) -> tuple[list[Row], int]:
    """The oldest unrouted events, up to ``limit``, as (seq, id, profile id, received at,
    payload); and how many were claimed, which on PostgreSQL may be more than returned.

    SQLite reads after ``after`` (the last seq this process took) and the route mark;
    the events are recorded as routed later, once routed (``fast.mark_routed``).
    PostgreSQL locks the rows and records them as routed in the same transaction. A row
    locked after another worker routed and committed it still passed the claim's older
    view of ``event_routes``: the insert is what decides, and those another worker
    recorded first are left out.
    """
    mark = route_low(conn)
    if conn.dialect.name != "postgresql":
        low = max(after + 1, mark)
        rows = fast.fetchall(conn, _CLAIM_SQLITE, (low, low, limit))
        return rows, len(rows)
    rows = fast.fetchall(conn, _CLAIM_PG, (mark, mark, limit))
    if not rows:
        return rows, 0
    ours = fast.append_routes(conn, [r[0] for r in rows])
    if len(ours) < len(rows):
        return [r for r in rows if r[0] in ours], len(rows)
    return rows, len(rows)


def first_unrouted(conn: Connection, low: int, high: int) -> int | None:
    """The seq of the oldest unrouted event between ``low`` and ``high``."""
    sql = "SELECT e.seq" + _unrouted(conn) + " AND e.seq <= ? ORDER BY e.seq LIMIT 1"
    found = fast.fetchall(conn, sql, (low, low, high))
    return int(found[0][0]) if found else None


def count_unrouted(conn: Connection) -> int:
    mark = route_low(conn)
    return int(fast.fetchall(conn, "SELECT count(*)" + _unrouted(conn), (mark, mark))[0][0])


def advance_route_low(conn: Connection) -> int:
    """SQLite: move the route mark up to the oldest event not routed yet, and drop the
    routes below it; returns the new mark.

    SQLite commits one writer at a time, so every stored seq is visible here (unlike on
    PostgreSQL, see ``sluice.storage.datasets.advance_route_mark``).
    """
    low = route_low(conn)
    top = fast.fetchall(conn, "SELECT max(seq) FROM events")[0][0] or 0
    oldest = first_unrouted(conn, low, top)
    mark = oldest if oldest is not None else top + 1
    if mark > low:
        fast.execute(
            conn,
            "INSERT INTO queue_marks (name, value) VALUES (?, ?)"
            " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (ROUTE_LOW, mark),
        )
        fast.execute(conn, "DELETE FROM event_routes WHERE event_seq < ?", (mark,))
    return max(mark, low)


def insert_deliveries(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Insert delivery rows, setting each one's ``seq``."""
    if conn.dialect.name != "postgresql":
        # Under SQLite's write lock nobody else inserts: number the rows ourselves,
        # which costs half of asking for them back with RETURNING.
        top = conn.execute(select(func.max(deliveries.c.seq))).scalar() or 0
        for offset, row in enumerate(rows, start=1):
            row["seq"] = top + offset
        values = [(r["seq"], *(r.get(c) for c in _ROW_COLUMNS)) for r in rows]
        fast.executemany(conn, _INSERT_DELIVERY, values)
        return
    seqs = conn.execute(
        deliveries.insert().returning(deliveries.c.seq, sort_by_parameter_order=True),
        list(rows),
    ).scalars()
    for row, seq in zip(rows, seqs, strict=True):
        row["seq"] = seq


def append_deliveries(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Insert delivery rows, numbered by the database (their seqs are not needed)."""
    fast.executemany(conn, _APPEND_DELIVERY, [tuple(r.get(c) for c in _ROW_COLUMNS) for r in rows])


def release_all_leases(conn: Connection) -> None:
    """SQLite, at start-up: one process does all the work, so leases of a previous run
    are void and their rows due at once."""
    now = time.time()
    conn.execute(
        update(deliveries)
        .where(deliveries.c.lease_until.is_not(None))
        .values(next_at=now, lease_until=None, lease_owner=None)
    )
