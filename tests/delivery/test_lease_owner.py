"""A worker that lost a delivery's lease (it stalled, another re-claimed the row) can no
longer renew it, release it or record its outcome: success is counted exactly once.

On a real database, SQLite and PostgreSQL (the ``pg`` tier); two lease owners stand for
two worker processes, each claiming and writing in its own transactions.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from sluice import metrics
from sluice.delivery import lease
from sluice.delivery.engine import _claim
from sluice.delivery.outcomes import ErrorRecord, Item, Outcomes
from sluice.engine.router import TraceStep
from sluice.storage import migrate
from sluice.storage.db import Database
from sluice.storage.tables import counters, deliveries, error_records, events, traces

CONNECTOR = "con_lease"
ACTION = "act_lease"
PROFILE = "pro_lease"
LEASE = 60.0


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.pg),
    ]
)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'lease.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    database = Database(url)
    migrate.upgrade(database)
    yield database
    database.dispose()


class Worker:
    """One worker process's view: its owner id, claims and outcome writes."""

    def __init__(self, db: Database, owner: str) -> None:
        self.db = db
        self.owner = owner

    def claim(self, now: float) -> list[Item]:
        with self.db.begin() as conn:
            claimed = _claim(
                conn,
                [(CONNECTOR, 10)],
                now=now,
                postgres=not self.db.is_sqlite,
                until=now + LEASE,
                owner=self.owner,
            )
        return claimed[CONNECTOR][0]

    def outcomes(self) -> Outcomes:
        return Outcomes(self.owner)

    def write(self, outcomes: Outcomes) -> list[int]:
        with self.db.begin() as conn:
            return outcomes.write(conn, time.time())


def _queue_one(db: Database, now: float) -> int:
    event_id = str(uuid.uuid4())
    with db.begin() as conn:
        seq = conn.execute(
            events.insert()
            .values(
                id=event_id,
                profile_id=PROFILE,
                received_at=now,
                payload='{"tealium_trace_id": "tr1"}',
                routed=True,
            )
            .returning(events.c.seq)
        ).scalar_one()
        conn.execute(
            deliveries.insert().values(
                event_seq=seq,
                event_id=event_id,
                profile_id=PROFILE,
                connector_id=CONNECTOR,
                action_id=ACTION,
                attempts=0,
                next_at=now - 1,
                created_at=now,
            )
        )
    return int(seq)


def _totals(db: Database) -> dict[str, int]:
    names = ("success", "error", "retried", "dropped")
    with db.read() as conn:
        row = conn.execute(
            select(*(func.coalesce(func.sum(counters.c[n]), 0) for n in names)).where(
                counters.c.action_id == ACTION
            )
        ).one()
    return dict(zip(names, (int(v) for v in row), strict=True))


def _count(db: Database, table: object) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def _trace(item: Item, outcome: str) -> TraceStep:
    return TraceStep(item.profile_id, "tr1", item.event_id, "delivery", {"outcome": outcome})


def _error(item: Item) -> ErrorRecord:
    return ErrorRecord(item, "Hook", "Events", 1, "http_4xx", 400, "refused", None, None)


def _take_over(db: Database) -> tuple[Worker, Worker, Item, Item]:
    """A claims the row; its lease runs out while it stalls; B claims the row again."""
    now = time.time()
    _queue_one(db, now)
    a, b = Worker(db, "worker-a"), Worker(db, "worker-b")
    [held_by_a] = a.claim(now)
    assert b.claim(now + 1) == []  # leased to A
    [held_by_b] = b.claim(now + LEASE + 1)  # A's lease ended
    assert held_by_b.seq == held_by_a.seq
    return a, b, held_by_a, held_by_b


def test_a_late_success_after_losing_the_lease_is_not_counted_again(db: Database) -> None:
    a, b, held_by_a, held_by_b = _take_over(db)
    lost_before = metrics.LEASES_LOST._value.get()
    done = b.outcomes()
    done.success(held_by_b, time.time())
    done.trace(held_by_b, _trace(held_by_b, "success"))
    assert b.write(done) == []
    late = a.outcomes()
    late.success(held_by_a, time.time())
    late.trace(held_by_a, _trace(held_by_a, "success"))
    assert a.write(late) == [held_by_a.seq]
    assert _totals(db) == {"success": 1, "error": 0, "retried": 0, "dropped": 0}
    assert _count(db, deliveries) == 0
    assert _count(db, traces) == 1  # B's delivery step only
    # Reported by the engine, which logs and counts what ``write`` returns.
    lease.lost([held_by_a.seq], "outcome discarded")
    assert metrics.LEASES_LOST._value.get() == lost_before + 1


