"""Retention: old events, error records, traces and counters are purged in the background.

Events are kept until every delivery of theirs is final, then ``event_retention_days``
(7 by default); error records ``error_retention_days`` (30); traces as long as events;
counters 35 days (the 30-day trend plus a margin). One process of a cluster does it at a
time, holding a lease row.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from typing import TYPE_CHECKING

from sqlalchemy import Connection, delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from sluice.storage import datasets, queue
from sluice.storage.tables import (
    counters,
    deliveries,
    error_records,
    event_routes,
    events,
    leases,
    traces,
)

if TYPE_CHECKING:
    from sluice.pipeline import Pipeline

log = logging.getLogger("sluice.retention")

EVERY_SECONDS = 600.0
COUNTER_DAYS = 35
HOLDER = f"{socket.gethostname()}:{os.getpid()}"


def take_lease(conn: Connection, name: str, seconds: float, holder: str = HOLDER) -> bool:
    """Hold the cluster-wide lease ``name`` for ``seconds``; False if another holds it."""
    # One conditional statement each, never read-then-write: two processes whose leases ran
    # out at the same moment would both see the row free and both take it. PostgreSQL
    # re-checks the WHERE of a blocked UPDATE against the row the winner committed.
    now = time.time()
    taken = conn.execute(
        update(leases)
        .where(leases.c.name == name, or_(leases.c.holder == holder, leases.c.until <= now))
        .values(holder=holder, until=now + seconds)
    )
    if taken.rowcount:
        return True
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    created = conn.execute(
        insert(leases)
        .values(name=name, holder=holder, until=now + seconds)
        .on_conflict_do_nothing(index_elements=[leases.c.name])
        .returning(leases.c.name)
    )
    return created.first() is not None


def purge(conn: Connection, now: float, event_days: float, error_days: float) -> dict[str, int]:
    if not take_lease(conn, "retention", EVERY_SECONDS / 2):
        return {}
    event_cutoff = now - event_days * 86400
    removed = {
        "events": _purge_events(conn, event_cutoff),
        "traces": conn.execute(delete(traces).where(traces.c.at < event_cutoff)).rowcount,
        "errors": conn.execute(
            delete(error_records).where(error_records.c.timestamp < now - error_days * 86400)
        ).rowcount,
        "counters": conn.execute(
            delete(counters).where(counters.c.minute < int((now - COUNTER_DAYS * 86400) // 60))
        ).rowcount,
    }
    return removed


def _purge_events(conn: Connection, cutoff: float) -> int:
    """Delete events received before ``cutoff`` that have no delivery left.

    Bounded by seq first, found through the ``received_at`` index (the seq of the last
    event received before the cutoff; one received out of order is purged next time). A
    plain condition on ``received_at`` and ``routed`` led SQLite through the whole
    ``routed`` index, and ``max(seq)`` through the whole table, reading every event into
    the page cache (+30 MB RSS at 135,000 events) to delete none.
    """
    last = (
        select(events.c.seq)
        .where(events.c.received_at < cutoff)
        .order_by(events.c.received_at.desc())
        .limit(1)
    )
    bound = conn.execute(last).scalar()
    if bound is None:
        return 0
    waiting = select(deliveries.c.event_seq).where(deliveries.c.event_seq <= bound)
    # Routed: below the route mark, or with a route appended (or stored already routed).
    appended = select(event_routes.c.event_seq).where(event_routes.c.event_seq == events.c.seq)
    routed = or_(events.c.seq < queue.route_low(conn), appended.exists(), events.c.routed)
    dropped = 0
    if conn.dialect.name == "postgresql":
        # Whole datasets first (nothing left to vacuum), then what is left of older ones.
        dropped = datasets.drop_expired_events(conn, cutoff)
    old = delete(events).where(
        events.c.seq <= bound,
        events.c.received_at < cutoff,
        routed,
        events.c.seq.not_in(waiting),
    )
    return dropped + conn.execute(old).rowcount


async def run_forever(pipeline: Pipeline) -> None:
    settings = pipeline.services.settings
    while True:
        try:
            removed = await pipeline.writer.run(
                lambda conn: purge(
                    conn, time.time(), settings.event_retention_days, settings.error_retention_days
                )
            )
            if any(removed.values()):
                log.info("retention purged %s", removed)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("retention failed")
        await asyncio.sleep(EVERY_SECONDS)
