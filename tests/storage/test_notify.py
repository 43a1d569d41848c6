"""LISTEN/NOTIFY on a real PostgreSQL: a committed transaction wakes the listener, a rolled
back one does not, and a listener whose connection is cut reconnects by itself."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import text

from sluice.storage import notify
from sluice.storage.db import Database


@pytest.fixture
def db(migrated_pg_url: str) -> Iterator[Database]:
    database = Database(migrated_pg_url)
    yield database
    database.dispose()


async def _woken(events: dict[str, asyncio.Event], channel: str, within: float) -> bool:
    try:
        await asyncio.wait_for(events[channel].wait(), within)
    except TimeoutError:
        return False
    events[channel].clear()
    return True


def _fail_after_marking(db: Database, channel: str) -> None:
    with db.begin() as conn:
        notify.later(conn, channel)
        raise RuntimeError("rolled back")


@pytest.mark.pg
def test_a_commit_wakes_the_listener_and_a_rollback_does_not(db: Database) -> None:
    async def scenario() -> None:
        events = {channel: asyncio.Event() for channel in notify.CHANNELS}
        handlers = {channel: event.set for channel, event in events.items()}
        listener = notify.Listener(db.url, handlers, asyncio.get_running_loop())
        listener.start()
        try:
            assert await asyncio.to_thread(listener.connected.wait, 10)
            # On (re)connection every handler runs once: what was missed is looked for.
            assert await _woken(events, notify.EVENTS, 2)
            assert await _woken(events, notify.CONFIG, 2)
            events[notify.DELIVERIES].clear()

            with db.begin() as conn:
                notify.later(conn, notify.EVENTS)
                notify.later(conn, notify.EVENTS)  # many marks, one notification
            assert await _woken(events, notify.EVENTS, 2)
            assert not events[notify.CONFIG].is_set()

            with pytest.raises(RuntimeError, match="rolled back"):
                _fail_after_marking(db, notify.DELIVERIES)
            assert not await _woken(events, notify.DELIVERIES, 0.5)
            # Nothing of the failed transaction lingers on its pooled connection.
            with db.begin() as conn:
                conn.execute(text("SELECT 1"))
            assert not await _woken(events, notify.DELIVERIES, 0.5)

            # A configuration change (``revision.bump``) notifies by itself.
            from sluice.config import revision

            with db.begin() as conn:
                revision.bump(conn)
            assert await _woken(events, notify.CONFIG, 2)
        finally:
            await asyncio.to_thread(listener.stop)

    asyncio.run(scenario())


@pytest.mark.pg
def test_a_cut_listening_connection_is_replaced(db: Database) -> None:
    async def scenario() -> None:
        woken = asyncio.Event()
        listener = notify.Listener(db.url, {notify.EVENTS: woken.set}, asyncio.get_running_loop())
        listener.start()
        try:
            assert await asyncio.to_thread(listener.connected.wait, 10)
            pid = listener.backend_pid
            dsn = notify.libpq_dsn(db.url)
            with psycopg.connect(dsn, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            deadline = asyncio.get_running_loop().time() + 10
            while listener.connections < 2:
                assert asyncio.get_running_loop().time() < deadline, "not reconnected"
                await asyncio.sleep(0.05)
            assert listener.backend_pid not in (None, pid)
            await asyncio.sleep(0.2)
            woken.clear()
            with db.begin() as conn:
                notify.later(conn, notify.EVENTS)
            await asyncio.wait_for(woken.wait(), 2)
        finally:
            await asyncio.to_thread(listener.stop)

    asyncio.run(scenario())


def test_sqlite_transactions_send_nothing(tmp_path: object) -> None:
    db = Database(f"sqlite:///{tmp_path}/n.db")
    try:
        with db.begin() as conn:
            notify.later(conn, notify.EVENTS)
            assert notify.PENDING not in conn.info
    finally:
        db.dispose()
