"""Scale-out: delivered events/s with 1, 2 and 4 worker processes on PostgreSQL, against
one process on SQLite, in the same run; the queue's claim throughput; what the queue
tables hold under a minute of steady load (dead tuples, size); and the latency from the
collect API to the vendor with one ``serve --no-workers`` and one worker.

Needs a PostgreSQL URL in ``SLUICE_BENCH_PG_URL`` or ``SLUICE_TEST_PG_URL`` (a role that
may create databases); ``bash scripts/with-postgres.sh uv run python -m bench.bench_scale``
starts a throwaway one. Each figure starts from 50,000 events already stored and stops
when the nginx sink has the last one; the success counters must then equal the sink's
count. Prints figures; asserts nothing.

``SLUICE_BENCH_BASELINE_SRC`` (a folder with an older ``sluice`` package, e.g. from
``git archive``) also measures the latency with that code, for a before/after figure.
"""

from __future__ import annotations

import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import func, literal, select, text
from sqlalchemy.engine import make_url

from bench.common import configure, env, open_services, stop, store_events
from bench.sink import NginxSink
from sluice.delivery.engine import _claim
from sluice.storage import datasets
from sluice.storage.tables import counters, deliveries, events

EVENTS = 50_000
CONCURRENCY = 16
CLAIM_ROWS = 100_000
CLAIM_BATCH = 1000
# Small datasets, so that a run of 50,000 events rotates through several of each.
DATASET_ROWS = 10_000
SUSTAINED_SECONDS = 60
SUSTAINED_RATE = 2000
SUSTAINED_DATASET_ROWS = 20_000
LATENCY_EVENTS = 300
LATENCY_INTERVAL = 0.05


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
    services = open_services(database, dataset_rows=DATASET_ROWS)
    setup = configure(services, sink.url, concurrency=CONCURRENCY)
    store_events(services, setup.profile_id, EVENTS)
    # Their logs go to a file: a pipe nobody reads would block them once full.
    log_path = Path(tempfile.mkstemp(prefix="sluice-bench-worker-", suffix=".log")[1])
    log = log_path.open("ab")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "sluice", "worker", "--database", database],
            env=env(SLUICE_PG_DATASET_ROWS=str(DATASET_ROWS)),
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
        queue = {} if services.db.is_sqlite else queue_upkeep(services)
        return {
            "workers": workers,
            "events": EVENTS,
            "seconds": round(elapsed, 2),
            "events_per_s": round(EVENTS / elapsed) if elapsed else None,
            "sink_requests": ok,
            "success_counted": success,
            "exact": success == EVENTS and ok == EVENTS,
            "worker_tracebacks": errors,
            **queue,
            "worker_log": str(log_path),
        }
    finally:
        for proc in procs:
            stop(proc)
        sink.stop()
        services.db.dispose()


def queue_upkeep(services: Any) -> dict[str, Any]:
    """PostgreSQL: what the queue datasets left behind once everything was delivered.

    Waits up to 15 s for drained deliveries datasets to be dropped (checked every 5 s),
    then reads the statistics PostgreSQL keeps per table (flushed within a second).
    """
    deadline = time.monotonic() + 15
    while True:
        with services.db.read() as conn:
            top = datasets.head(conn, "deliveries_seq_seq")
            left = [d for d in datasets.datasets(conn, "deliveries") if d.high <= top + 1]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    time.sleep(1.5)
    with services.db.read() as conn:
        stats = conn.execute(
            text(
                "SELECT coalesce(sum(n_tup_upd) FILTER (WHERE relname LIKE 'events%'), 0),"
                " coalesce(sum(n_dead_tup) FILTER (WHERE relname LIKE 'deliveries%'), 0),"
                " coalesce(sum(n_dead_tup) FILTER (WHERE relname LIKE 'events%'), 0)"
                " FROM pg_stat_user_tables"
            )
        ).one()
        events_sets = datasets.datasets(conn, "events")
    return {
        "dataset_rows": DATASET_ROWS,
        "events_datasets": len(events_sets),
        "deliveries_datasets_made": top // DATASET_ROWS + 1,
        "deliveries_datasets_drained_left": len(left),
        "events_rows_updated": int(stats[0]),
        "deliveries_dead_tuples_left": int(stats[1]),
        "events_dead_tuples": int(stats[2]),
    }


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
                    until=far + 3600,
                    owner=f"bench-{n}",
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


class _ArrivalSink:
    """Records when each event (by its ``n``) reaches the vendor, on this process's clock."""

    def __init__(self) -> None:
        self.arrived: dict[int, float] = {}
        arrived = self.arrived

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                now = time.monotonic()
                try:
                    arrived.setdefault(int(json.loads(body)["n"]), now)
                except (ValueError, KeyError, TypeError):
                    pass
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _call(url: str, body: object = None, token: str = "") -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


