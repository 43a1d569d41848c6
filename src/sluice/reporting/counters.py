"""Counters per action and minute (SPEC §5), added up inside the write that causes them.

A delta is written in the same transaction as the state change it counts (routing an
event, finishing a delivery), so the counters stay exact across crashes and add up
across processes: ``triggered = filtered_consent + success + error + dropped`` once
nothing is pending.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from sluice.storage import fast

COUNTERS = ("triggered", "success", "error", "retried", "filtered_consent", "dropped")
_INDEX = {name: i for i, name in enumerate(COUNTERS)}
# The same text on SQLite and PostgreSQL; ``fast`` adapts the placeholders.
_UPSERT = (
    "INSERT INTO counters (action_id, minute, profile_id, connector_id, "
    + ", ".join(COUNTERS)
    + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (action_id, minute) DO UPDATE SET "
    + ", ".join(f"{name} = counters.{name} + excluded.{name}" for name in COUNTERS)
)


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

    def write(self, conn: Connection) -> None:
        if not self._rows:
            return
        # Not cleared here: the transaction may still fail (a deadlock on PostgreSQL), and
        # whoever retries it must write these increments again. Sent to the driver as it
        # is: this runs in nearly every routing and outcome transaction, and building the
        # statement through SQLAlchemy cost more than the upsert itself.
        rows = [
            (action_id, minute, *row)
            # In key order: two processes upserting the same rows lock them in the same
            # order, rather than deadlock on PostgreSQL.
            for (action_id, minute), row in sorted(self._rows.items())
        ]
        fast.executemany(conn, _UPSERT, rows)
