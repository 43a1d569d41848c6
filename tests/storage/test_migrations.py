"""Migrations after the first: a database made by an earlier release upgrades in place."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect, select, text

from sluice.storage import migrate
from sluice.storage.db import Database
from sluice.storage.tables import deliveries


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.pg),
    ]
)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    database = Database(url)
    yield database
    database.dispose()


def test_0002_adds_the_lease_owner_to_deliveries_leased_by_an_older_release(
    db: Database,
) -> None:
    command.upgrade(migrate._config(db), "0001")  # type: ignore[arg-type]
    now = time.time()
    with db.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO deliveries (event_seq, event_id, profile_id, connector_id, action_id,"
            " attempts, next_at, lease_until, created_at)"
            f" VALUES (1, 'e1', 'p', 'c', 'a', 0, {now + 60}, {now + 60}, {now})"
        )
    assert not migrate.is_current(db)
    migrate.upgrade(db)
    assert migrate.is_current(db)
    assert migrate.current_revision(db) == migrate.head_revision()
    with db.engine.connect() as conn:
        columns = {c["name"] for c in inspect(conn).get_columns("deliveries")}
        row = conn.execute(select(deliveries)).one()
    assert "lease_owner" in columns
    # Nobody owns the old lease: nobody renews it, it is claimed again when it ends.
    assert (row.lease_owner, row.lease_until) == (None, now + 60)


def test_0003_moves_the_queue_into_datasets_and_keeps_every_row(db: Database) -> None:
    command.upgrade(migrate._config(db), "0002")  # type: ignore[arg-type]
    now = time.time()
    with db.engine.begin() as conn:
        for n, routed in enumerate((True, False, True), start=1):
            conn.exec_driver_sql(
                "INSERT INTO events (id, profile_id, received_at, payload, visitor_id, routed)"
                f" VALUES ('e{n}', 'p', {now}, '{{}}', NULL, {str(routed).lower()})"
            )
        conn.exec_driver_sql(
            "INSERT INTO deliveries (event_seq, event_id, profile_id, connector_id, action_id,"
            " attempts, next_at, created_at)"
            f" VALUES (3, 'e3', 'p', 'c', 'a', 2, {now}, {now})"
        )
    migrate.upgrade(db)
    with db.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO events (id, profile_id, received_at, payload, visitor_id, routed)"
            f" VALUES ('e4', 'p', {now}, '{{}}', NULL, false)"
        )
        rows = conn.execute(text("SELECT seq, id, routed FROM events ORDER BY seq")).all()
        delivery = conn.execute(text("SELECT seq, event_seq, attempts FROM deliveries")).one()
        partitioned = "SELECT relname, relkind FROM pg_class WHERE relname IN (:a, :b)"
        names = {"a": "events", "b": "deliveries"}
        kinds = {} if db.is_sqlite else dict(conn.execute(text(partitioned), names).all())
    # Seqs go on from where they were: nothing is routed twice or reused.
    assert [(r.seq, r.id, bool(r.routed)) for r in rows] == [
        (1, "e1", True),
        (2, "e2", False),
        (3, "e3", True),
        (4, "e4", False),
    ]
    assert tuple(delivery) == (1, 3, 2)
    if not db.is_sqlite:
        assert kinds == {"events": "p", "deliveries": "p"}  # partitioned
