"""Delivery throughput: Sluice against the bare work it does, in the same run.

Each Sluice figure starts from 50,000 events already accepted and stored, with a
``sluice worker`` on core 0 and an nginx sink on core 1, and stops when the sink has the
last event; Sluice's success counter must then equal what the sink counted.
"""

from __future__ import annotations

import asyncio
import os
import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from sqlalchemy import func, select

from bench.common import configure, open_services, start_sluice, stop, store_events
from bench.sink import NginxSink
from sluice.services import Services
from sluice.storage.tables import counters, error_records

EVENTS = 50_000
CONCURRENCY = 16
REPEAT = 5  # the no-storage loops take a tenth of a second: the best of five is kept


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (robust to a busy machine)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _peak_rss_mb(pid: int) -> float:
    """The process's peak resident set so far (VmHWM), in MB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return round(int(status.split("VmHWM:")[1].split()[0]) / 1024, 1)


def _counter(services: Any, name: str) -> int:
    with services.db.read() as conn:
        return int(conn.execute(select(func.coalesce(func.sum(counters.c[name]), 0))).scalar())


def _stored_events(sink_url: str, events: int, batch_size: int | None) -> tuple[str, Services]:
    """A fresh SQLite database (its URL, and services on it) with the bench's Webhook
    action to ``sink_url`` published and ``events`` events accepted, not yet routed."""
    folder = Path(tempfile.mkdtemp(prefix="sluice-bench-"))
    database = f"sqlite:///{folder / 'bench.db'}"
    services = open_services(database)
    setup = configure(
        services,
        sink_url,
        action_type="send_batched_data" if batch_size else "send_event_data",
        concurrency=CONCURRENCY,
        batch_size=batch_size,
    )
    store_events(services, setup.profile_id, events)
    return database, services


def run_sluice(
    *, batch_size: int | None = None, fail_percent: int = 0, events: int = EVENTS
) -> dict[str, Any]:
    sink = NginxSink(fail_percent=fail_percent).start()
    database, services = _stored_events(sink.url, events, batch_size)
    worker = start_sluice("worker", database)
    try:
        started = None
        cpu_at_start = 0.0
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            ok, failed = sink.counts()
            if started is None and ok + failed:
                started = time.perf_counter()
                cpu_at_start = _cpu_seconds(worker.pid)
            delivered = ok * (batch_size or 1)
            if delivered >= events:
                break
            if worker.poll() is not None:
                raise RuntimeError(worker.stderr.read().decode() if worker.stderr else "died")
            time.sleep(0.01)
        elapsed = time.perf_counter() - (started or time.perf_counter())
        # Let the worker record the last outcomes, then compare its counters with the sink.
        settle = time.monotonic() + 30
        while time.monotonic() < settle:
            success = _counter(services, "success")
            final_errors = _counter(services, "error")
            if success + final_errors >= events:
                break
            time.sleep(0.05)
        ok, failed = sink.counts()
        cpu = _cpu_seconds(worker.pid) - cpu_at_start
        peak_rss = _peak_rss_mb(worker.pid)
        with services.db.read() as conn:
            error_rows = int(conn.execute(select(func.count()).select_from(error_records)).scalar())
        return {
            "events": events,
            "seconds": round(elapsed, 3),
            "events_per_s": round(events / elapsed),
            "sink_ok_requests": ok,
            "sink_failed_requests": failed,
            "success": success,
            "error": final_errors,
            "error_records": error_rows,
            "retried": _counter(services, "retried"),
            "cpu_us_per_event": round(cpu / events * 1e6, 1),
            "worker_peak_rss_mb": peak_rss,
            "exact": success + final_errors == events
            and success == ok * (batch_size or 1)
            and error_rows == final_errors,
        }
    finally:
        stop(worker)
        sink.stop()
        services.db.dispose()


async def _bare_loop(url: str, bodies: list[bytes], concurrency: int) -> float:
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        queue = iter(bodies)

        async def worker() -> None:
            for body in queue:
                async with session.post(
                    url, data=body, headers={"Content-Type": "application/json"}
                ) as response:
                    await response.read()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_bare_aiohttp(events: int = EVENTS) -> dict[str, Any]:
    """The floor of single-event delivery: a plain aiohttp POST loop, same payloads."""
    sink = NginxSink().start()
    os.sched_setaffinity(0, {0})
    try:
        from bench.common import sample_event

        bodies = [orjson.dumps({**sample_event(i), "event_id": f"e{i}"}) for i in range(events)]
        cpu = _own_cpu()
        elapsed = asyncio.run(_bare_loop(sink.url + "/events", bodies, CONCURRENCY))
        cpu = _own_cpu() - cpu
        time.sleep(0.3)
        ok, _ = sink.counts()
        return _figures(
            events, elapsed, sink_ok_requests=ok, cpu_us_per_event=round(cpu / events * 1e6, 1)
        )
    finally:
        sink.stop()
        os.sched_setaffinity(0, {0, 1})


def _figures(events: int, elapsed: float, **extra: Any) -> dict[str, Any]:
    return {
        "events": events,
        "seconds": round(elapsed, 3),
        "events_per_s": round(events / elapsed),
        **extra,
    }


def _timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def _batch_tools(batch: int) -> tuple[Any, Any]:
    """The compiled mappings and feed of the bench's batched action."""
    from sluice.connectors.registry import load_registry
    from sluice.engine.conditions import compile_conditions
    from sluice.engine.mapping import compile_mappings
    from sluice.engine.templates import TemplateEngine

    action_type = load_registry().get("webhook").action("send_batched_data")  # type: ignore[union-attr]
    mappings = compile_mappings(
        action_type,
        [
            {"parameter": "url", "value": "http://127.0.0.1:1/events"},
            {"parameter": "max_batch_size", "value": batch},
        ],
        TemplateEngine(),
    )
    return mappings, compile_conditions([])


