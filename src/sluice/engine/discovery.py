"""Attribute discovery: the names, types and samples of event attributes seen in traffic.

Routing notes a sample of each batch in memory; the pipeline writes what it gathered
every few seconds, off the hot path.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from sluice.config import attributes as attributes_service
from sluice.engine.router import StoredEvent

# At most this many attribute names per profile between two writes.
MAX_ATTRIBUTES_PER_FLUSH = 2000
# Of each routed batch, at most this many events are looked at, and at most
# SAMPLE_PER_SECOND in a second (under load, a fixed cost rather than a share of each event).
SAMPLE_PER_BATCH = 50
SAMPLE_PER_SECOND = 200

Seen = dict[str, tuple[str, Any, float, float]]  # name -> (type, sample, first, last seen)


class AttributeDiscovery:
    def __init__(self) -> None:
        self._seen: dict[str, Seen] = {}
        self._second = 0
        self._budget = SAMPLE_PER_SECOND

    def observe(self, stored: list[StoredEvent], now: float) -> None:
        """Note attribute names, types and samples of a sample of ``stored``.

        Every attribute that keeps appearing is found within a few batches or seconds,
        for a small cost, bounded per batch and per second. Nested objects are noted one
        level deep (``customer.phone``).
        """
        second = int(now)
        if second != self._second:
            self._second, self._budget = second, SAMPLE_PER_SECOND
        if self._budget <= 0 or not stored:
            return
        step = max(1, len(stored) // SAMPLE_PER_BATCH)
        sample = stored[::step][: self._budget]
        self._budget -= len(sample)
        for event in sample:
            seen = self._seen.setdefault(event.profile_id, {})
            if len(seen) >= MAX_ATTRIBUTES_PER_FLUSH:
                continue
            for name, value in event.payload.items():
                _note(seen, name, value, now)
                if isinstance(value, dict):
                    for sub, subvalue in value.items():
                        _note(seen, f"{name}.{sub}", subvalue, now)

    def take(self) -> dict[str, Seen]:
        """What was noted since the last call."""
        seen, self._seen = self._seen, {}
        return seen


def write(conn: Connection, observations: dict[str, Seen]) -> None:
    for profile_id, seen in observations.items():
        attributes_service.record_observations(conn, profile_id, seen)


def _note(seen: Seen, name: str, value: Any, now: float) -> None:
    kind = attributes_service.json_type(value)
    previous = seen.get(name)
    sample = value if not isinstance(value, dict | list) else None
    if previous is None:
        seen[name] = (kind, sample, now, now)
    else:
        seen[name] = (kind, sample, previous[2], now)
