"""Cluster singletons (retention, the visit-end scheduler) hold a lease row: one at a time."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, update
from sqlalchemy.engine import make_url

from sluice.reporting.retention import take_lease
from sluice.storage import migrate
from sluice.storage.tables import leases


@pytest.fixture
def sqlite_engine(tmp_path: object) -> Iterator[Engine]:
    engine = create_engine(f"sqlite:///{tmp_path}/leases.db")
    leases.create(engine)
    yield engine
    engine.dispose()


def test_a_lease_is_held_renewed_and_taken_over_when_it_ends(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as conn:
        assert take_lease(conn, "job", 60, holder="a")
        assert take_lease(conn, "job", 60, holder="a")  # renewed by its holder
        assert not take_lease(conn, "job", 60, holder="b")
        conn.execute(update(leases).values(until=time.time() - 1))
        assert take_lease(conn, "job", 60, holder="b")
        assert not take_lease(conn, "job", 60, holder="a")


@pytest.mark.pg
def test_two_processes_racing_for_an_ended_lease_on_postgres_one_wins(
    pg_url: str,
) -> None:
    url = make_url(pg_url).set(drivername="postgresql+psycopg")
    from sluice.services import Services
    from sluice.settings import Settings

    services = Services.open(Settings(database_url=pg_url, secret_key="k"))
    migrate.upgrade(services.db)
    services.db.dispose()
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            assert take_lease(conn, "job", 60, holder="old")
            conn.execute(update(leases).values(until=time.time() - 1))
        results: dict[str, bool] = {}
        with engine.connect() as first:
            with first.begin():
                results["a"] = take_lease(first, "job", 60, holder="a")

                def contender() -> None:
                    with engine.begin() as second:
                        results["b"] = take_lease(second, "job", 60, holder="b")

                # "b" blocks on the row "a" updated, then sees "a"'s live lease.
                thread = threading.Thread(target=contender)
                thread.start()
                time.sleep(0.3)
                assert "b" not in results, results
            thread.join(10)
        assert results == {"a": True, "b": False}
        # Nobody holds a new lease name yet: of two creators, one wins.
        with engine.begin() as conn:
            assert take_lease(conn, "fresh", 60, holder="a")
        with engine.begin() as conn:
            assert not take_lease(conn, "fresh", 60, holder="b")
    finally:
        engine.dispose()