@pytest.mark.parametrize("b_finished", [True, False], ids=["b-succeeded", "b-still-sending"])
@pytest.mark.parametrize("late", ["retry", "error", "drop"])
def test_a_late_retry_error_or_drop_after_losing_the_lease_is_discarded(
    db: Database, late: str, b_finished: bool
) -> None:
    a, b, held_by_a, held_by_b = _take_over(db)
    if b_finished:
        done = b.outcomes()
        done.success(held_by_b, time.time())
        b.write(done)
    outcomes = a.outcomes()
    now = time.time()
    if late == "retry":
        outcomes.retry(held_by_a, now + 10, 1, "503", now)
    elif late == "error":
        outcomes.error(_error(held_by_a), now)
    else:
        outcomes.drop(held_by_a, now)
    outcomes.trace(held_by_a, _trace(held_by_a, late))
    assert a.write(outcomes) == [held_by_a.seq]
    expected = {"success": 1 if b_finished else 0, "error": 0, "retried": 0, "dropped": 0}
    assert _totals(db) == expected
    assert _count(db, error_records) == 0
    assert _count(db, traces) == 0
    if not b_finished:
        # B's row is untouched: still leased to B, who can still record it.
        with db.read() as conn:
            row = conn.execute(select(deliveries)).one()
        assert row.lease_owner == "worker-b"
        assert row.attempts == 0
        assert row.next_at == row.lease_until
        done = b.outcomes()
        done.error(_error(held_by_b), time.time())
        assert b.write(done) == []
        assert _totals(db)["error"] == 1
        assert _count(db, error_records) == 1


def test_renewing_and_releasing_a_lost_lease_leave_the_new_owner_alone(db: Database) -> None:
    a, b, held_by_a, held_by_b = _take_over(db)
    until = time.time() + 1000
    with db.begin() as conn:
        assert lease.renew(conn, [held_by_a.seq], until, a.owner) == [held_by_a.seq]
        lease.release(conn, [held_by_a.seq], a.owner, time.time())
    with db.read() as conn:
        row = conn.execute(select(deliveries)).one()
    assert row.lease_owner == "worker-b"
    assert row.lease_until != until
    assert row.next_at > time.time() + LEASE / 2  # still leased, not handed back
    with db.begin() as conn:
        assert lease.renew(conn, [held_by_b.seq], until, b.owner) == []
    with db.read() as conn:
        assert conn.execute(select(deliveries.c.lease_until)).scalar_one() == until


def test_an_owner_that_kept_its_lease_records_retries_and_errors(db: Database) -> None:
    now = time.time()
    _queue_one(db, now)
    _queue_one(db, now)
    a = Worker(db, "worker-a")
    first, second = a.claim(now)
    outcomes = a.outcomes()
    outcomes.retry(first, now + 30, 1, "503", now)
    outcomes.error(_error(second), now)
    assert a.write(outcomes) == []
    assert _totals(db) == {"success": 0, "error": 1, "retried": 1, "dropped": 0}
    with db.read() as conn:
        row = conn.execute(select(deliveries)).one()
    assert (row.seq, row.attempts, row.lease_owner, row.lease_until) == (first.seq, 1, None, None)
    # The retry is no longer leased to A: a late second outcome for it is discarded.
    again = a.outcomes()
    again.success(first, now)
    assert a.write(again) == [first.seq]
    assert _totals(db)["success"] == 0


def test_the_process_owner_id_is_made_once_and_names_the_process() -> None:
    import os
    import socket

    owner = lease.process_owner()
    assert owner == lease.process_owner()
    assert owner.startswith(f"{socket.gethostname()[:80]}-{os.getpid()}-")
    assert len(owner) <= 120
