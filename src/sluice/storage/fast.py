"""Raw DB-API statements for the few writes on the event hot path.

SQLAlchemy Core costs a few microseconds per row to build parameters and cache keys;
for the statements that run once or more per event (routing and delivery bookkeeping)
that is a large share of the work, so they go to the driver's ``executemany`` directly.
SQL is written with ``?`` placeholders and converted for PostgreSQL's driver.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection


def _cursor(conn: Connection) -> Any:
    return conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]


def _sql(conn: Connection, sql: str) -> str:
    return sql.replace("?", "%s") if conn.dialect.name == "postgresql" else sql


def executemany(conn: Connection, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    if not rows:
        return
    cursor = _cursor(conn)
    try:
        cursor.executemany(_sql(conn, sql), rows)
    finally:
        cursor.close()


def execute(conn: Connection, sql: str, params: Sequence[Any] = ()) -> int:
    """Run one statement that returns no rows; returns how many rows it changed."""
    cursor = _cursor(conn)
    try:
        cursor.execute(_sql(conn, sql), params)
        return int(cursor.rowcount)
    finally:
        cursor.close()


def marks(count: int) -> str:
    """``?, ?, ...``: the placeholders of an ``IN`` list of ``count`` values."""
    return ", ".join("?" * count)


def fetchall(conn: Connection, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    cursor = _cursor(conn)
    try:
        cursor.execute(_sql(conn, sql), params)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def mark_routed(conn: Connection, seqs: Sequence[int]) -> None:
    """Record events as routed: their seqs are appended to ``event_routes`` (events are
    never updated; see ``sluice.storage.queue``)."""
    if not seqs:
        return
    if conn.dialect.name == "postgresql":
        append_routes(conn, seqs)
        return
    executemany(
        conn, "INSERT OR IGNORE INTO event_routes (event_seq) VALUES (?)", [(s,) for s in seqs]
    )


def append_routes(conn: Connection, seqs: Sequence[int]) -> set[int]:
    """PostgreSQL: record events as routed; returns the seqs this call recorded (those
    another transaction recorded first are left out)."""
    rows = fetchall(
        conn,
        "INSERT INTO event_routes (event_seq) SELECT unnest(?::bigint[])"
        " ON CONFLICT DO NOTHING RETURNING event_seq",
        (list(seqs),),
    )
    return {r[0] for r in rows}