def _batch_loop(payloads: list[bytes], batch: int, tools: tuple[Any, Any]) -> list[bytes]:
    """Parse, match, map and serialise: the bare work of batched delivery, no I/O."""
    mappings, matches = tools
    bodies: list[bytes] = []
    chunk: list[Any] = []
    for raw in payloads:
        event = orjson.loads(raw)
        if not matches(event):
            continue
        mappings.resolve(event)
        chunk.append(event)
        if len(chunk) == batch:
            bodies.append(orjson.dumps({"events": chunk}))
            chunk = []
    return bodies


def run_bare_batch_loop(events: int = EVENTS, batch: int = 100) -> dict[str, Any]:
    """The baseline of batched delivery: parse + match + map + serialise, no I/O at all."""
    from bench.common import sample_event

    os.sched_setaffinity(0, {0})
    try:
        payloads = [orjson.dumps({**sample_event(i), "event_id": f"e{i}"}) for i in range(events)]
        tools = _batch_tools(batch)
        elapsed = min(_timed(lambda: _batch_loop(payloads, batch, tools)) for _ in range(REPEAT))
        return _figures(events, elapsed)
    finally:
        os.sched_setaffinity(0, {0, 1})


def run_batch_floor(events: int = EVENTS, batch: int = 100) -> dict[str, Any]:
    """What any batched delivery from stored events must at least do, and nothing more:
    read the stored events (one query), the bare loop's work, and POST the batches with
    aiohttp (concurrency 16) to the same sink. No routing state, outcomes or counters.

    It bounds what the batched target can reach on this machine: Sluice does all of this
    and also records, durably, what it routed and delivered.
    """
    import sqlite3

    sink = NginxSink().start()
    database, services = _stored_events(sink.url, events, batch)
    services.db.dispose()
    os.sched_setaffinity(0, {0})
    try:
        conn = sqlite3.connect(database.removeprefix("sqlite:///"))
        conn.text_factory = bytes
        tools = _batch_tools(batch)

        def deliver() -> None:
            payloads = [row[0] for row in conn.execute("SELECT payload FROM events ORDER BY seq")]
            bodies = _batch_loop(payloads, batch, tools)
            asyncio.run(_bare_loop(sink.url + "/events", bodies, CONCURRENCY))

        elapsed = min(_timed(deliver) for _ in range(REPEAT))
        conn.close()
        time.sleep(0.3)
        ok, _ = sink.counts()
        return _figures(events, elapsed, sink_ok_requests=ok)
    finally:
        os.sched_setaffinity(0, {0, 1})
        sink.stop()
