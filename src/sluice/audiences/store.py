"""Loading and saving visitor profiles: JSON rows behind a bounded, version-checked cache.

Every profile update happens inside a write transaction of the process's single writer
thread, so within a process updates are serialised. Across processes (PostgreSQL, any
number of workers) the rows of a batch's visitors are locked (``SELECT ... FOR UPDATE``,
in visitor order so two workers cannot deadlock) and every write is also checked against
the version it read (``UPDATE ... WHERE version = ?``): a lost update is impossible on
either backend.

The cache holds parsed profiles, least recently used first out, within a memory budget.
An entry is only trusted while the row still has the ``version`` and ``updated_at`` the
entry was saved with, so a rolled-back transaction, another worker's update or an
erasure is never hidden by it. A profile is taken out of the cache while a transaction
changes it and put back when that transaction saves it.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from sluice.audiences.model import VisitorProfile, new_profile
from sluice.storage.tables import visitors

# A parsed profile takes about 3.3 times its JSON size in Python objects (measured by
# bench/bench_audiences.py: 2.8 KB for 840 bytes of JSON), plus its cache entry.
COST_FACTOR = 3
COST_BASE = 512
CHUNK = 500

Key = tuple[str, str]  # (profile id, visitor id)


class ProfileConflict(Exception):
    """A profile row changed under this transaction: it is rolled back and run again."""


class ProfileCache:
    def __init__(self, budget_bytes: int) -> None:
        self.budget = max(0, budget_bytes)
        self.used = 0
        self._entries: OrderedDict[Key, tuple[int, float, VisitorProfile, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def cost(size: int) -> int:
        return COST_BASE + COST_FACTOR * size

    def take(self, key: Key) -> tuple[int, float, VisitorProfile, int] | None:
        """Take an entry out: (version, updated_at, profile, JSON size)."""
        entry = self._entries.pop(key, None)
        if entry is None:
            return None
        self.used -= self.cost(entry[3])
        return entry

    def put(self, key: Key, version: int, stamp: float, profile: VisitorProfile, size: int) -> None:
        self.take(key)
        cost = self.cost(size)
        if cost > self.budget:
            return
        self._entries[key] = (version, stamp, profile, size)
        self.used += cost
        while self.used > self.budget:
            _, evicted = self._entries.popitem(last=False)
            self.used -= self.cost(evicted[3])

    def clear(self) -> None:
        self._entries.clear()
        self.used = 0


@dataclass(slots=True)
class Held:
    """One visitor's profile while a transaction works on it."""

    profile: VisitorProfile
    version: int | None  # the row's version as read; None while there is no row
    stamp: float | None  # the row's updated_at as read
    size: int = 0  # the JSON size of the profile as read
    dirty: bool = False
    data: bytes | None = None  # the profile's JSON when known to be current
    visit_ends_at: float | None = None


def _first_version() -> int:
    """A random first version: a profile erased and made again never looks like a
    cached one of before."""
    return secrets.randbelow(1 << 30) + 1


def _chunks(items: Sequence[str]) -> list[Sequence[str]]:
    return [items[i : i + CHUNK] for i in range(0, len(items), CHUNK)]


def _rowcount(conn: Connection, sql: str, rows: list[tuple[Any, ...]]) -> int:
    if not rows:
        return 0
    if conn.dialect.name == "postgresql":
        sql = sql.replace("?", "%s")
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(sql, rows)
        return int(cursor.rowcount)
    finally:
        cursor.close()


_UPDATE = (
    "UPDATE visitors SET data = ?, version = ?, visit_ends_at = ?, updated_at = ?"
    " WHERE profile_id = ? AND visitor_id = ? AND version = ?"
)
_INSERT = (
    "INSERT INTO visitors (profile_id, visitor_id, data, version, visit_ends_at, updated_at)"
    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)


