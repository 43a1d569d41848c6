"""``make bench``: every benchmark, with ratios measured in the same run.

Writes ``bench/results/latest.json`` and ``latest.md``. Set ``SLUICE_BENCH_ONLY`` to a
comma-separated list of sections (ingest, delivery, memory, peers, config, audiences,
scale) to run fewer. ``scale`` needs PostgreSQL: ``SLUICE_BENCH_PG_URL`` or
``SLUICE_TEST_PG_URL`` if set, else a throwaway one from ``scripts/with-postgres.sh``.
``SLUICE_BENCH_ROUNDS`` (5) is how many interleaved rounds of bare loop, single events and
failures the delivery section runs, ``SLUICE_BENCH_INGEST_ROUNDS`` (3) how many rounds of
baseline and Sluice the ingest section runs; their ratios are the medians of the rounds.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import delivery, ingest, memory

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).parent.parent


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def section(name: str, wanted: set[str] | None) -> bool:
    return wanted is None or name in wanted


def main() -> int:
    only = os.environ.get("SLUICE_BENCH_ONLY")
    wanted = set(only.split(",")) if only else None
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine(),
    }
    if section("ingest", wanted):
        print("ingest (wrk, 64 connections, 10 s each)...", flush=True)
        results["ingest"] = ingest.run(
            rounds=int(os.environ.get("SLUICE_BENCH_INGEST_ROUNDS", "3"))
        )
    if section("delivery", wanted):
        print("delivery (50,000 stored events each)...", flush=True)
        import asyncio

        import uvloop

        rounds = []
        for _ in range(int(os.environ.get("SLUICE_BENCH_ROUNDS", "5"))):
            # Interleaved, each Sluice figure beside a baseline measured just before it:
            # this VM's speed drifts by ±10 % over minutes, more than the margins judged.
            bare = delivery.run_bare_aiohttp()
            single = delivery.run_sluice()
            failing = delivery.run_sluice(fail_percent=10)
            rounds.append(
                {
                    "bare_aiohttp_asyncio": bare,
                    "sluice_single": single,
                    "sluice_single_10pct_5xx": failing,
                    "ratio_single": round(single["events_per_s"] / bare["events_per_s"], 3),
                    "ratio_failures": round(failing["events_per_s"] / single["events_per_s"], 3),
                }
            )
        original = asyncio.run
        delivery.asyncio.run = uvloop.run  # type: ignore[assignment]
        bare_uvloop = delivery.run_bare_aiohttp()
        delivery.asyncio.run = original
        bare_batch = delivery.run_bare_batch_loop()
        floor = delivery.run_batch_floor()
        batched = delivery.run_sluice(batch_size=100)
        results["delivery"] = {
            "rounds": rounds,
            "bare_aiohttp_uvloop": bare_uvloop,
            "bare_parse_match_map_serialise_batch100": bare_batch,
            "floor_read_loop_post_batch100": floor,
            "sluice_batched_100": batched,
            "ratio_single_vs_bare_asyncio": statistics.median(r["ratio_single"] for r in rounds),
            "ratio_single_vs_bare_uvloop": round(
                rounds[-1]["sluice_single"]["events_per_s"] / bare_uvloop["events_per_s"], 3
            ),
            "ratio_10pct_failures_vs_none": statistics.median(r["ratio_failures"] for r in rounds),
            "ratio_batched_vs_bare_loop": round(
                batched["events_per_s"] / bare_batch["events_per_s"], 3
            ),
            "ratio_floor_vs_bare_loop": round(
                floor["events_per_s"] / bare_batch["events_per_s"], 3
            ),
        }
    if section("memory", wanted):
        print("memory (idle, 100,000 queued events, 60 s of load)...", flush=True)
        results["memory"] = {
            **memory.idle(),
            "queue": memory.per_queued_event(),
            "drift": memory.drift(),
        }
    if section("peers", wanted):
        print("peers (actions-core, arq + Redis, end to end; same sink)...", flush=True)
        from bench.peers import run as peers

        results["peers"] = peers.run()
    if section("config", wanted):
        print("configuration (spotlight and publish)...", flush=True)
        out = subprocess.run(
            [sys.executable, str(Path(__file__).parent / "bench_config.py")],
            capture_output=True,
            text=True,
            check=False,
        )
        results["config"] = out.stdout.strip().splitlines()[-12:]
    if section("audiences", wanted):
        print("AudienceStream (profile updates, stage cost, memory per profile)...", flush=True)
        out = subprocess.run(
            [sys.executable, str(Path(__file__).parent / "bench_audiences.py")],
            capture_output=True,
            text=True,
            check=False,
        )
        results["audiences"] = out.stdout.strip().splitlines()[-12:]
    if section("scale", wanted):
        print("scale-out on PostgreSQL (1, 2, 4 workers; claims; collect latency)...", flush=True)
        results["scale"] = scale()
    RESULTS.mkdir(exist_ok=True)
    latest = RESULTS / "latest.json"
    if wanted is not None and latest.exists():
        # A partial run updates its sections and keeps the others' last figures.
        kept = json.loads(latest.read_text())
        measured = {**kept.get("measured", {}), **dict.fromkeys(wanted, results["date"])}
        results = {**kept, **results, "measured": measured}
    latest.write_text(json.dumps(results, indent=2))
    (RESULTS / "latest.md").write_text(markdown(results))
    print(markdown(results))
    return 0


def scale() -> dict[str, Any]:
    """bench_scale in a child process, under a throwaway PostgreSQL unless one is given."""
    with tempfile.TemporaryDirectory(prefix="sluice-bench-scale-") as folder:
        out = Path(folder) / "scale.json"
        argv = [sys.executable, "-m", "bench.bench_scale", "--json", str(out)]
        if not (os.environ.get("SLUICE_BENCH_PG_URL") or os.environ.get("SLUICE_TEST_PG_URL")):
            argv = ["bash", str(ROOT / "scripts" / "with-postgres.sh"), *argv]
        done = subprocess.run(argv, cwd=ROOT, check=False, stderr=subprocess.PIPE, text=True)
        if done.returncode != 0 or not out.exists():
            reason = (done.stderr or "").strip().splitlines()[-5:]
            message = (
                "skipped: no PostgreSQL (set SLUICE_BENCH_PG_URL to a role that may create "
                "databases, or run where scripts/with-postgres.sh can start one)"
            )
            print(message, *reason, sep="\n", file=sys.stderr)
            return {"skipped": message, "stderr": reason}
        figures: dict[str, Any] = json.loads(out.read_text())
        return figures


def markdown(results: dict[str, Any]) -> str:
    lines = [f"# Sluice benchmarks, {results['date']}", "", f"Machine: {results['machine']}", ""]
    if results.get("measured"):
        lines += ["Sections of partial runs measured at: " + json.dumps(results["measured"]), ""]
    for name, value in results.items():
        if name in ("date", "machine", "measured"):
            continue
        lines += [f"## {name}", "", "```json", json.dumps(value, indent=2), "```", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
