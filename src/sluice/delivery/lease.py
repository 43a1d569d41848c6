"""Delivery leases: who holds a claimed delivery row, and the SQL that checks it.

A process claims a due row by moving its ``next_at`` to the end of a lease and writing
its own owner id into ``lease_owner``. Renewing, releasing and recording the outcome are
all conditional on that id still being there: a process that stalled past its lease,
while another took the row over and delivered it, finds someone else's id (or no row)
and its late outcome is discarded rather than counted a second time.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from collections.abc import Iterable, Iterator

from sqlalchemy import Connection, update

from sluice import metrics
from sluice.storage import fast
from sluice.storage.tables import deliveries

log = logging.getLogger("sluice.delivery")

# Rows per statement: well under SQLite's and PostgreSQL's limits on bound parameters.
CHUNK = 2000

_owner: tuple[int, str] | None = None


def process_owner() -> str:
    """This process's lease owner id (host, pid and a random part), made once per pid."""
    global _owner
    pid = os.getpid()
    if _owner is None or _owner[0] != pid:
        _owner = (pid, f"{socket.gethostname()[:80]}-{pid}-{secrets.token_hex(4)}")
    return _owner[1]


def _chunks(seqs: Iterable[int]) -> Iterator[list[int]]:
    ordered = sorted(set(seqs))
    for start in range(0, len(ordered), CHUNK):
        yield ordered[start : start + CHUNK]


def take(conn: Connection, seqs: list[int], until: float, owner: str) -> None:
    """Lease rows this transaction just selected as due (locked on PostgreSQL)."""
    for chunk in _chunks(seqs):
        fast.execute(
            conn,
            "UPDATE deliveries SET next_at = ?, lease_until = ?, lease_owner = ?"
            f" WHERE seq IN ({fast.marks(len(chunk))})",
            (until, until, owner, *chunk),
        )


def renew(conn: Connection, seqs: list[int], until: float, owner: str) -> list[int]:
    """Extend the leases ``owner`` still holds; returns the seqs it no longer holds."""
    kept: set[int] = set()
    for chunk in _chunks(seqs):
        result = conn.execute(
            update(deliveries)
            .where(deliveries.c.seq.in_(chunk), deliveries.c.lease_owner == owner)
            .values(next_at=until, lease_until=until)
            .returning(deliveries.c.seq)
        )
        kept.update(result.scalars())
    return sorted(set(seqs) - kept)


def release(conn: Connection, seqs: list[int], owner: str, now: float) -> None:
    """Hand rows back (due at once), those ``owner`` still holds."""
    for chunk in _chunks(seqs):
        conn.execute(
            update(deliveries)
            .where(deliveries.c.seq.in_(chunk), deliveries.c.lease_owner == owner)
            .values(next_at=now, lease_until=None, lease_owner=None)
        )


def owned(conn: Connection, seqs: Iterable[int], owner: str) -> set[int]:
    """The rows among ``seqs`` that ``owner`` holds, locked until this transaction ends.

    On PostgreSQL the rows are locked (in seq order, so two processes never deadlock) and
    a row another process is writing is waited for and then re-checked; on SQLite the
    writer's ``BEGIN IMMEDIATE`` already excludes every other writer.
    """
    lock = " FOR UPDATE" if conn.dialect.name == "postgresql" else ""
    found: set[int] = set()
    for chunk in _chunks(seqs):
        rows = fast.fetchall(
            conn,
            "SELECT seq FROM deliveries WHERE lease_owner = ?"
            f" AND seq IN ({fast.marks(len(chunk))}) ORDER BY seq{lock}",
            (owner, *chunk),
        )
        found.update(r[0] for r in rows)
    return found


def lost(seqs: list[int], where: str) -> None:
    """Log and count deliveries whose lease this process lost to another."""
    if not seqs:
        return
    metrics.LEASES_LOST.inc(len(seqs))
    log.warning(
        "lost the lease of %d deliveries (%s; another process took them over): %s",
        len(seqs),
        where,
        ", ".join(str(s) for s in seqs[:20]) + (" ..." if len(seqs) > 20 else ""),
    )