@contextmanager
def _cluster(
    database: str, sink_url: str, process_env: dict[str, str]
) -> Iterator[tuple[str, list[subprocess.Popen[bytes]]]]:
    """One ``serve --no-workers`` and one ``sluice worker`` on ``database``, with a
    published Webhook action delivering every event to ``sink_url``; yields the API's
    base URL (and the processes)."""

    def sluice(*args: str) -> str:
        argv = [sys.executable, "-m", "sluice", *args[:2], "--database", database, *args[2:]]
        out = subprocess.run(argv, env=process_env, capture_output=True, text=True, check=True)
        return out.stdout

    sluice("migrate")
    token = sluice("tokens", "create", "--name", "b", "--role", "admin").strip().splitlines()[-1]
    with tempfile.NamedTemporaryFile(prefix="sluice-bench-cluster-", suffix=".log") as log:
        port = _free_port()
        base = [sys.executable, "-m", "sluice"]
        procs = [
            subprocess.Popen(
                [*base, "serve", "--no-workers", "--database", database, "--port", str(port)],
                env=process_env,
                stdout=log,
                stderr=log,
            ),
            subprocess.Popen(
                [*base, "worker", "--database", database],
                env=process_env,
                stdout=log,
                stderr=log,
            ),
        ]
        try:
            api = f"http://127.0.0.1:{port}"
            _wait_ready(api)
            profile = api + "/api/v1/profiles/bench/main"
            _call(api + "/api/v1/profiles", {"account": "bench", "profile": "main"}, token)
            connector = _call(
                profile + "/connectors",
                {"type": "webhook", "name": "Sink", "enabled": True, "configuration": {}},
                token,
            )
            _call(
                f"{profile}/connectors/{connector['id']}/actions",
                {
                    "name": "Deliver",
                    "type": "send_event_data",
                    "enabled": True,
                    "source": {"event_feed": "all_events"},
                    "mappings": [{"parameter": "url", "value": sink_url}],
                },
                token,
            )
            _call(f"{profile}/connectors/{connector['id']}/publish", {}, token)
            time.sleep(3.0)  # every process has the published configuration by now
            yield api, procs
        finally:
            for proc in procs:
                stop(proc)


def collect_latency(database: str, pythonpath: str | None = None) -> dict[str, Any]:
    """Collect API to vendor, one event every 50 ms into a ``serve --no-workers`` process,
    delivered by one ``sluice worker`` (each on its own core when there are two)."""
    extra = {"PYTHONPATH": pythonpath} if pythonpath else {}
    sink = _ArrivalSink()
    sent: dict[int, float] = {}
    try:
        with _cluster(database, sink.url + "/events", env(**extra)) as (api, _):
            for n in range(LATENCY_EVENTS):
                sent[n] = time.monotonic()
                _call(
                    api + "/event", {"tealium_account": "bench", "tealium_profile": "main", "n": n}
                )
                time.sleep(LATENCY_INTERVAL)
            deadline = time.monotonic() + 30
            while len(sink.arrived) < LATENCY_EVENTS and time.monotonic() < deadline:
                time.sleep(0.05)
    finally:
        sink.stop()
    latencies = sorted((sink.arrived[n] - sent[n]) * 1000 for n in sink.arrived if n in sent)
    if not latencies:
        return {"events": LATENCY_EVENTS, "delivered": 0}
    return {
        "events": LATENCY_EVENTS,
        "delivered": len(latencies),
        "p50_ms": round(statistics.median(latencies), 1),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 1),
        "max_ms": round(latencies[-1], 1),
    }


def sustained_queue(database: str) -> dict[str, Any]:
    """Steady load for ``SUSTAINED_SECONDS`` (bulk requests of 100 events, ``SUSTAINED_RATE``
    events/s) through ``serve --no-workers`` and a worker on PostgreSQL, with small
    datasets; every 10 s, what the queue tables hold: live and dead tuples, size on disk,
    datasets. Flat dead tuples and deliveries size while events flow is the point."""
    sink = NginxSink(cpu=None).start()
    process_env = env(SLUICE_PG_DATASET_ROWS=str(SUSTAINED_DATASET_ROWS))
    samples: list[dict[str, Any]] = []
    posted = 0
    try:
        with _cluster(database, sink.url, process_env) as (api, _):
            admin = psycopg.connect(
                make_url(database)
                .set(drivername="postgresql")
                .render_as_string(hide_password=False),
                autocommit=True,
            )
            started = time.monotonic()
            next_sample = started
            while time.monotonic() - started < SUSTAINED_SECONDS:
                body = {
                    "shared": {"tealium_account": "bench", "tealium_profile": "main"},
                    "events": [{"n": posted + k} for k in range(100)],
                }
                _call(api + "/bulk-event", body)
                posted += 100
                now = time.monotonic()
                if now >= next_sample:
                    samples.append(_queue_sample(admin, now - started, posted, sink))
                    next_sample += 10
                time.sleep(max(0.0, started + posted / SUSTAINED_RATE - time.monotonic()))
            deadline = time.monotonic() + 60
            while sink.counts()[0] < posted and time.monotonic() < deadline:
                time.sleep(0.1)
            samples.append(_queue_sample(admin, time.monotonic() - started, posted, sink))
            admin.close()
    finally:
        sink.stop()
    return {
        "seconds": SUSTAINED_SECONDS,
        "events_per_s": SUSTAINED_RATE,
        "dataset_rows": SUSTAINED_DATASET_ROWS,
        "posted": posted,
        "delivered": samples[-1]["delivered"] if samples else 0,
        "samples": samples,
    }


