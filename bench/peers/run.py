"""Sluice beside its peers, in the same run, on the same nginx sink (issue 8).

``python -m bench.peers.run`` (also the ``peers`` section of ``make bench``) measures:

* Sluice: ``bench.delivery.run_sluice()`` single events and batches of 100 (50,000 events
  already stored, a ``sluice worker`` on core 0), with the worker's peak RSS (VmHWM);
* Segment's ``@segment/actions-core`` (npm, pinned in ``actions_core/package-lock.json``,
  installed with ``npm ci`` at bench time): a destination with the same filter and
  mapping, 50,000 single events at concurrency 16 and batches of 100, in one Node process
  on core 0, with its peak RSS;
* arq + Redis: 50,000 jobs enqueued into Debian's ``redis-server`` (on a free port on
  127.0.0.1), then arq workers on core 0 POST each to the sink with aiohttp (arq and
  aiohttp installed into a throwaway venv, not a project dependency);
* Sluice end to end: events posted to a real ``sluice serve`` through ``POST /bulk-event``
  until the sink has them all, beside RudderStack's published figure (an anchor only).

Every deliverer gets core 0 and the sink core 1. It writes ``bench/results/peers.json`` and
``peers.md`` (gitignored) and prints the table.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench import delivery
from bench.common import ROOT, configure, open_services, sample_event, start_sluice, stop
from bench.sink import NginxSink, free_port

HERE = Path(__file__).resolve().parent
RESULTS = ROOT / "bench" / "results"
ACTIONS_CORE = HERE / "actions_core"
ARQ_PIPELINE = HERE / "arq_pipeline.py"
EVENTS = delivery.EVENTS
CONCURRENCY = delivery.CONCURRENCY
BATCH = 100
# One worker with 16 concurrent jobs is arq's best on the one core it gets here: 2 and 4
# workers (16 jobs between them) measured 1,150 and 590 events/s against 1,980 for one.
ARQ_WORKERS = int(os.environ.get("SLUICE_BENCH_ARQ_WORKERS", "1"))
ARQ_VERSION = "0.28.0"
AIOHTTP_VERSION = "3.14.5"
E2E_EVENTS = 50_000
E2E_BULK = 100
E2E_CLIENTS = 4
RUDDERSTACK_2_CORE = 1_700  # events/s, RudderStack's published figure for a 2-core node

ROUNDS = int(os.environ.get("SLUICE_BENCH_PEERS_ROUNDS", "2"))
NAMES = (
    "sluice_single",
    "actions_core_single",
    "arq_single",
    "sluice_batched_100",
    "actions_core_batched_100",
    "sluice_end_to_end",
)

TARGETS = {
    "single_vs_actions_core": 4.0,
    "single_vs_arq": 5.0,
    "batched_vs_actions_core": 2.5,
}


def _pinned(argv: list[str], cpu: int = 0) -> list[str]:
    return ["taskset", "-c", str(cpu), *argv]


def _wait_for_sink(sink: NginxSink, requests: int, proc: subprocess.Popen[Any] | None) -> float:
    """Seconds from the first request the sink saw to the one that made ``requests``."""
    started = None
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        ok, failed = sink.counts()
        if started is None and ok + failed:
            started = time.perf_counter()
        if ok >= requests:
            return time.perf_counter() - (started or time.perf_counter())
        if proc is not None and proc.poll() not in (None, 0):
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        time.sleep(0.01)
    raise RuntimeError(f"the sink has {sink.counts()} of {requests} requests after 300 s")


# --- actions-core -------------------------------------------------------------------------


def install_actions_core() -> dict[str, Any]:
    npm = shutil.which("npm")
    node = shutil.which("node")
    if npm is None or node is None:
        raise RuntimeError("node and npm are needed: apt-get install nodejs npm")
    started = time.perf_counter()
    subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"],
        cwd=ACTIONS_CORE,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    lock = json.loads((ACTIONS_CORE / "package-lock.json").read_text())["packages"]
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True)
    return {
        "node": version.stdout.strip(),
        "actions_core": lock["node_modules/@segment/actions-core"]["version"],
        "liquidjs": lock["node_modules/liquidjs"]["version"],
        "install_seconds": round(time.perf_counter() - started, 1),
    }


def check_actions_core_payloads() -> bool:
    """The Node script's events are ``sample_event`` plus the collect API's fields and type."""
    out = subprocess.run(
        ["node", "bench.js", "--dump", "300"],
        cwd=ACTIONS_CORE,
        capture_output=True,
        text=True,
        check=True,
    )
    for i, line in enumerate(out.stdout.splitlines()):
        event = json.loads(line)
        extra = {event.pop("type"), bool(event.pop("event_id")), event.pop("received_at")}
        if event != sample_event(i) or extra != {"track", True, "2026-11-28T10:00:00.000Z"}:
            return False
    return True


def run_actions_core(batch: int = 0) -> dict[str, Any]:
    sink = NginxSink().start()
    try:
        argv = _pinned(
            ["node", "bench.js", sink.url + "/events", str(EVENTS), str(CONCURRENCY), str(batch)]
        )
        out = subprocess.run(argv, cwd=ACTIONS_CORE, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"actions-core bench failed: {out.stderr[-2000:]}")
        result = json.loads(out.stdout.strip().splitlines()[-1])
        time.sleep(0.3)  # the sink flushes its log every 100 ms
        ok, failed = sink.counts()
        seconds = result["seconds"]
        return {
            "events": EVENTS,
            "seconds": round(seconds, 3),
            "events_per_s": round(EVENTS / seconds),
            "delivered": result["delivered"],
            "failed": result["failed"],
            "sink_ok_requests": ok,
            "sink_failed_requests": failed,
            "cpu_us_per_event": round(result["cpu_seconds"] / EVENTS * 1e6, 1),
            "peak_rss_mb": round(result["max_rss_kb"] / 1024, 1),
            "exact": result["delivered"] == EVENTS and ok * (batch or 1) == EVENTS,
        }
    finally:
        sink.stop()


# --- arq + Redis --------------------------------------------------------------------------


def make_arq_venv(folder: Path) -> tuple[str, dict[str, Any]]:
    uv = shutil.which("uv") or str(Path.home() / ".local" / "bin" / "uv")
    venv = folder / "venv"
    subprocess.run(
        [uv, "venv", "-q", "-p", sys.executable, str(venv)], stdout=subprocess.DEVNULL, check=True
    )
    python = str(venv / "bin" / "python")
    pins = [f"arq=={ARQ_VERSION}", f"aiohttp=={AIOHTTP_VERSION}"]
    subprocess.run(
        [uv, "pip", "install", "-q", "-p", python, *pins], stdout=subprocess.DEVNULL, check=True
    )
    versions = subprocess.run(
        [
            python,
            "-c",
            "import arq, redis, aiohttp;print(arq.VERSION, redis.__version__, aiohttp.__version__)",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    redis_version = subprocess.run(
        ["redis-server", "--version"], capture_output=True, text=True, check=True
    ).stdout.split()[2]
    return python, {
        "arq": versions[0],
        "redis_py": versions[1],
        "aiohttp": versions[2],
        "redis_server": redis_version.removeprefix("v="),
    }


def run_arq(python: str, folder: Path, workers: int = ARQ_WORKERS) -> dict[str, Any]:
    if shutil.which("redis-server") is None:
        raise RuntimeError("redis-server is needed: apt-get install redis-server")
    sink = NginxSink().start()
    port = free_port()
    data = folder / "redis"
    data.mkdir(exist_ok=True)
    redis = subprocess.Popen(
        _pinned(
            [
                *("redis-server", "--port", str(port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(data)),
            ]
        ),
        stdout=subprocess.DEVNULL,
    )
    procs: list[subprocess.Popen[bytes]] = []
    try:
        deadline = time.monotonic() + 10
        while (
            subprocess.run(
                ["redis-cli", "-p", str(port), "ping"], capture_output=True, check=False
            ).stdout.strip()
            != b"PONG"
        ):
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        enqueued = subprocess.run(
            [python, str(ARQ_PIPELINE), "enqueue", str(port), str(EVENTS)],
            capture_output=True,
            text=True,
            check=True,
        )
        enqueue_seconds = json.loads(enqueued.stdout)["seconds"]
        max_jobs = max(1, CONCURRENCY // workers)
        for _ in range(workers):
            argv = [
                python,
                str(ARQ_PIPELINE),
                "work",
                str(port),
                sink.url + "/events",
                str(max_jobs),
            ]
            procs.append(subprocess.Popen(_pinned(argv), stdout=subprocess.PIPE))
        seconds = _wait_for_sink(sink, EVENTS, procs[0])
        redis_cpu = delivery._cpu_seconds(redis.pid)
        stats = []
        for proc in procs:
            out, _ = proc.communicate(timeout=30)
            stats.append(json.loads(out.decode().strip().splitlines()[-1]))
        cpu = redis_cpu + sum(s["cpu_seconds"] for s in stats)
        peak = sum(s["max_rss_kb"] for s in stats) / 1024
        time.sleep(0.3)
        ok, failed = sink.counts()
        return {
            "events": EVENTS,
            "workers": workers,
            "max_jobs_per_worker": max_jobs,
            "enqueue_seconds": enqueue_seconds,
            "seconds": round(seconds, 3),
            "events_per_s": round(EVENTS / seconds),
            "sink_ok_requests": ok,
            "sink_failed_requests": failed,
            "cpu_us_per_event_workers_and_redis": round(cpu / EVENTS * 1e6, 1),
            "workers_peak_rss_mb_sum": round(peak, 1),
            "jobs_complete": sum(s["jobs_complete"] for s in stats),
            "jobs_failed": sum(s["jobs_failed"] for s in stats),
            "jobs_retried": sum(s["jobs_retried"] for s in stats),
            "exact": ok == EVENTS,
        }
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
        redis.terminate()
        redis.wait(10)
        sink.stop()


# --- Sluice end to end ---------------------------------------------------------------------


async def _post_all(url: str, events: int) -> float:
    bodies = [
        orjson.dumps({"events": [sample_event(i) for i in range(start, start + E2E_BULK)]})
        for start in range(0, events, E2E_BULK)
    ]
    queue = iter(bodies)
    async with aiohttp.ClientSession() as session:

        async def client() -> None:
            for body in queue:
                while True:
                    async with session.post(
                        url, data=body, headers={"Content-Type": "application/json"}
                    ) as response:
                        await response.read()
                        if response.status == 200:
                            break
                        if response.status not in (429, 503):
                            raise RuntimeError(f"collect answered {response.status}")
                    await asyncio.sleep(0.05)

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(E2E_CLIENTS)))
        return time.perf_counter() - started


def run_end_to_end(events: int = E2E_EVENTS) -> dict[str, Any]:
    sink = NginxSink().start()
    folder = Path(tempfile.mkdtemp(prefix="sluice-peers-e2e-"))
    database = f"sqlite:///{folder / 'e2e.db'}"
    services = open_services(database)
    configure(services, sink.url, concurrency=CONCURRENCY)
    services.db.dispose()
    port = free_port()
    server = start_sluice("serve", database, port=port)
    os.sched_setaffinity(0, {1})  # the client shares core 1 with the sink
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                import urllib.request

                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("sluice serve did not become ready")
            time.sleep(0.1)
        started = time.perf_counter()
        post_seconds = asyncio.run(_post_all(f"http://127.0.0.1:{port}/bulk-event", events))
        while time.perf_counter() - started < 300:
            ok, failed = sink.counts()
            if ok >= events:
                break
            if server.poll() is not None:
                raise RuntimeError("sluice serve exited")
            time.sleep(0.01)
        seconds = time.perf_counter() - started
        ok, failed = sink.counts()
        return {
            "events": events,
            "bulk_size": E2E_BULK,
            "clients": E2E_CLIENTS,
            "accept_seconds": round(post_seconds, 3),
            "seconds": round(seconds, 3),
            "events_per_s": round(events / seconds),
            "sink_ok_requests": ok,
            "sink_failed_requests": failed,
            "server_peak_rss_mb": delivery._peak_rss_mb(server.pid),
            "exact": ok == events,
        }
    finally:
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
        stop(server)
        sink.stop()
        shutil.rmtree(folder, ignore_errors=True)


# --- the run --------------------------------------------------------------------------------


def _ratio(a: float, b: float) -> float:
    return round(a / b, 2) if b else 0.0


def run() -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="sluice-peers-"))
    try:
        print("peers: installing actions-core (npm ci) and arq (throwaway venv)...", flush=True)
        versions = {"actions_core": install_actions_core()}
        python, versions["arq"] = make_arq_venv(folder)
        payloads_match = check_actions_core_payloads()
        # The machine may be shared: every configuration runs ROUNDS times, interleaved, and
        # the best round of each stands (all rounds are kept in the results).
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in NAMES}
        for round_number in range(1, ROUNDS + 1):
            print(f"peers: round {round_number} of {ROUNDS}: single events...", flush=True)
            runs["sluice_single"].append(delivery.run_sluice())
            runs["actions_core_single"].append(run_actions_core())
            runs["arq_single"].append(run_arq(python, folder))
            print(f"peers: round {round_number} of {ROUNDS}: batches of 100...", flush=True)
            runs["sluice_batched_100"].append(delivery.run_sluice(batch_size=BATCH))
            runs["actions_core_batched_100"].append(run_actions_core(BATCH))
            print(f"peers: round {round_number} of {ROUNDS}: end to end...", flush=True)
            runs["sluice_end_to_end"].append(run_end_to_end())
        best = {name: max(rounds, key=lambda r: r["events_per_s"]) for name, rounds in runs.items()}
        sluice_single = best["sluice_single"]
        ac_single = best["actions_core_single"]
        arq_single = best["arq_single"]
        sluice_batched = best["sluice_batched_100"]
        ac_batched = best["actions_core_batched_100"]
        e2e = best["sluice_end_to_end"]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    ratios = {
        "single_vs_actions_core": _ratio(sluice_single["events_per_s"], ac_single["events_per_s"]),
        "single_vs_arq": _ratio(sluice_single["events_per_s"], arq_single["events_per_s"]),
        "batched_vs_actions_core": _ratio(
            sluice_batched["events_per_s"], ac_batched["events_per_s"]
        ),
        "peak_rss_single_sluice_over_actions_core": _ratio(
            sluice_single["worker_peak_rss_mb"], ac_single["peak_rss_mb"]
        ),
        "peak_rss_batched_sluice_over_actions_core": _ratio(
            sluice_batched["worker_peak_rss_mb"], ac_batched["peak_rss_mb"]
        ),
        "end_to_end_vs_rudderstack_anchor": _ratio(e2e["events_per_s"], RUDDERSTACK_2_CORE),
        # CPU time per event, the peer's over Sluice's: steadier than wall-clock rates on a
        # shared machine (not a target, shown beside them).
        "cpu_per_event_actions_core_over_sluice_single": _ratio(
            ac_single["cpu_us_per_event"], sluice_single["cpu_us_per_event"]
        ),
        "cpu_per_event_arq_over_sluice_single": _ratio(
            arq_single["cpu_us_per_event_workers_and_redis"], sluice_single["cpu_us_per_event"]
        ),
        "cpu_per_event_actions_core_over_sluice_batched": _ratio(
            ac_batched["cpu_us_per_event"], sluice_batched["cpu_us_per_event"]
        ),
    }
    met = {name: ratios[name] >= target for name, target in TARGETS.items()}
    met["peak_rss_single_sluice_over_actions_core"] = (
        ratios["peak_rss_single_sluice_over_actions_core"] <= 1.0
    )
    met["peak_rss_batched_sluice_over_actions_core"] = (
        ratios["peak_rss_batched_sluice_over_actions_core"] <= 1.0
    )
    return {
        "versions": versions,
        "actions_core_payloads_match_sample_event": payloads_match,
        "sluice_single": sluice_single,
        "actions_core_single": ac_single,
        "arq_single": arq_single,
        "sluice_batched_100": sluice_batched,
        "actions_core_batched_100": ac_batched,
        "sluice_end_to_end": e2e,
        "rudderstack_published_2_core_events_per_s": RUDDERSTACK_2_CORE,
        "rounds": ROUNDS,
        "events_per_s_by_round": {
            name: [r["events_per_s"] for r in rounds] for name, rounds in runs.items()
        },
        "ratios": ratios,
        "targets_met": met,
    }


def _n(value: float) -> str:
    return f"{value:,.0f}" if isinstance(value, int) or value >= 100 else f"{value}"


def markdown(results: dict[str, Any]) -> str:
    r = results
    ratios, met = r["ratios"], r["targets_met"]

    def verdict(name: str) -> str:
        return "**met**" if met[name] else "**not met**"

    rows = [
        ("Sluice, single events", r["sluice_single"], "worker_peak_rss_mb"),
        ("actions-core, single events", r["actions_core_single"], "peak_rss_mb"),
        ("arq + Redis, single events", r["arq_single"], "workers_peak_rss_mb_sum"),
        ("Sluice, batches of 100", r["sluice_batched_100"], "worker_peak_rss_mb"),
        ("actions-core, batches of 100", r["actions_core_batched_100"], "peak_rss_mb"),
    ]
    lines = [
        f"# Sluice beside its peers, {r['date']}",
        "",
        f"Machine: {r['machine']}; load average at start {r['load_at_start']}"
        " (the machine was shared with other work).",
        "",
        f"Best of {r['rounds']} interleaved rounds; every round's events/s in brackets.",
        "",
        "| what | events/s | CPU per event | peak RSS | exact |",
        "|---|---|---|---|---|",
    ]
    by_round = r["events_per_s_by_round"]
    for (label, row, rss), name in zip(rows, NAMES, strict=False):
        cpu = row.get("cpu_us_per_event", row.get("cpu_us_per_event_workers_and_redis"))
        each = ", ".join(_n(x) for x in by_round[name])
        lines.append(
            f"| {label} | {_n(row['events_per_s'])} ({each}) | {cpu} µs | {row[rss]} MB "
            f"| {row['exact']} |"
        )
    e2e = r["sluice_end_to_end"]
    lines += [
        f"| Sluice end to end (`POST /bulk-event` → sink), {e2e['events']:,} events "
        f"| {_n(e2e['events_per_s'])} ({', '.join(_n(x) for x in by_round['sluice_end_to_end'])}) "
        f"| | {e2e['server_peak_rss_mb']} MB (serve) "
        f"| {e2e['exact']} |",
        f"| RudderStack, published, 2-core node (anchor, not this run) "
        f"| {_n(r['rudderstack_published_2_core_events_per_s'])} | | | |",
        "",
        "| ratio | value | target | |",
        "|---|---|---|---|",
        f"| Sluice / actions-core, single | {ratios['single_vs_actions_core']}× | ≥ 4× "
        f"| {verdict('single_vs_actions_core')} |",
        f"| Sluice / arq, single | {ratios['single_vs_arq']}× | ≥ 5× "
        f"| {verdict('single_vs_arq')} |",
        f"| Sluice / actions-core, batches of 100 | {ratios['batched_vs_actions_core']}× | ≥ 2.5× "
        f"| {verdict('batched_vs_actions_core')} |",
        f"| peak RSS Sluice worker / actions-core, single "
        f"| {ratios['peak_rss_single_sluice_over_actions_core']} | ≤ 1 "
        f"| {verdict('peak_rss_single_sluice_over_actions_core')} |",
        f"| peak RSS Sluice worker / actions-core, batched "
        f"| {ratios['peak_rss_batched_sluice_over_actions_core']} | ≤ 1 "
        f"| {verdict('peak_rss_batched_sluice_over_actions_core')} |",
        f"| Sluice end to end / RudderStack's published 1.7k "
        f"| {ratios['end_to_end_vs_rudderstack_anchor']}× | (anchor) | |",
        "",
        "CPU time per event, peer over Sluice (steadier than rates on a shared machine): "
        f"actions-core single {ratios['cpu_per_event_actions_core_over_sluice_single']}×, "
        f"arq + Redis single {ratios['cpu_per_event_arq_over_sluice_single']}×, "
        f"actions-core batched {ratios['cpu_per_event_actions_core_over_sluice_batched']}×.",
        "",
        f"Versions: `{json.dumps(r['versions'])}`",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    from bench.__main__ import machine

    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine(),
        "load_at_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
    started = time.perf_counter()
    results.update(run())
    results["run_seconds"] = round(time.perf_counter() - started, 1)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "peers.json").write_text(json.dumps(results, indent=2))
    (RESULTS / "peers.md").write_text(markdown(results))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
