"""Memory: idle processes, RSS per queued event, and RSS drift under sustained load."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.common import configure, open_services, rss_mb, start_sluice, stop
from bench.ingest import LUA, _wait
from bench.sink import NginxSink, free_port


def _fresh_database() -> tuple[Path, str]:
    folder = Path(tempfile.mkdtemp(prefix="sluice-mem-"))
    database = f"sqlite:///{folder / 'mem.db'}"
    open_services(database).db.dispose()  # migrated now, as after a first start
    return folder, database


def idle() -> dict[str, Any]:
    folder, database = _fresh_database()
    port = free_port()
    serve = start_sluice("serve", database, cpu=None, port=port)
    worker_folder, worker_db = _fresh_database()
    worker = start_sluice("worker", worker_db, cpu=None)
    try:
        _wait(f"http://127.0.0.1:{port}/readyz")
        time.sleep(5)
        return {
            "serve_idle_mb": round(rss_mb(serve.pid), 1),
            "worker_idle_mb": round(rss_mb(worker.pid), 1),
        }
    finally:
        stop(serve)
        stop(worker)
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(worker_folder, ignore_errors=True)


def _post(url: str, body: dict[str, Any]) -> None:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        response.read()


def per_queued_event(count: int = 100_000) -> dict[str, Any]:
    """Accept ``count`` events for a vendor that keeps failing: they wait in the queue."""
    folder, database = _fresh_database()
    sink = NginxSink(fail_percent=100).start()
    services = open_services(database)
    configure(services, sink.url)
    services.db.dispose()
    port = free_port()
    serve = start_sluice("serve", database, cpu=None, port=port)
    try:
        _wait(f"http://127.0.0.1:{port}/readyz")
        time.sleep(3)
        before = rss_mb(serve.pid)
        shared = {"tealium_account": "bench", "tealium_profile": "main", "page": "/x"}
        for start in range(0, count, 1000):
            events = [{"n": start + i, "tealium_event": "page_view"} for i in range(1000)]
            _post(f"http://127.0.0.1:{port}/bulk-event", {"shared": shared, "events": events})
        time.sleep(10)
        after = rss_mb(serve.pid)
        return {
            "queued_events": count,
            "rss_before_mb": round(before, 1),
            "rss_after_mb": round(after, 1),
            "bytes_per_queued_event": round((after - before) * 1024 * 1024 / count),
        }
    finally:
        stop(serve)
        sink.stop()
        shutil.rmtree(folder, ignore_errors=True)


def drift(seconds: int = 60) -> dict[str, Any]:
    """Sustained load (wrk posting events, deliveries to the sink): RSS at 10 s and at the end."""
    folder, database = _fresh_database()
    sink = NginxSink().start()
    services = open_services(database)
    configure(services, sink.url)
    services.db.dispose()
    port = free_port()
    serve = start_sluice("serve", database, cpu=0, port=port)
    script = folder / "post.lua"
    script.write_text(LUA)
    try:
        _wait(f"http://127.0.0.1:{port}/readyz")
        wrk = subprocess.Popen(
            [
                "taskset",
                "-c",
                "1",
                "wrk",
                "-t1",
                "-c16",
                f"-d{seconds}s",
                "-s",
                str(script),
                f"http://127.0.0.1:{port}/event",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        samples = []
        started = time.monotonic()
        while wrk.poll() is None:
            samples.append((round(time.monotonic() - started, 1), round(rss_mb(serve.pid), 1)))
            time.sleep(1)
        at_10 = next((mb for t, mb in samples if t >= 10), samples[-1][1])
        at_end = samples[-1][1]
        return {
            "seconds": seconds,
            "rss_at_10s_mb": at_10,
            "rss_at_end_mb": at_end,
            "growth": round(at_end / at_10 - 1, 3),
        }
    finally:
        stop(serve)
        sink.stop()
        shutil.rmtree(folder, ignore_errors=True)
