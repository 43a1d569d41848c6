"""Retention: what the background purge deletes, and what it must keep."""

from __future__ import annotations

import time

from sqlalchemy import Connection, insert, select

from sluice.reporting import retention
from sluice.services import Services
from sluice.storage import fast, migrate, queue
from sluice.storage.tables import (
    counters,
    deliveries,
    error_records,
    events,
    queue_marks,
    traces,
)

DAY = 86400.0


def _event(conn: Connection, event_id: str, received_at: float, routed: bool) -> int:
    row = {
        "id": event_id,
        "profile_id": "p",
        "received_at": received_at,
        "payload": "{}",
        "visitor_id": None,
        "routed": routed,
    }
    return int(conn.execute(insert(events).values(row).returning(events.c.seq)).scalar_one())


def _error(conn: Connection, error_id: str, at: float) -> None:
    conn.execute(
        insert(error_records).values(
            id=error_id,
            profile_id="p",
            timestamp=at,
            connector_id="c",
            connector_name="C",
            action_id="a",
            action_name="A",
            event_id="e",
            attempts=1,
            category="http_4xx",
            message="no",
        )
    )


def test_purge_keeps_what_is_recent_unrouted_or_still_being_delivered(
    services: Services,
) -> None:
    migrate.upgrade(services.db)
    now = time.time()
    old = now - 8 * DAY  # past the 7-day event retention
    with services.db.begin() as conn:
        _event(conn, "old-done", old, routed=True)
        _event(conn, "old-unrouted", old, routed=False)
        pending = _event(conn, "old-pending", old, routed=True)
        conn.execute(
            insert(deliveries).values(
                event_seq=pending,
                event_id="old-pending",
                profile_id="p",
                connector_id="c",
                action_id="a",
                attempts=3,
                next_at=now + 60,
                created_at=old,
            )
        )
        _event(conn, "recent-done", now - 60, routed=True)
        _error(conn, "err-old", now - 31 * DAY)
        _error(conn, "err-recent", now - 29 * DAY)
        for name, at in (("old", old), ("recent", now - 60)):
            conn.execute(
                insert(traces).values(
                    profile_id="p", trace_id=name, at=at, step="received", data="{}"
                )
            )
        for minute in (int((now - 36 * DAY) // 60), int((now - 34 * DAY) // 60)):
            conn.execute(
                insert(counters).values(
                    action_id="a", minute=minute, profile_id="p", connector_id="c", success=1
                )
            )
    with services.db.begin() as conn:
        removed = retention.purge(conn, now, event_days=7, error_days=30)
    assert removed == {"events": 1, "traces": 1, "errors": 1, "counters": 1}
    with services.db.read() as conn:
        kept = set(conn.execute(select(events.c.id)).scalars())
        errors = set(conn.execute(select(error_records.c.id)).scalars())
        trace_ids = set(conn.execute(select(traces.c.trace_id)).scalars())
    assert kept == {"old-unrouted", "old-pending", "recent-done"}
    assert errors == {"err-recent"}
    assert trace_ids == {"recent"}


def test_purge_with_nothing_old_enough_deletes_nothing(services: Services) -> None:
    migrate.upgrade(services.db)
    now = time.time()
    with services.db.begin() as conn:
        _event(conn, "recent", now, routed=True)
        assert retention.purge(conn, now, event_days=7, error_days=30)["events"] == 0


def test_purge_takes_events_routed_by_an_appended_route_or_below_the_mark(
    services: Services,
) -> None:
    """Routing appends routes and moves a mark; it never sets the event's flag."""
    migrate.upgrade(services.db)
    old = time.time() - 40 * DAY
    with services.db.begin() as conn:
        below = _event(conn, "below-the-mark", old, routed=False)
        appended = _event(conn, "route-appended", old + 1, routed=False)
        _event(conn, "unrouted", old + 2, routed=False)
        fast.mark_routed(conn, [appended])
        conn.execute(insert(queue_marks).values(name=queue.ROUTE_LOW, value=below + 1))
    with services.db.begin() as conn:
        retention.purge(conn, time.time(), 30, 30)
    with services.db.read() as conn:
        kept = {r[0] for r in conn.execute(select(events.c.id))}
    assert kept == {"unrouted"}
