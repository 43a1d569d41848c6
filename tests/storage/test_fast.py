"""The raw hot-path statements of ``sluice.storage.fast``."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from sluice.errors import ConfigurationError
from sluice.services import Services
from sluice.storage import fast, migrate
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


def test_mark_routed_marks_exactly_the_given_seqs_in_runs(services: Services) -> None:
    _store(services, 20)
    with services.db.read() as conn:
        seqs = [r[0] for r in conn.execute(text("SELECT seq FROM events ORDER BY seq"))]
    chosen = [seqs[i] for i in (9, 0, 1, 2, 5, 7, 8, 19)]  # unordered, with gaps
    with services.db.begin() as conn:
        fast.mark_routed(conn, chosen)
        fast.mark_routed(conn, [])
    # SQLite updates the events; PostgreSQL never does, it appends to event_routes.
    status = (
        "SELECT seq FROM events WHERE routed"
        if services.db.is_sqlite
        else "SELECT event_seq FROM event_routes"
    )
    with services.db.read() as conn:
        routed = {r[0] for r in conn.execute(text(status))}
        untouched = conn.execute(text("SELECT count(*) FROM events WHERE routed")).scalar()
    assert routed == set(chosen)
    if not services.db.is_sqlite:
        assert untouched == 0


def test_routes_another_transaction_recorded_first_are_left_out(services: Services) -> None:
    if services.db.is_sqlite:
        pytest.skip("PostgreSQL keeps routing status in event_routes")
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
