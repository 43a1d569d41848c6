"""Counters per action and minute (SPEC §5), added up inside the write that causes them.

A delta is written in the same transaction as the state change it counts (routing an
event, finishing a delivery), so the counters stay exact across crashes and add up
across processes: ``triggered = filtered_consent + success + error + dropped`` once
nothing is pending.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite

from sluice.storage.tables import counters

COUNTERS = ("triggered", "success", "error", "retried", "filtered_consent", "dropped")
_INDEX = {name: i for i, name in enumerate(COUNTERS)}


def minute_of(ts: float) -> int:
    return int(ts // 60)


class CounterDelta:
    """Increments gathered before one write."""

    __slots__ = ("_rows",)

    def __init__(self) -> None:
        self._rows: dict[tuple[str, int], list[Any]] = {}

    def add(
        self, action_id: str, connector_id: str, profile_id: str, ts: float, name: str, n: int = 1
    ) -> None:
        key = (action_id, int(ts // 60))
        row = self._rows.get(key)
        if row is None:
            row = self._rows[key] = [profile_id, connector_id, 0, 0, 0, 0, 0, 0]
        row[2 + _INDEX[name]] += n

    def merge(self, other: CounterDelta) -> None:
        for key, values in other._rows.items():
            row = self._rows.get(key)
            if row is None:
                self._rows[key] = list(values)
            else:
                for i in range(2, 8):
                    row[i] += values[i]

    def __bool__(self) -> bool:
        return bool(self._rows)

    def items(self) -> list[dict[str, Any]]:
        return [
            {
                "action_id": action_id,
                "minute": minute,
                "profile_id": row[0],
                "connector_id": row[1],
                **{name: row[2 + i] for i, name in enumerate(COUNTERS)},
            }
            # In key order: two processes upserting the same rows lock them in the same
            # order, rather than deadlock on PostgreSQL.
            for (action_id, minute), row in sorted(self._rows.items())
        ]

    def write(self, conn: Connection) -> None:
        if not self._rows:
            return
        insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        stmt = insert(counters)
        stmt = stmt.on_conflict_do_update(
            index_elements=[counters.c.action_id, counters.c.minute],
            set_={name: counters.c[name] + stmt.excluded[name] for name in COUNTERS},
        )
        # Not cleared here: the transaction may still fail (a deadlock on PostgreSQL), and
        # whoever retries it must write these increments again.
        conn.execute(stmt, self.items())
