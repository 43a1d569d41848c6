"""PostgreSQL LISTEN/NOTIFY: wake other processes the moment there is work for them.

A transaction marks what it changed (``later``); ``Database.begin`` sends one ``NOTIFY``
per channel just before it commits, and PostgreSQL delivers it only once the commit is
done, so a woken process always finds the rows. Each process holds one listening
connection (``Listener``, a small thread); when that connection is lost, the process
falls back to polling (``Settings.poll_fallback_seconds``) and the listener reconnects.
SQLite has none of this: there, one process does the work and wakes itself.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping

from sqlalchemy import Connection
from sqlalchemy.engine import make_url

log = logging.getLogger("sluice.storage")

# Events were stored (wakes routing), delivery rows were queued for no one in particular
# (wakes claiming), the runtime configuration changed (wakes reloading).
EVENTS = "sluice_events"
DELIVERIES = "sluice_deliveries"
CONFIG = "sluice_config"
CHANNELS = (EVENTS, DELIVERIES, CONFIG)

# In a connection's ``info``: the channels to notify when its transaction commits.
PENDING = "sluice_notify"

RECONNECT_SECONDS = (0.5, 1.0, 2.0, 5.0)


def later(conn: Connection, channel: str) -> None:
    """Notify ``channel`` when this transaction commits (PostgreSQL only; many marks,
    one notification)."""
    if conn.dialect.name == "postgresql":
        conn.info.setdefault(PENDING, set()).add(channel)


def send_pending(conn: Connection) -> None:
    """Called by ``Database.begin`` just before the commit."""
    for channel in sorted(conn.info.pop(PENDING, ())):
        # Channel names are the constants above, never user input.
        conn.exec_driver_sql(f"NOTIFY {channel}")


def libpq_dsn(url: str) -> str:
    """The libpq form of a SQLAlchemy URL, for a plain psycopg connection."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class Listener:
    """One connection that LISTENs on every channel, in a thread of its own, and calls the
    channel's handler on ``loop`` (a burst of notifications makes one call). It reconnects,
    with a growing pause, whenever the connection fails; after every (re)connection all
    handlers are called once, since what was notified meanwhile is lost."""

    def __init__(
        self,
        url: str,
        handlers: Mapping[str, Callable[[], None]],
        loop: asyncio.AbstractEventLoop,
        *,
        check_every: float = 5.0,
    ) -> None:
        self.dsn = libpq_dsn(url)
        self.handlers = dict(handlers)
        self.loop = loop
        self.check_every = check_every
        self.connected = threading.Event()
        self.connections = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # The server process of the listening connection (tests end it to cut the line).
        self.backend_pid: int | None = None
        self._lock = threading.Lock()
        self._due: set[str] = set()

    def _notified(self, channels: Iterable[str]) -> None:
        with self._lock:
            first = not self._due
            self._due.update(channels)
        if first:
            try:
                self.loop.call_soon_threadsafe(self._dispatch)
            except RuntimeError:  # the loop is closed: nobody to wake
                pass

    def _dispatch(self) -> None:
        with self._lock:
            due, self._due = self._due, set()
        for channel in sorted(due):
            handler = self.handlers.get(channel)
            if handler is not None:
                handler()

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="sluice-listen", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self._listen()
                failures = 0
            except Exception as exc:  # any failure of the connection: make a new one
                if self.connected.is_set():
                    failures = 0  # it had worked: retry soon
                pause = RECONNECT_SECONDS[min(failures, len(RECONNECT_SECONDS) - 1)]
                if failures == 0:
                    log.warning("the LISTEN connection failed (%s); polling until it is back", exc)
                failures += 1
                self._stop.wait(pause)
            finally:
                self.connected.clear()
                self.backend_pid = None

    def _listen(self) -> None:
        import psycopg  # only processes on PostgreSQL load the driver

        with psycopg.connect(self.dsn, autocommit=True, connect_timeout=5) as conn:
            self.backend_pid = conn.info.backend_pid
            for channel in CHANNELS:
                conn.execute(f"LISTEN {channel}")
            self.connections += 1
            self.connected.set()
            if self.connections > 1:
                log.info("the LISTEN connection is back")
            self._notified(CHANNELS)
            quiet_since = time.monotonic()
            while not self._stop.is_set():
                # Returns with the first packet of notifications, or after a tenth of a
                # second of none, so that stopping never waits long (a wake-up costs a
                # poll call, nothing on the server).
                notices = list(conn.notifies(timeout=0.1, stop_after=1))
                if notices:
                    self._notified(n.channel for n in notices)
                    quiet_since = time.monotonic()
                if time.monotonic() - quiet_since > self.check_every:
                    # Nothing for a while: make sure the connection is still alive, so a
                    # silently dropped one is noticed and replaced.
                    conn.execute("SELECT 1")
                    quiet_since = time.monotonic()
