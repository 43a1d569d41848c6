"""One thread that performs every write of a process, many jobs per transaction.

Group commit: while one transaction commits, new jobs queue up; the next transaction takes
them all. A collect request waits for the commit that holds its events (durable before the
200), yet thousands of requests share one fsync. Jobs are functions of a Connection; when
a transaction fails, its jobs are run again one per transaction so one bad job fails alone.
On SQLite this also means writers never wait on each other's locks.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError, OperationalError

from sluice.errors import SluiceError
from sluice.storage.db import Database

log = logging.getLogger("sluice.storage")

T = TypeVar("T")
Job = Callable[[Connection], Any]


class StorageUnavailable(SluiceError):
    """The database cannot take writes now (disk full, locked, gone)."""


def _translate(exc: BaseException) -> BaseException:
    if isinstance(exc, OperationalError | DBAPIError):
        text = str(getattr(exc, "orig", exc)).lower()
        if "full" in text or "no space" in text or "disk" in text or "locked" in text:
            return StorageUnavailable(f"the database cannot store now: {text}")
        if exc.connection_invalidated or "closed" in text or "connection" in text:
            return StorageUnavailable(f"the database cannot store now: {text}")
    return exc


@dataclass
class _Pending:
    fn: Job
    future: concurrent.futures.Future[Any] | None = None
    aio: asyncio.Future[Any] | None = None
    loop: asyncio.AbstractEventLoop | None = None
    weight: int = 1
    result: Any = None
    error: BaseException | None = field(default=None)


class Writer:
    def __init__(self, db: Database, *, window_ms: float = 2.0, max_batch: int = 2000) -> None:
        self.db = db
        self.window = window_ms / 1000.0
        self.max_batch = max_batch
        self._jobs: deque[_Pending] = deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._running = False
        # Tests set this to make the next transactions fail as a full disk would.
        self.fault: Callable[[], None] | None = None
        self.commits = 0
        self.checkpoints = 0
        self._checkpoint_wanted = threading.Event()

    # --- submitting ------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._running = True
        self._thread = threading.Thread(target=self._run, name="sluice-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        with self._cond:
            self._running = False
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _put(self, pending: _Pending) -> None:
        with self._cond:
            if not self._running:
                raise StorageUnavailable("the writer is stopped")
            self._jobs.append(pending)
            self._cond.notify()

    async def run(
        self,
        fn: Callable[[Connection], T],
        weight: int = 1,
        *,
        if_cancelled: Callable[[T], None] | None = None,
    ) -> T:
        """Run ``fn`` in the next transaction and wait until it is committed.

        Cancelling the caller does not stop a transaction already queued. When it leases
        work (claims), ``if_cancelled`` receives what it committed, so that the caller's
        shutdown can hand that work back rather than leave it leased to nobody.
        """
        aio = self.submit(fn, weight)
        if if_cancelled is None:
            return await aio
        try:
            return await asyncio.shield(aio)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                if_cancelled(await aio)
            raise

    def submit(self, fn: Callable[[Connection], T], weight: int = 1) -> asyncio.Future[T]:
        """Queue ``fn`` for the next transaction; the future resolves once it committed."""
        loop = asyncio.get_running_loop()
        aio: asyncio.Future[T] = loop.create_future()
        self._put(_Pending(fn, aio=aio, loop=loop, weight=weight))
        return aio

    def run_sync(self, fn: Callable[[Connection], T], timeout: float | None = 60) -> T:
        """From a plain thread: run ``fn`` in the next transaction and wait for the commit."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._put(_Pending(fn, future=future))
        return future.result(timeout)

    def backlog(self) -> int:
        return len(self._jobs)

    def checkpoint_soon(self) -> None:
        """SQLite: checkpoint between this writer's next two transactions.

        Called from the background checkpointer (``Database.start_checkpointer``) when
        the WAL has grown: a checkpoint finishes only when nothing is appended meanwhile,
        and between two of its own transactions the writer is sure nothing is.
        """
        self._checkpoint_wanted.set()

    # --- the thread ------------------------------------------------------------------

    def _take(self) -> list[_Pending] | None:
        with self._cond:
            while not self._jobs:
                if not self._running:
                    return None
                self._cond.wait(0.5)
            batch = [self._jobs.popleft()]
        weight = batch[0].weight
        deadline = time.monotonic() + self.window
        while weight < self.max_batch:
            with self._cond:
                while self._jobs and weight < self.max_batch:
                    job = self._jobs.popleft()
                    batch.append(job)
                    weight += job.weight
                if weight >= self.max_batch or not self._running:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
        return batch

    def _run(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                return
            self._execute(batch)
            if self._checkpoint_wanted.is_set():
                self._checkpoint_wanted.clear()
                try:
                    self.db.checkpoint()
                    self.checkpoints += 1
                except Exception:  # the background checkpointer asks again
                    log.debug("checkpoint failed", exc_info=True)

    def _transaction(self, jobs: list[_Pending]) -> None:
        if self.fault is not None:
            self.fault()
        with self.db.begin() as conn:
            for job in jobs:
                job.result = job.fn(conn)
        self.commits += 1

    def _execute(self, batch: list[_Pending]) -> None:
        try:
            self._transaction(batch)
        except BaseException as exc:
            error = _translate(exc)
            if isinstance(error, StorageUnavailable) or len(batch) == 1:
                if not isinstance(error, StorageUnavailable):
                    log.exception("a write failed")
                for job in batch:
                    job.error = error
            else:
                for job in batch:
                    try:
                        self._transaction([job])
                    except BaseException as single:
                        job.error = _translate(single)
                        if not isinstance(job.error, StorageUnavailable):
                            log.exception("a write failed")
        self._resolve(batch)

    @staticmethod
    def _resolve(batch: list[_Pending]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[_Pending]] = {}
        for job in batch:
            if job.future is not None:
                if job.error is not None:
                    job.future.set_exception(job.error)
                else:
                    job.future.set_result(job.result)
            elif job.loop is not None:
                by_loop.setdefault(job.loop, []).append(job)
        for loop, jobs in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, jobs)
            except RuntimeError:  # the loop is closed: nobody waits any more
                pass


