"""Opening the database: URL handling, drivers, and SQLite's pragmas."""

from __future__ import annotations

import functools
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from sluice.errors import ConfigurationError
from sluice.storage import notify

log = logging.getLogger("sluice.storage")


def normalize_url(url: str) -> str:
    """Pick Sluice's own drivers: a ``+driver`` suffix is accepted but never needed."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigurationError(f"invalid database URL {url!r}") from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+pysqlite").render_as_string(hide_password=False)
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    raise ConfigurationError(f"unsupported database {backend!r}: use sqlite:// or postgresql://")


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL, or None for other backends and in-memory databases."""
    parsed = make_url(normalize_url(url))
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    if parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def _sqlite_on_connect(dbapi_conn: sqlite3.Connection, _record: Any, synchronous: str) -> None:
    # Let SQLAlchemy manage transactions instead of the sqlite3 module's implicit ones.
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    # WAL: readers never block the writer. synchronous=NORMAL: a committed transaction
    # survives a crash of any process; only a power loss can lose the last commits
    # (SLUICE_SQLITE_SYNCHRONOUS=FULL survives that too, at an fsync per commit).
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA synchronous={synchronous}")
    cursor.execute("PRAGMA busy_timeout=10000")
    # Checkpoints are run by a background thread (``Database.start_checkpointer``) so
    # that their I/O stays out of the writer's commits; this is only the safety net, for
    # processes that do not run one (the CLI, tests).
    cursor.execute("PRAGMA wal_autocheckpoint=20000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA temp_store=MEMORY")
    cursor.execute("PRAGMA cache_size=-32000")
    cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    # Writers BEGIN IMMEDIATE: taking the write lock up front means two writers never
    # deadlock upgrading from a read lock. Readers (``Database.read``) take none.
    if conn.get_execution_options().get("sluice_read"):
        conn.exec_driver_sql("BEGIN")
    else:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _synchronous() -> str:
    """SQLite's durability level, from SLUICE_SQLITE_SYNCHRONOUS (NORMAL or FULL)."""
    wanted = os.environ.get("SLUICE_SQLITE_SYNCHRONOUS", "NORMAL").strip().upper()
    if wanted not in ("NORMAL", "FULL"):
        raise ConfigurationError(
            f"SLUICE_SQLITE_SYNCHRONOUS must be NORMAL or FULL, not {wanted!r}"
        )
    return wanted


# Set in a connection's ``info`` by a transaction that changed the runtime configuration.
CONFIG_CHANGED = "sluice_config_changed"


