"""The group-commit writer and the Joiner that stores a turn's requests in one job."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import Connection, text

from sluice.services import Services
from sluice.storage import migrate
from sluice.storage.writer import Joiner, StorageUnavailable, Writer


def test_callers_of_one_turn_share_one_job_and_all_return_after_the_commit(
    services: Services,
) -> None:
    migrate.upgrade(services.db)
    jobs: list[list[Any]] = []

    def write(conn: Connection, rows: list[Any]) -> None:
        jobs.append(list(rows))
        for row in rows:
            conn.execute(
                text("INSERT INTO leases (name, holder, until) VALUES (:n, 'test', 0)"),
                {"n": row},
            )

    async def scenario() -> None:
        writer = Writer(services.db, window_ms=0)
        writer.start()
        try:
            joiner = Joiner(writer, write)
            await asyncio.gather(*(joiner.add([f"a{n}", f"b{n}"]) for n in range(10)))
            await joiner.add(["later"])  # a later turn: a job of its own
        finally:
            writer.stop()

    asyncio.run(scenario())
    assert [len(job) for job in jobs] == [20, 1]
    with services.db.read() as conn:
        assert conn.execute(text("SELECT count(*) FROM leases")).scalar() == 21


def test_a_cancelled_caller_does_not_cancel_the_others_and_failures_reach_everyone(
    services: Services,
) -> None:
    migrate.upgrade(services.db)
    written: list[Any] = []

    def write(conn: Connection, rows: list[Any]) -> None:
        if "boom" in rows:
            raise StorageUnavailable("disk full")
        written.extend(rows)

    async def scenario() -> None:
        writer = Writer(services.db, window_ms=0)
        writer.start()
        try:
            joiner = Joiner(writer, write)
            first = asyncio.ensure_future(joiner.add([1]))
            second = asyncio.ensure_future(joiner.add([2]))
            await asyncio.sleep(0)
            first.cancel()
            await second
            assert written == [1, 2]  # the cancelled caller's rows were still stored
            failing = [asyncio.ensure_future(joiner.add(["boom"])) for _ in range(3)]
            for future in failing:
                with pytest.raises(StorageUnavailable):
                    await future
        finally:
            writer.stop()

    asyncio.run(scenario())