def _settle(jobs: list[_Pending]) -> None:
    for job in jobs:
        if job.aio is None or job.aio.done():
            continue
        if job.error is not None:
            job.aio.set_exception(job.error)
        else:
            job.aio.set_result(job.result)


class Joiner:
    """Rows from every caller in one turn of the event loop, written by one writer job.

    The collect API's requests each have a few events to store: the first caller of a
    turn schedules the job for the end of the turn, the others join it, and all of them
    return once that one transaction committed. One job instead of one per request saves
    the writer's queue and wake-up costs and a statement per request.
    """

    def __init__(self, writer: Writer, write: Callable[[Connection, list[Any]], None]) -> None:
        self.writer = writer
        self.write = write
        self._rows: list[Any] | None = None
        self._done: asyncio.Future[None] | None = None

    async def add(self, rows: list[Any]) -> None:
        """Store ``rows`` with the rest of this turn's; returns once committed."""
        if self._rows is None or self._done is None:
            loop = asyncio.get_running_loop()
            self._rows = []
            self._done = loop.create_future()
            loop.call_soon(self._submit)
        done = self._done
        self._rows.extend(rows)
        await asyncio.shield(done)  # one caller cancelled must not cancel the others

    def _submit(self) -> None:
        rows, done = self._rows or [], self._done
        self._rows = self._done = None
        assert done is not None
        try:
            job = self.writer.submit(
                functools.partial(_write_rows, self.write, rows), len(rows) or 1
            )
        except BaseException as exc:  # the writer is stopped
            done.set_exception(exc)
            return
        job.add_done_callback(functools.partial(_pass_on, to=done))


def _write_rows(
    write: Callable[[Connection, list[Any]], None], rows: list[Any], conn: Connection
) -> None:
    write(conn, rows)


def _pass_on(job: asyncio.Future[Any], to: asyncio.Future[None]) -> None:
    if to.done():
        return
    if job.cancelled():
        to.cancel()
    elif (error := job.exception()) is not None:
        to.set_exception(error)
    else:
        to.set_result(None)
