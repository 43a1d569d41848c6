"""Shared steps of the reliability scenarios: a real server, connectors, producers, summaries."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from tests.support.server import SluiceProcess, cli, http
from tests.support.vendor import Recorded, Reply, VendorMock

CI = os.environ.get("SLUICE_RELIABILITY_SCALE") == "ci"
# The vendor mock's resets on purpose would each print a traceback.
logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
API = "/api/v1"


def scaled(ci: float, long: float) -> float:
    """The short figure under ``SLUICE_RELIABILITY_SCALE=ci``, the long one otherwise."""
    return ci if CI else long


@dataclass
class Stack:
    folder: Path
    database: str
    server: SluiceProcess
    token: str

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return http(method, self.server.url + API + path, body, self.token, timeout=30)

    def add_webhook(
        self,
        url: str,
        *,
        name: str = "Hook",
        configuration: dict[str, Any] | None = None,
        action_type: str = "send_event_data",
    ) -> tuple[str, str]:
        """A switched-on, published webhook connector with one action sending to ``url``."""
        config = {"first_retry_seconds": 0.2, "max_attempts": 8, "max_retry_hours": 1}
        config.update(configuration or {})
        status, connector = self.api(
            "POST",
            "/profiles/acme/main/connectors",
            {"type": "webhook", "name": name, "enabled": True, "configuration": config},
        )
        assert status == 201, connector
        cid = connector["id"]
        status, action = self.api(
            "POST",
            f"/profiles/acme/main/connectors/{cid}/actions",
            {
                "name": "Events",
                "type": action_type,
                "enabled": True,
                "source": {"event_feed": "all_events"},
                "mappings": [{"parameter": "url", "value": url}],
            },
        )
        assert status == 201, action
        status, body = self.api("POST", f"/profiles/acme/main/connectors/{cid}/publish", {})
        assert status == 201, body
        return cid, action["id"]

    def resume(self, connector_id: str) -> None:
        status, body = self.api("POST", f"/profiles/acme/main/connectors/{connector_id}/resume", {})
        assert status == 200, body

    def errors(self, **params: str) -> list[dict[str, Any]]:
        """Every error record (following the pages' cursors)."""
        found: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = {"limit": "1000", **params, **({"cursor": cursor} if cursor else {})}
            status, body = self.api("GET", f"/profiles/acme/main/errors?{urlencode(page)}")
            assert status == 200, body
            found.extend(body["errors"])
            cursor = body["next_cursor"]
            if not cursor:
                return found


@contextmanager
def stack(
    folder: Path, *, env: dict[str, str] | None = None, database: str | None = None
) -> Iterator[Stack]:
    """A real ``sluice serve`` on a fresh SQLite database with profile acme/main."""
    database = database or f"sqlite:///{folder / 'sluice.db'}"
    token = (
        cli(database, "tokens", "create", "--name", "t", "--role", "admin").strip().splitlines()[-1]
    )
    from tests.support.server import base_env

    server = SluiceProcess(folder, database, env=base_env(**(env or {})))
    server.start()
    try:
        made = Stack(folder, database, server, token)
        assert made.api("POST", "/profiles", {"account": "acme", "profile": "main"})[0] == 201
        yield made
    finally:
        server.stop()


@dataclass
class Tally:
    """What a vendor mock saw: 2xx answers per event id, and every attempt."""

    ok: Counter[str] = field(default_factory=Counter)
    attempts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, request: Recorded) -> None:
        data = request.json()
        ids = [e["event_id"] for e in data["events"]] if "events" in data else [data["event_id"]]
        with self.lock:
            self.ok.update(ids)


def serve(mock: VendorMock, path: str, decide: Callable[[Recorded], Reply]) -> Tally:
    """Answer ``path`` with ``decide``; 2xx answers count as delivered in the tally."""
    tally = Tally()

    def answer(request: Recorded) -> Reply:
        with tally.lock:
            tally.attempts += 1
        reply = decide(request)
        if 200 <= reply.status < 300 and not (reply.hang or reply.reset):
            tally.record(request)
        return reply

    mock.respond(path, answer)
    return tally


class Producer:
    """Threads posting single events to ``/event`` as fast as the server takes them."""

    def __init__(self, url: Callable[[], str], threads: int = 4, pause: float = 0.0) -> None:
        self.url = url
        self.accepted: list[str] = []
        self.sent = 0
        self.refused = 0
        self.latencies: list[float] = []
        self.pause = pause
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(n,)) for n in range(threads)]

    def _run(self, worker: int) -> None:
        n = 0
        while not self._stop.is_set():
            n += 1
            started = time.perf_counter()
            try:
                status, body = http(
                    "POST",
                    self.url() + "/event",
                    {"tealium_account": "acme", "worker": worker, "n": n},
                    timeout=5,
                )
            except OSError:
                with self._lock:
                    self.sent += 1
                    self.refused += 1
                time.sleep(0.05)
                continue
            elapsed = time.perf_counter() - started
            with self._lock:
                self.sent += 1
                if status == 200:
                    self.accepted.extend(body["event_ids"])
                    self.latencies.append(elapsed)
                else:
                    self.refused += 1
            if self.pause:
                time.sleep(self.pause)

    def start(self) -> Producer:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(15)


def wait_delivered(
    accepted: list[str], tally: Tally, timeout: float, also: Callable[[], set[str]] | None = None
) -> list[str]:
    """Wait until every accepted id is delivered (or in ``also``); return those still missing."""
    deadline = time.monotonic() + timeout
    want = set(accepted)
    while True:
        with tally.lock:
            missing = want - set(tally.ok)
        if also is not None and missing:
            missing -= also()
        if not missing or time.monotonic() > deadline:
            return sorted(missing)
        time.sleep(0.25)


def summary(
    name: str,
    *,
    sent: int,
    accepted: int,
    delivered: int,
    errored: int,
    lost: int,
    duplicated: int,
    note: str = "",
) -> str:
    line = (
        f"[reliability] {name}: sent={sent} accepted={accepted} delivered={delivered} "
        f"errored={errored} lost={lost} duplicated={duplicated}" + (f" ({note})" if note else "")
    )
    print("\n" + line)
    return line