class ProfileStore:
    def __init__(self, cache: ProfileCache, *, postgres: bool) -> None:
        self.cache = cache
        self.postgres = postgres

    def _versions(
        self, conn: Connection, profile_id: str, keys: Sequence[str]
    ) -> dict[str, tuple[int, float]]:
        found: dict[str, tuple[int, float]] = {}
        for chunk in _chunks(keys):
            query = (
                select(visitors.c.visitor_id, visitors.c.version, visitors.c.updated_at)
                .where(visitors.c.profile_id == profile_id, visitors.c.visitor_id.in_(chunk))
                .order_by(visitors.c.visitor_id)
            )
            if self.postgres:
                query = query.with_for_update()
            for visitor_id, version, stamp in conn.execute(query):
                found[visitor_id] = (int(version), float(stamp))
        return found

    def load(
        self,
        conn: Connection,
        profile_id: str,
        visitor_ids: Sequence[str],
        now: float,
        *,
        create: bool = True,
    ) -> dict[str, Held]:
        """The profiles of these visitors, their rows locked; unknown visitors get a new
        profile (``create``) or stay without a row (``Held.version`` is None)."""
        keys = sorted(set(visitor_ids))
        found = self._versions(conn, profile_id, keys)
        missing = [k for k in keys if k not in found]
        if missing and create and self.postgres:
            # Another worker may be creating the same visitors right now: make the rows
            # first (waiting for theirs, if any), so both end up updating one locked row.
            rows = [
                (profile_id, k, new_profile(k, now).dumps().decode(), _first_version(), None, now)
                for k in missing
            ]
            _rowcount(conn, _INSERT, rows)
            found.update(self._versions(conn, profile_id, missing))
        held: dict[str, Held] = {}
        stale: list[str] = []
        for visitor_id in keys:
            cached = self.cache.take((profile_id, visitor_id))
            row = found.get(visitor_id)
            if row is None:
                held[visitor_id] = Held(new_profile(visitor_id, now), None, None)
            elif cached is not None and (cached[0], cached[1]) == row:
                held[visitor_id] = Held(cached[2], row[0], row[1], size=cached[3])
            else:
                stale.append(visitor_id)
        for chunk in _chunks(stale):
            query = select(visitors.c.visitor_id, visitors.c.data).where(
                visitors.c.profile_id == profile_id, visitors.c.visitor_id.in_(chunk)
            )
            for found_row in conn.execute(query):
                visitor_id, data = str(found_row[0]), str(found_row[1])
                raw = data.encode()
                version, stamp = found[visitor_id]
                profile = VisitorProfile.loads(raw)
                held[visitor_id] = Held(profile, version, stamp, size=len(raw), data=raw)
        return held

    def save(self, conn: Connection, profile_id: str, held: dict[str, Held], now: float) -> None:
        """Write the changed profiles; ProfileConflict if a row moved meanwhile."""
        updates: list[tuple[Any, ...]] = []
        inserts: list[tuple[Any, ...]] = []
        saved: list[tuple[str, Held, int, bytes]] = []
        for visitor_id, entry in held.items():
            if not entry.dirty:
                if entry.version is not None and entry.stamp is not None:
                    self.cache.put(
                        (profile_id, visitor_id),
                        entry.version,
                        entry.stamp,
                        entry.profile,
                        entry.size,
                    )
                continue
            data = entry.data if entry.data is not None else entry.profile.dumps()
            text = data.decode()
            if entry.version is None:
                version = _first_version()
                inserts.append((profile_id, visitor_id, text, version, entry.visit_ends_at, now))
            else:
                version = entry.version % ((1 << 31) - 1) + 1
                updates.append(
                    (text, version, entry.visit_ends_at, now, profile_id, visitor_id, entry.version)
                )
            saved.append((visitor_id, entry, version, data))
        if _rowcount(conn, _UPDATE, updates) != len(updates):
            raise ProfileConflict("a visitor profile changed under this transaction")
        if _rowcount(conn, _INSERT, inserts) != len(inserts):
            raise ProfileConflict("a visitor profile was created under this transaction")
        for visitor_id, entry, version, data in saved:
            entry.version, entry.stamp, entry.data, entry.dirty = version, now, data, False
            entry.size = len(data)
            self.cache.put((profile_id, visitor_id), version, now, entry.profile, len(data))
