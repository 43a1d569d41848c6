"""PostgreSQL queue datasets: append-only status and queue tables dropped whole.

A queue that updates and deletes its rows leaves a dead tuple behind for every change,
and under sustained load vacuum falls behind: tables and indexes bloat and claims slow
down. Sluice's PostgreSQL queue is organised as RudderStack's job datasets are:

- ``events`` and ``deliveries`` are partitioned by ranges of ``seq``, ``dataset_rows``
  rows each (migration 0003). One process of the cluster (holding the lease
  ``queue-datasets``) keeps two datasets ready ahead of each sequence, and drops a
  deliveries dataset once every seq in it was handed out and its last delivery is
  final; retention drops an events dataset once all of it is routed, older than the
  retention period, and referred to by no delivery. Dropping a table leaves nothing to
  vacuum. A default partition takes rows should no dataset be ready, so inserts never
  fail for want of one.
- Events are never updated: routing appends each event's seq to ``event_routes``
  (partitioned alike). The routing claim looks only at events from ``route_low`` on, a
  mark below which every event is routed; the same process moves it up twice a second
  (``advance_route_mark``), so each claim reads only what is new.

Deliveries are still leased, retried and deleted in place: each row lives for seconds,
and its dead tuples go with its dataset. SQLite has no datasets (one process writes it
and it has no vacuum to outpace); it appends routes too, and moves its own route mark
(``sluice.storage.queue.advance_route_low``).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Connection
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import DBAPIError

from sluice.storage import fast, queue
from sluice.storage.db import Database
from sluice.storage.tables import queue_marks

if TYPE_CHECKING:
    from sluice.pipeline import Pipeline

log = logging.getLogger("sluice.storage")

# Held shared by every statement inserting events (a trigger, migration 0003).
EVENT_INSERT_LOCK = 0x51CE0001
LEASE = "queue-datasets"
MARK_EVERY = 0.5
MAINTAIN_EVERY = 5.0
AHEAD = 2  # datasets kept ready beyond the newest seq
LOCK_TIMEOUT = "500ms"

# Partitioned table -> (its sequence, tables partitioned by the same ranges of that seq).
QUEUES = {
    "events": ("events_seq_seq", ("event_routes",)),
    "deliveries": ("deliveries_seq_seq", ()),
}
_KEY = {"events": "seq", "deliveries": "seq", "event_routes": "event_seq"}
_BOUND = re.compile(r"FROM \('?(-?\d+|MINVALUE)'?\) TO \('?(-?\d+|MAXVALUE)'?\)")


@dataclass(frozen=True)
class Dataset:
    name: str
    low: int | None  # None: from the lowest value
    high: int  # exclusive


def datasets(conn: Connection, table: str) -> list[Dataset]:
    """The range partitions of ``table``, oldest first (the default one left out)."""
    rows = fast.fetchall(
        conn,
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i"
        " JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass(?)",
        (table,),
    )
    found = []
    for name, bound in rows:
        match = _BOUND.search(bound or "")
        if match is None:
            continue  # DEFAULT
        low, high = match.groups()
        if high == "MAXVALUE":
            continue
        found.append(Dataset(name, None if low == "MINVALUE" else int(low), int(high)))
    return sorted(found, key=lambda d: d.high)


def head(conn: Connection, sequence: str) -> int:
    """The highest value ``sequence`` has handed out (0 before the first)."""
    row = fast.fetchall(
        conn, f"SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM {sequence}"
    )
    return int(row[0][0])


def _lock_timeout(conn: Connection) -> None:
    conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")


def _extent(conn: Connection, table: str, sequence: str) -> tuple[int, int]:
    """The sequence's newest value, and where ``table``'s datasets end."""
    return head(conn, sequence), max((d.high for d in datasets(conn, table)), default=1)


def ensure_ahead(conn: Connection, rows: int) -> list[str]:
    """Create datasets until ``AHEAD`` of them lie beyond each sequence's newest value.

    Cheap when there are enough (two catalog reads); otherwise the tables are locked for
    the moment it takes, so that no row lands in the default partition between looking
    at it and creating a dataset (which PostgreSQL refuses when a row there belongs to
    the new range), and two processes never create the same dataset.
    """
    created: list[str] = []
    for table, (sequence, followers) in QUEUES.items():
        top, start = _extent(conn, table, sequence)
        if start > top + AHEAD * rows:
            continue
        names = (table, *followers)
        _lock_timeout(conn)
        conn.exec_driver_sql(f"LOCK TABLE {', '.join(names)} IN ACCESS EXCLUSIVE MODE")
        top, start = _extent(conn, table, sequence)  # another process may have made them
        for name in names:
            # Rows that went to the default partition must stay there: start above them.
            stray = fast.fetchall(conn, f"SELECT max({_KEY[name]}) FROM {name}_default")[0][0]
            if stray is not None and stray >= start:
                start = int(stray) + 1
        while start <= top + AHEAD * rows:
            for name in names:
                partition = f"{name}_p{start}"
                conn.exec_driver_sql(
                    f"CREATE TABLE {partition} PARTITION OF {name}"
                    f" FOR VALUES FROM ({start}) TO ({start + rows})"
                )
                created.append(partition)
            start += rows
    return created


def drop_drained_deliveries(conn: Connection) -> list[str]:
    """Drop the deliveries datasets whose every seq was handed out and that are empty."""
    top = head(conn, "deliveries_seq_seq")
    candidates = [d for d in datasets(conn, "deliveries") if d.high <= top + 1]
    empty = [d for d in candidates if not fast.fetchall(conn, f"SELECT 1 FROM {d.name} LIMIT 1")]
    if not empty:
        return []
    _lock_timeout(conn)
    # Parent first (it locks the partitions too): the order every query takes them in.
    conn.exec_driver_sql("LOCK TABLE deliveries IN ACCESS EXCLUSIVE MODE")
    dropped = []
    for dataset in empty:
        # Checked again under the lock: an insert in flight has committed by now.
        if fast.fetchall(conn, f"SELECT 1 FROM {dataset.name} LIMIT 1"):
            continue
        conn.exec_driver_sql(f"DROP TABLE {dataset.name}")
        dropped.append(dataset.name)
    return dropped


def drop_expired_events(conn: Connection, cutoff: float) -> int:
    """Retention on PostgreSQL: drop the events datasets (and their routes) that are all
    routed, all received before ``cutoff``, and referred to by no delivery; returns the
    number of events dropped."""
    mark = queue.route_low(conn)
    candidates = []
    for dataset in datasets(conn, "events"):
        if dataset.high > mark:
            break
        newest = fast.fetchall(conn, f"SELECT max(received_at), count(*) FROM {dataset.name}")
        if newest[0][0] is None or newest[0][0] < cutoff:
            candidates.append((dataset, int(newest[0][1])))
    if not candidates:
        return 0
    try:
        with conn.begin_nested():
            return _drop_events(conn, candidates)
    except DBAPIError as exc:
        if not _is_lock_timeout(exc):
            raise
        log.info("retention: events were busy; their datasets are dropped next time")
        return 0


def _drop_events(conn: Connection, candidates: list[tuple[Dataset, int]]) -> int:
    _lock_timeout(conn)
    conn.exec_driver_sql("LOCK TABLE events, event_routes IN ACCESS EXCLUSIVE MODE")
    dropped = 0
    for dataset, count in candidates:
        low = dataset.low if dataset.low is not None else -(2**63)
        # Under the lock: a replay that just queued a delivery for one of them has
        # committed by now (it read the event first, so it held a lock on it).
        waiting = fast.fetchall(
            conn,
            "SELECT 1 FROM deliveries WHERE event_seq >= ? AND event_seq < ? LIMIT 1",
            (low, dataset.high),
        )
        if waiting:
            continue
        suffix = dataset.name.removeprefix("events")
        conn.exec_driver_sql(f"DROP TABLE {dataset.name}")
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS event_routes{suffix}")
        dropped += count
    return dropped


def advance_route_mark(db: Database) -> int:
    """Move ``route_low`` up to the oldest event not routed yet; returns the new mark.

    A seq handed out to an insert that has not committed yet is invisible, and an event
    committed later with it must not end up below the mark. So first wait, holding the
    insert lock exclusively for an instant, until every statement that inserted events
    has finished: every seq up to the sequence's value then is committed or never will
    be. Events above that value are left for the next round.
    """
    with db.begin() as conn:
        _lock_timeout(conn)
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({EVENT_INSERT_LOCK})")
        settled = head(conn, "events_seq_seq")
    with db.begin() as conn:
        low = queue.route_low(conn)
        oldest = queue.first_unrouted(conn, low, settled)
        mark = oldest if oldest is not None else settled + 1
        if mark > low:
            statement = pg_insert(queue_marks).values(name=queue.ROUTE_LOW, value=mark)
            conn.execute(
                statement.on_conflict_do_update(
                    index_elements=[queue_marks.c.name],
                    set_={"value": mark},
                    where=queue_marks.c.value < mark,
                )
            )
        return max(mark, low)


def maintain(db: Database, rows: int, *, drop: bool) -> tuple[list[str], list[str]]:
    """One round of dataset upkeep: (datasets created, deliveries datasets dropped)."""
    with db.begin() as conn:
        created = ensure_ahead(conn, rows)
    dropped: list[str] = []
    if drop:
        with db.begin() as conn:
            dropped = drop_drained_deliveries(conn)
    return created, dropped


def _is_lock_timeout(exc: DBAPIError) -> bool:
    return getattr(exc.orig, "sqlstate", None) == "55P03"


async def run_forever(pipeline: Pipeline) -> None:
    """In every process on PostgreSQL; one of them (the lease holder) does the work."""
    from sluice.reporting.retention import take_lease

    db = pipeline.services.db
    rows = pipeline.services.settings.dataset_rows
    last_drop = 0.0

    def lease() -> bool:
        with db.begin() as conn:
            return take_lease(conn, LEASE, 10 * MARK_EVERY + 5)

    while True:
        pause = MARK_EVERY
        try:
            if not await asyncio.to_thread(lease):
                pause = MAINTAIN_EVERY  # another process does it; look again now and then
            else:
                # Datasets are made ahead every round (a backlog routed at once moves the
                # deliveries sequence fast); drained ones are dropped every few seconds.
                drop = time.monotonic() - last_drop >= MAINTAIN_EVERY
                if drop:
                    last_drop = time.monotonic()
                created, dropped = await asyncio.to_thread(maintain, db, rows, drop=drop)
                if created or dropped:
                    log.info("queue datasets: created %s, dropped %s", created, dropped)
                await asyncio.to_thread(advance_route_mark, db)
        except asyncio.CancelledError:
            raise
        except DBAPIError as exc:
            if _is_lock_timeout(exc):
                log.debug("queue datasets: a lock was busy; next round", exc_info=True)
            else:
                log.exception("queue dataset upkeep failed")
        except Exception:
            log.exception("queue dataset upkeep failed")
        await asyncio.sleep(pause)
