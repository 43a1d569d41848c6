"""The raw hot-path statements of ``sluice.storage.fast``."""

from __future__ import annotations

from sqlalchemy import text

from sluice.services import Services
from sluice.storage import fast, migrate


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
    with services.db.read() as conn:
        routed = {r[0] for r in conn.execute(text("SELECT seq FROM events WHERE routed"))}
    assert routed == set(chosen)