def _queue_sample(
    admin: psycopg.Connection[Any], at: float, posted: int, sink: NginxSink
) -> dict[str, Any]:
    def tables(prefix: str) -> tuple[int, int, int]:
        row = admin.execute(
            "SELECT coalesce(sum(n_live_tup), 0), coalesce(sum(n_dead_tup), 0),"
            " coalesce(sum(pg_total_relation_size(relid)), 0)"
            " FROM pg_stat_user_tables WHERE relname LIKE %s",
            (prefix + "%",),
        ).fetchone()
        assert row is not None
        return int(row[0]), int(row[1]), int(row[2])

    deliveries_live, deliveries_dead, deliveries_bytes = tables("deliveries")
    events_live, events_dead, events_bytes = tables("events")
    count = admin.execute(
        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'deliveries'::regclass"
    ).fetchone()
    return {
        "at_s": round(at),
        "posted": posted,
        "delivered": sink.counts()[0],
        "deliveries_live": deliveries_live,
        "deliveries_dead": deliveries_dead,
        "deliveries_mb": round(deliveries_bytes / 2**20, 1),
        "deliveries_partitions": int(count[0]) if count else 0,
        "events_live": events_live,
        "events_dead": events_dead,
        "events_mb": round(events_bytes / 2**20, 1),
    }


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(api: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(api + "/readyz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"sluice at {api} was not ready within {timeout} s")


def run() -> dict[str, Any]:
    """Every figure of this bench, as ``make bench`` records them."""
    folder = Path(tempfile.mkdtemp(prefix="sluice-bench-scale-"))
    sqlite = delivered_per_second(f"sqlite:///{folder / 'bench.db'}", 1)
    print(f"sqlite, 1 worker:      {sqlite}", flush=True)
    delivered: dict[str, Any] = {"sqlite_1": sqlite}
    for workers in [int(n) for n in os.environ.get("SLUICE_BENCH_WORKERS", "1,2,4").split(",")]:
        with pg_database() as database:
            figure = delivered_per_second(database, workers)
        delivered[f"postgresql_{workers}"] = figure
        print(f"postgresql, {workers} worker(s): {figure}", flush=True)
    claims: dict[str, Any] = {}
    for threads in (1, 4):
        with pg_database() as database:
            claims[f"connections_{threads}"] = claim_throughput(database, threads)
        print(f"claim throughput: {claims[f'connections_{threads}']}", flush=True)
    ratios: dict[str, float] = {}
    base = delivered.get("postgresql_1", {}).get("events_per_s") or 0
    for workers in (2, 4):
        other = delivered.get(f"postgresql_{workers}", {}).get("events_per_s")
        if base and other:
            ratios[f"postgresql_{workers}_vs_1"] = round(other / base, 2)
    if base and sqlite["events_per_s"]:
        ratios["postgresql_1_vs_sqlite"] = round(base / sqlite["events_per_s"], 2)
    print(f"ratios: {ratios}", flush=True)
    with pg_database() as database:
        sustained = sustained_queue(database)
    for sample in sustained["samples"]:
        print(f"sustained load, queue tables: {sample}", flush=True)
    with pg_database() as database:
        latency: dict[str, Any] = {"listen_notify": collect_latency(database)}
    print(f"collect -> vendor latency on postgresql: {latency['listen_notify']}", flush=True)
    baseline = os.environ.get("SLUICE_BENCH_BASELINE_SRC")
    if baseline:
        with pg_database() as database:
            latency["baseline"] = collect_latency(database, pythonpath=baseline)
        print(f"  with {baseline}: {latency['baseline']}", flush=True)
    return {
        "events": EVENTS,
        "delivered": delivered,
        "ratios": ratios,
        "claims": claims,
        "collect_to_vendor_latency": latency,
        "sustained_queue": sustained,
    }


def main(argv: list[str]) -> int:
    """``python -m bench.bench_scale [--json PATH]``: print the figures (and write them)."""
    print(f"# scale-out bench, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"machine: {os.cpu_count()} cores, {_cpu_model()}")
    results = run()
    print(json.dumps(results, indent=2))
    if len(argv) == 2 and argv[0] == "--json":
        Path(argv[1]).write_text(json.dumps(results, indent=2))
    return 0


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
