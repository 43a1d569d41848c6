"""Scale-out: delivered events/s with 1, 2 and 4 worker processes on PostgreSQL, against
one process on SQLite, in the same run; and the queue's claim throughput.

Needs a PostgreSQL URL in ``SLUICE_BENCH_PG_URL`` or ``SLUICE_TEST_PG_URL`` (a role that
may create databases); ``bash scripts/with-postgres.sh uv run python -m bench.bench_scale``
starts a throwaway one. Each figure starts from 50,000 events already stored and stops
when the nginx sink has the last one; the success counters must then equal the sink's
count. Prints figures; asserts nothing.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import func, literal, select
from sqlalchemy.engine import make_url

from bench.common import configure, env, open_services, stop, store_events
from bench.sink import NginxSink
from sluice.delivery.engine import _claim
from sluice.storage.tables import counters, deliveries, events

EVENTS = 50_000
CONCURRENCY = 16
CLAIM_ROWS = 100_000
CLAIM_BATCH = 1000


def _pg_base() -> str:
    url = os.environ.get("SLUICE_BENCH_PG_URL") or os.environ.get("SLUICE_TEST_PG_URL")
    if not url:
        sys.exit("set SLUICE_BENCH_PG_URL (or run under scripts/with-postgres.sh)")
    return url


@contextmanager
def pg_database() -> Iterator[str]:
    admin = make_url(_pg_base()).set(drivername="postgresql")
    dsn = admin.render_as_string(hide_password=False)
    name = f"sluice_bench_{secrets.token_hex(4)}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def _success(services: Any) -> int:
    with services.db.read() as conn:
        return int(conn.execute(select(func.coalesce(func.sum(counters.c.success), 0))).scalar())


def delivered_per_second(database: str, workers: int) -> dict[str, Any]:
    sink = NginxSink(cpu=None).start()
    services = open_services(database)
    setup = configure(services, sink.url, concurrency=CONCURRENCY)
    store_events(services, setup.profile_id, EVENTS)
    # Their logs go to a file: a pipe nobody reads would block them once full.
    log_path = Path(tempfile.mkstemp(prefix="sluice-bench-worker-", suffix=".log")[1])
    log = log_path.open("ab")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "sluice", "worker", "--database", database],
            env=env(),
            stdout=log,
            stderr=log,
        )
        for _ in range(workers)
    ]
    try:
        started = None
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            ok, failed = sink.counts()
            if started is None and ok + failed:
                started = time.perf_counter()
            if ok >= EVENTS:
                break
            time.sleep(0.01)
        elapsed = time.perf_counter() - (started or time.perf_counter())
        settle = time.monotonic() + 30
        while time.monotonic() < settle and _success(services) < EVENTS:
            time.sleep(0.05)
        ok, _ = sink.counts()
        success = _success(services)
        errors = log_path.read_text(errors="replace").count("Traceback")
        return {
            "workers": workers,
            "events": EVENTS,
            "seconds": round(elapsed, 2),
            "events_per_s": round(EVENTS / elapsed) if elapsed else None,
            "sink_requests": ok,
            "success_counted": success,
            "exact": success == EVENTS and ok == EVENTS,
            "worker_tracebacks": errors,
            "worker_log": str(log_path),
        }
    finally:
        for proc in procs:
            stop(proc)
        sink.stop()
        services.db.dispose()


def claim_throughput(database: str, threads: int) -> dict[str, Any]:
    """Claims/s of due rows: ``_claim`` (SELECT ... FOR UPDATE SKIP LOCKED + lease) in
    batches of 1,000, from ``threads`` connections at once, until the table is drained."""
    services = open_services(database)
    setup = configure(services, "http://127.0.0.1:9")
    store_events(services, setup.profile_id, CLAIM_ROWS)
    now = time.time()
    with services.db.begin() as conn:
        conn.execute(
            deliveries.insert().from_select(
                [
                    "event_seq",
                    "event_id",
                    "profile_id",
                    "connector_id",
                    "action_id",
                    "attempts",
                    "next_at",
                    "created_at",
                ],
                select(
                    events.c.seq,
                    events.c.id,
                    events.c.profile_id,
                    literal(setup.connector_id),
                    literal(setup.action_id),
                    literal(0),
                    literal(now),
                    literal(now),
                ),
            )
        )
    claimed = [0] * threads
    # Claimed rows are leased far ahead, so each row is claimed exactly once.
    far = time.time()

    def claimer(n: int) -> None:
        while True:
            with services.db.begin() as conn:
                got = _claim(
                    conn,
                    [(setup.connector_id, CLAIM_BATCH)],
                    now=far,
                    postgres=True,
                    lease=far + 3600,
                )
            items = got[setup.connector_id][0]
            if not items:
                return
            claimed[n] += len(items)

    started = time.perf_counter()
    pool = [threading.Thread(target=claimer, args=(n,)) for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    elapsed = time.perf_counter() - started
    services.db.dispose()
    return {
        "connections": threads,
        "rows": sum(claimed),
        "batch": CLAIM_BATCH,
        "seconds": round(elapsed, 2),
        "claims_per_s": round(sum(claimed) / elapsed),
    }


def main() -> int:
    print(f"# scale-out bench, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"machine: {os.cpu_count()} cores, {_cpu_model()}")
    folder = Path(tempfile.mkdtemp(prefix="sluice-bench-scale-"))
    sqlite = delivered_per_second(f"sqlite:///{folder / 'bench.db'}", 1)
    print(f"sqlite, 1 worker:      {sqlite}", flush=True)
    results = {"sqlite_1": sqlite}
    for workers in [int(n) for n in os.environ.get("SLUICE_BENCH_WORKERS", "1,2,4").split(",")]:
        with pg_database() as database:
            figure = delivered_per_second(database, workers)
        results[f"postgresql_{workers}"] = figure
        print(f"postgresql, {workers} worker(s): {figure}", flush=True)
    for threads in (1, 4):
        with pg_database() as database:
            claims = claim_throughput(database, threads)
        print(f"claim throughput: {claims}", flush=True)
    base = results["postgresql_1"]["events_per_s"] or 1
    for workers in (2, 4):
        ratio = (results[f"postgresql_{workers}"]["events_per_s"] or 0) / base
        print(f"postgresql {workers} workers vs 1: {ratio:.2f}x")
    print(f"postgresql 1 worker vs sqlite: {base / (sqlite['events_per_s'] or 1):.2f}x")
    return 0


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


if __name__ == "__main__":
    sys.exit(main())
