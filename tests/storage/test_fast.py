"""The raw hot-path statements of ``sluice.storage.fast``."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from sluice.errors import ConfigurationError
from sluice.services import Services
from sluice.storage import fast, migrate, queue
from sluice.storage.db import Database


def _store(services: Services, count: int) -> None:
    migrate.upgrade(services.db)
    rows = [(f"e{n}", "p", 1.0, "{}", None) for n in range(count)]
    with services.db.begin() as conn:
        fast.executemany(
            conn,
            "INSERT INTO events (id, profile_id, received_at, payload, visitor_id, routed)"
            " VALUES (?, ?, ?, ?, ?, false)",
            rows,
        )


def test_mark_routed_appends_exactly_the_given_seqs(services: Services) -> None:
    _store(services, 20)
    with services.db.read() as conn:
        seqs = [r[0] for r in conn.execute(text("SELECT seq FROM events ORDER BY seq"))]
    chosen = [seqs[i] for i in (9, 0, 1, 2, 5, 7, 8, 19)]  # unordered, with gaps
    with services.db.begin() as conn:
        fast.mark_routed(conn, chosen)
        fast.mark_routed(conn, [])
    with services.db.read() as conn:
        routed = {r[0] for r in conn.execute(text("SELECT event_seq FROM event_routes"))}
        updated = conn.execute(text("SELECT count(*) FROM events WHERE routed")).scalar()
    assert routed == set(chosen)
    assert updated == 0  # events are never rewritten to be marked


def test_routes_another_transaction_recorded_first_are_left_out(services: Services) -> None:
    if services.db.is_sqlite:
        pytest.skip("one SQLite process routes: no other transaction records routes")
    _store(services, 3)
    with services.db.read() as conn:
        seqs = [r[0] for r in conn.execute(text("SELECT seq FROM events ORDER BY seq"))]
    with services.db.begin() as conn:
        assert fast.append_routes(conn, seqs[:1]) == {seqs[0]}
    with services.db.begin() as conn:
        assert fast.append_routes(conn, seqs) == set(seqs[1:])


def test_sqlite_durability_level_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'sync.db'}"
    for wanted, pragma in (("full", 2), (None, 1)):  # 2 = FULL, 1 = NORMAL (the default)
        if wanted is None:
            monkeypatch.delenv("SLUICE_SQLITE_SYNCHRONOUS", raising=False)
        else:
            monkeypatch.setenv("SLUICE_SQLITE_SYNCHRONOUS", wanted)
        db = Database(url)
        with db.read() as conn:
            assert conn.execute(text("PRAGMA synchronous")).scalar() == pragma
        db.dispose()
    monkeypatch.setenv("SLUICE_SQLITE_SYNCHRONOUS", "OFF")  # would give up durability
    with pytest.raises(ConfigurationError, match="NORMAL or FULL"):
        Database(url)


@pytest.mark.sqlite_only("SQLite moves its own route mark; PostgreSQL: storage.datasets")
def test_the_route_mark_moves_up_to_the_oldest_unrouted_event(services: Services) -> None:
    """Routes are appended, never written into the events; the mark is what lets a new
    process (and the counts) skip what is routed, and what empties ``event_routes``."""
    _store(services, 10)
    with services.db.read() as conn:
        seqs = [r[0] for r in conn.execute(text("SELECT seq FROM events ORDER BY seq"))]
    with services.db.begin() as conn:
        rows, _ = queue.claim_events(conn, 0, 100)
        assert [r[0] for r in rows] == seqs
        fast.mark_routed(conn, seqs[:4] + seqs[5:6])  # the fifth is still in flight
        assert queue.advance_route_low(conn) == seqs[4]
    with services.db.read() as conn:
        kept = [r[0] for r in conn.execute(text("SELECT event_seq FROM event_routes"))]
    assert kept == [seqs[5]]  # the routes below the mark are gone
    with services.db.begin() as conn:
        # As a restarted process sees it: what is routed is skipped, above the mark too.
        rows, _ = queue.claim_events(conn, 0, 100)
        assert [r[0] for r in rows] == [seqs[4], *seqs[6:]]
        assert queue.count_unrouted(conn) == 5
        fast.mark_routed(conn, [seqs[4], *seqs[6:]])
        assert queue.advance_route_low(conn) == seqs[-1] + 1
        assert queue.count_unrouted(conn) == 0
        assert queue.claim_events(conn, 0, 100) == ([], 0)
    with services.db.read() as conn:
        assert conn.execute(text("SELECT count(*) FROM event_routes")).scalar() == 0
