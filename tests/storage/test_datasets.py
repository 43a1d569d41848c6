"""PostgreSQL queue datasets (``sluice.storage.datasets``): events are never updated,
datasets are made ahead and dropped whole once drained, and the route mark never passes
an event whose insert has not committed yet."""

from __future__ import annotations

import dataclasses
import time
import uuid

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from sluice.services import Services
from sluice.settings import Settings
from sluice.storage import datasets, migrate
from sluice.storage.db import Database
from sluice.storage.notify import libpq_dsn
from tests.conftest import Api
from tests.support.flows import add_connector, event_data_action, totals, wait_until
from tests.support.vendor import VendorMock

pytestmark = pytest.mark.pg

ROWS = 40  # rows per dataset, small enough that a few hundred events span many


@pytest.fixture
def database_url(pg_url: str) -> str:
    db = Database(pg_url)
    migrate.upgrade(db, dataset_rows=ROWS)  # the first datasets are made here
    db.dispose()
    return pg_url


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, dataset_rows=ROWS)


@pytest.fixture(autouse=True)
def quick_upkeep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(datasets, "MAINTAIN_EVERY", 0.1)
    monkeypatch.setattr(datasets, "MARK_EVERY", 0.1)


def _scalar(services: Services, sql: str) -> int:
    with services.db.read() as conn:
        return int(conn.execute(text(sql)).scalar() or 0)


def _ahead(services: Services) -> int:
    """How many events can still be stored before the events datasets run out."""
    with services.db.read() as conn:
        top = datasets.head(conn, "events_seq_seq")
        return max(d.high for d in datasets.datasets(conn, "events")) - 1 - top


def _drained(services: Services) -> list[str]:
    """Deliveries datasets every seq of which was handed out and that hold no row."""
    with services.db.read() as conn:
        top = datasets.head(conn, "deliveries_seq_seq")
        return [
            d.name
            for d in datasets.datasets(conn, "deliveries")
            if d.high <= top + 1
            and not conn.execute(text(f"SELECT 1 FROM {d.name} LIMIT 1")).first()
        ]


def test_routing_appends_and_drained_datasets_are_dropped(
    api: Api, profile: str, vendor: VendorMock, services: Services
) -> None:
    add_connector(api, profile, actions=[event_data_action(vendor.url + "/hook")])
    count = 300
    for start in range(0, count, 30):
        # Posted in steps no larger than a dataset, each once the datasets are ahead
        # again, so that none goes to the default partition.
        wait_until(lambda: _ahead(services) > ROWS)
        body = {
            "events": [
                {"tealium_account": "acme", "tealium_profile": "main", "n": n}
                for n in range(start, start + 30)
            ]
        }
        assert api.client.post("/bulk-event", json=body).status_code == 200
    vendor.wait_for(count, "/hook", timeout=30)
    wait_until(lambda: totals(api, profile)["success"] == count, timeout=15)

    # Every event's routing status was appended; not one event row was updated.
    assert _scalar(services, "SELECT count(*) FROM event_routes") == count
    assert _scalar(services, "SELECT count(*) FROM events WHERE routed") == 0
    inserted = "SELECT coalesce(sum(n_tup_ins), 0) FROM pg_stat_user_tables"
    wait_until(lambda: _scalar(services, f"{inserted} WHERE relname LIKE 'events%'") >= count)
    updated = "SELECT coalesce(sum(n_tup_upd), 0) FROM pg_stat_user_tables"
    assert _scalar(services, f"{updated} WHERE relname LIKE 'events%'") == 0

    # The events span many datasets; the deliveries' drained ones are gone, and those
    # ahead of both sequences are ready.
    with services.db.read() as conn:
        event_sets = datasets.datasets(conn, "events")
        top = datasets.head(conn, "events_seq_seq")
    assert len([d for d in event_sets if d.high <= top + 1]) >= count // ROWS
    assert max(d.high for d in event_sets) > top + ROWS
    assert _scalar(services, "SELECT count(*) FROM events_default") == 0
    assert wait_until(lambda: not _drained(services), timeout=10)
    assert _scalar(services, "SELECT count(*) FROM deliveries") == 0

    # The route mark is past every event, so a claim reads nothing old.
    wait_until(lambda: _scalar(services, "SELECT value FROM queue_marks") == top + 1)


def test_retention_drops_whole_datasets_but_not_one_a_delivery_waits_on(
    api: Api, profile: str, vendor: VendorMock, services: Services
) -> None:
    add_connector(api, profile, actions=[event_data_action(vendor.url + "/hook")])
    body = {
        "events": [
            {"tealium_account": "acme", "tealium_profile": "main", "n": n} for n in range(200)
        ]
    }
    assert api.client.post("/bulk-event", json=body).status_code == 200
    vendor.wait_for(200, "/hook", timeout=30)
    with services.db.read() as conn:
        top = datasets.head(conn, "events_seq_seq")
    wait_until(lambda: _scalar(services, "SELECT value FROM queue_marks") == top + 1)
    wait_until(lambda: _scalar(services, "SELECT count(*) FROM deliveries") == 0)
    # A retry still waits for the oldest event: its dataset must stay.
    now = time.time()
    with services.db.begin() as conn:
        oldest = conn.execute(text("SELECT min(seq) FROM events")).scalar()
        conn.execute(
            text(
                "INSERT INTO deliveries (event_seq, event_id, profile_id, connector_id,"
                " action_id, attempts, next_at, created_at)"
                " VALUES (:seq, 'e', 'p', 'c', 'a', 1, :later, :now)"
            ),
            {"seq": oldest, "later": now + 3600, "now": now},
        )
    with services.db.begin() as conn:
        before = datasets.datasets(conn, "events")
        dropped = datasets.drop_expired_events(conn, cutoff=time.time() + 1)
        after = datasets.datasets(conn, "events")
        kept = conn.execute(text("SELECT count(*), min(seq) FROM events")).one()
        routes = conn.execute(text("SELECT count(*) FROM event_routes")).scalar()
    assert dropped > 0
    assert kept[0] == 200 - dropped
    assert kept[1] == oldest  # the dataset of the waiting delivery's event is kept
    assert routes == kept[0]  # the routes went with their events
    assert len(after) < len(before)


def test_the_route_mark_never_passes_an_insert_still_in_flight(services: Services) -> None:
    dsn = libpq_dsn(services.settings.database_url)

    def insert(conn: psycopg.Connection[tuple[int]]) -> int:
        row = conn.execute(
            "INSERT INTO events (id, profile_id, received_at, payload, visitor_id, routed)"
            " VALUES (%s, 'p', 1.0, '{}', NULL, false) RETURNING seq",
            (str(uuid.uuid4()),),
        ).fetchone()
        assert row is not None
        return row[0]

    with psycopg.connect(dsn) as slow, psycopg.connect(dsn, autocommit=True) as quick:
        first = insert(slow)  # not committed yet
        second = insert(quick)
        assert second > first
        # The later event is visible and the earlier one is not: the mark must wait.
        with pytest.raises(OperationalError):
            datasets.advance_route_mark(services.db)
        assert _scalar(services, "SELECT coalesce(max(value), 0) FROM queue_marks") <= first
        slow.commit()
    assert datasets.advance_route_mark(services.db) == first
