"""``make bench``: every benchmark, with ratios measured in the same run.

Writes ``bench/results/latest.json`` and ``latest.md``. Set ``SLUICE_BENCH_ONLY`` to a
comma-separated list of sections (ingest, delivery, memory, peers, config) to run fewer.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import delivery, ingest, memory

RESULTS = Path(__file__).parent / "results"


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
        results["ingest"] = ingest.run()
    if section("delivery", wanted):
        print("delivery (50,000 stored events each)...", flush=True)
        import asyncio

        import uvloop

        bare = delivery.run_bare_aiohttp()
        original = asyncio.run
        delivery.asyncio.run = uvloop.run  # type: ignore[assignment]
        bare_uvloop = delivery.run_bare_aiohttp()
        delivery.asyncio.run = original
        single = delivery.run_sluice()
        failing = delivery.run_sluice(fail_percent=10)
        bare_batch = delivery.run_bare_batch_loop()
        batched = delivery.run_sluice(batch_size=100)
        results["delivery"] = {
            "bare_aiohttp_asyncio": bare,
            "bare_aiohttp_uvloop": bare_uvloop,
            "sluice_single": single,
            "sluice_single_10pct_5xx": failing,
            "bare_parse_match_map_serialise_batch100": bare_batch,
            "sluice_batched_100": batched,
            "ratio_single_vs_bare_asyncio": round(single["events_per_s"] / bare["events_per_s"], 3),
            "ratio_single_vs_bare_uvloop": round(
                single["events_per_s"] / bare_uvloop["events_per_s"], 3
            ),
            "ratio_10pct_failures_vs_none": round(
                failing["events_per_s"] / single["events_per_s"], 3
            ),
            "ratio_batched_vs_bare_loop": round(
                batched["events_per_s"] / bare_batch["events_per_s"], 3
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
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2))
    (RESULTS / "latest.md").write_text(markdown(results))
    print(markdown(results))
    return 0


def markdown(results: dict[str, Any]) -> str:
    lines = [f"# Sluice benchmarks, {results['date']}", "", f"Machine: {results['machine']}", ""]
    for name, value in results.items():
        if name in ("date", "machine"):
            continue
        lines += [f"## {name}", "", "```json", json.dumps(value, indent=2), "```", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