class Database:
    """The engine plus the few backend differences the rest of Sluice needs to know."""

    def __init__(self, url: str, *, pool_size: int = 8) -> None:
        # Called after a committed transaction that changed the runtime configuration, so
        # this process's pipeline sees the change at once (others poll the revision).
        self.config_hooks: list[Callable[[], None]] = []
        self._checkpointer: threading.Thread | None = None
        self._checkpoint_stop = threading.Event()
        self.url = normalize_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        if self.is_sqlite:
            path = sqlite_path(url)
            if path is not None and not path.parent.exists():
                raise ConfigurationError(f"the folder of the database {path} does not exist")
            self.engine: Engine = create_engine(
                self.url, pool_size=pool_size, max_overflow=8, pool_timeout=60
            )
            on_connect = functools.partial(_sqlite_on_connect, synchronous=_synchronous())
            event.listen(self.engine, "connect", on_connect)
            event.listen(self.engine, "begin", _sqlite_on_begin)
        else:
            self.engine = create_engine(
                self.url, pool_size=pool_size, max_overflow=8, pool_pre_ping=True
            )

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A connection in a transaction, committed on success.

        On PostgreSQL, the notifications the transaction asked for (``notify.later``, and
        a configuration change) are sent with its commit.
        """
        with self.engine.begin() as conn:
            try:
                yield conn
                changed = conn.info.pop(CONFIG_CHANGED, False)
                if not self.is_sqlite:
                    if changed:
                        notify.later(conn, notify.CONFIG)
                    notify.send_pending(conn)
            except BaseException:
                # ``info`` outlives the transaction (it belongs to the pooled connection).
                conn.info.pop(CONFIG_CHANGED, None)
                conn.info.pop(notify.PENDING, None)
                raise
        if changed:
            for hook in self.config_hooks:
                hook()

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reads (no write lock on SQLite)."""
        with self.engine.connect().execution_options(sluice_read=True) as conn:
            yield conn
            conn.rollback()

    def start_checkpointer(
        self,
        *,
        busy_every: float = 0.2,
        idle_every: float = 0.5,
        finish: Callable[[], None] | None = None,
        restart_frames: int = 4000,
    ) -> None:
        """SQLite: copy the WAL into the database file in the background (PASSIVE); see
        ``WalCheckpointer``."""
        path = sqlite_path(self.url)
        if path is None or self._checkpointer is not None:
            return
        passes = WalCheckpointer(self, path, busy_every, idle_every, finish, restart_frames)
        self._checkpoint_stop.clear()

        def run() -> None:
            wait = busy_every
            while not self._checkpoint_stop.wait(wait):
                wait = passes.run_once()

        self._checkpointer = threading.Thread(target=run, name="sluice-checkpoint", daemon=True)
        self._checkpointer.start()

    def checkpoint(self) -> tuple[int, int, int]:
        """One PASSIVE checkpoint: (busy, pages in the WAL, pages copied from it)."""
        with self.engine.connect() as conn:
            # On the driver's connection: through SQLAlchemy the statement would first
            # BEGIN IMMEDIATE (``_sqlite_on_begin``), and SQLite refuses to checkpoint
            # inside a transaction.
            dbapi = conn.connection.dbapi_connection
            assert dbapi is not None
            row = dbapi.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(row[0]), int(row[1]), int(row[2])

    def stop_checkpointer(self) -> None:
        if self._checkpointer is not None:
            self._checkpoint_stop.set()
            self._checkpointer.join(5)
            self._checkpointer = None

    def check(self) -> None:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except OperationalError as exc:
            raise ConfigurationError(f"cannot open the database: {exc.orig}") from exc

    def dispose(self) -> None:
        self.engine.dispose()


class WalCheckpointer:
    """The background checkpoint passes of a SQLite database.

    Under steady writes a PASSIVE pass never quite finishes (the writer appends while it
    copies), and only a finished checkpoint lets the next commit start the WAL over. So
    once the WAL holds ``restart_frames`` pages, ``finish`` asks the process's writer to
    checkpoint between two of its transactions: the pass just made leaves it only the
    last pages to copy (3-5 ms at 23,000 events/s). Passes come every ``busy_every``
    seconds while the WAL is written to, every ``idle_every`` while it is not.
    """

    def __init__(
        self,
        db: Database,
        path: Path,
        busy_every: float,
        idle_every: float,
        finish: Callable[[], None] | None,
        restart_frames: int,
    ) -> None:
        self.db = db
        self.wal = path.with_name(path.name + "-wal")
        self.busy_every = busy_every
        self.idle_every = idle_every
        self.finish = finish
        self.restart_frames = restart_frames
        self._seen = -1
        self._frames = -1
        self._warned = 0.0

    def _written(self) -> int:
        # What tells whether the WAL was written to since the last pass: its modification
        # time. Its page count alone starts over after every finished checkpoint and so
        # can read the same in two busy passes: the WAL then grew unchecked while the
        # passes waited ``idle_every``.
        try:
            return self.wal.stat().st_mtime_ns
        except OSError:
            return 0

    def run_once(self) -> float:
        """One pass; returns how long to wait for the next."""
        stamp = self._written()
        try:
            _busy, frames, _copied = self.db.checkpoint()
        except Exception as exc:  # the next pass tries again
            if time.monotonic() - self._warned > 60:
                self._warned = time.monotonic()
                log.warning("checkpointing the SQLite WAL failed: %s", exc)
            return self.busy_every
        # Either sign will do: a coarse file system may show the same time twice.
        busy = stamp != self._seen or frames != self._frames
        self._seen, self._frames = stamp, frames
        if self.finish is not None and frames >= self.restart_frames:
            self.finish()
        return self.busy_every if busy else self.idle_every
