"""Migrations after the first: a database made by an earlier release upgrades in place."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect, select

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
    assert migrate.current_revision(db) == "0002"
    with db.engine.connect() as conn:
        columns = {c["name"] for c in inspect(conn).get_columns("deliveries")}
        row = conn.execute(select(deliveries)).one()
    assert "lease_owner" in columns
    # Nobody owns the old lease: nobody renews it, it is claimed again when it ends.
    assert (row.lease_owner, row.lease_until) == (None, now + 60)
