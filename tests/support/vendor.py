"""A vendor mock on 127.0.0.1: records every request and fails on demand.

Runs an aiohttp server in its own thread and event loop, so tests (sync or async) and
real ``sluice serve`` processes can all talk to it over real HTTP.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    body: bytes | str | dict[str, Any] | list[Any] = b'{"ok": true}'
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    hang: bool = False  # never answer (until the server stops)
    reset: bool = False  # close the connection without an answer


Responder = Callable[[Recorded], Reply]


class VendorMock:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._responders: dict[str, Responder] = {}
        self._queued: dict[str, list[Reply]] = {}
        self.default = Reply()
        self.port = _free_port()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._stop_event: asyncio.Event | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- behaviour -----------------------------------------------------------------------

    def respond(self, path: str, responder: Responder | Reply) -> None:
        """Answer requests to ``path`` (prefix match) with a fixed reply or a function."""
        if isinstance(responder, Reply):
            reply = responder
            self._responders[path] = lambda _r: reply
        else:
            self._responders[path] = responder

    def queue(self, path: str, *replies: Reply) -> None:
        """Answer the next requests to ``path`` with these replies, in order, then as usual."""
        self._queued.setdefault(path, []).extend(replies)

    def received(self, path: str | None = None) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if path is None or r.path.startswith(path)]

    def wait_for(
        self, count: int, path: str | None = None, timeout: float = 10.0
    ) -> list[Recorded]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.received(path)
            if len(got) >= count:
                return got
            time.sleep(0.02)
        got = self.received(path)
        raise AssertionError(f"expected {count} requests to {path or '*'}, got {len(got)}")

    def _reply_for(self, recorded: Recorded) -> Reply:
        for path, replies in self._queued.items():
            if recorded.path.startswith(path) and replies:
                return replies.pop(0)
        best = ""
        for path in self._responders:
            if recorded.path.startswith(path) and len(path) >= len(best):
                best = path
        if best or "" in self._responders:
            return self._responders[best](recorded)
        return self.default

    # --- the server ----------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        recorded = Recorded(
            request.method,
            request.path,
            dict(request.query),
            {k.lower(): v for k, v in request.headers.items()},
            body,
            time.time(),
        )
        reply = self._reply_for(recorded)
        if reply.reset:
            transport = request.transport
            if transport is not None:
                transport.abort()
            with self._lock:
                self.requests.append(recorded)
            raise ConnectionResetError("reset on purpose")
        with self._lock:
            self.requests.append(recorded)
        if reply.hang:
            assert self._stop_event is not None
            await self._stop_event.wait()
        if reply.delay:
            await asyncio.sleep(reply.delay)
        payload = reply.body
        if isinstance(payload, dict | list):
            data = orjson.dumps(payload)
            content_type = "application/json"
        elif isinstance(payload, str):
            data = payload.encode()
            content_type = "text/plain"
        else:
            data = payload
            content_type = "application/json"
        headers = {"Content-Type": content_type, **reply.headers}
        return web.Response(status=reply.status, body=data, headers=headers)

    def start(self) -> VendorMock:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            self._stop_event = asyncio.Event()
            app = web.Application(client_max_size=64 * 1024 * 1024)
            app.router.add_route("*", "/{tail:.*}", self._handle)
            self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
            loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", self.port, backlog=1024)
            loop.run_until_complete(site.start())
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, name="vendor-mock", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is None:
            return
        if self._stop_event is not None:
            loop.call_soon_threadsafe(self._stop_event.set)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
