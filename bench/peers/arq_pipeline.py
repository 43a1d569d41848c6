"""The arq + Redis peer: a job per event, N arq workers POST each to the sink with aiohttp.

Runs in a throwaway venv that has arq and aiohttp (``bench/peers/run.py`` makes it), so it
imports nothing from Sluice. ``enqueue`` puts EVENTS jobs on the queue (the same payloads as
``bench/common.py`` ``sample_event``, plus the fields the collect API adds); ``work`` runs
one burst-mode worker that exits when the queue is empty.

    python arq_pipeline.py enqueue REDIS_PORT EVENTS
    python arq_pipeline.py work REDIS_PORT SINK_URL MAX_JOBS
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import time
import uuid
from typing import Any

import aiohttp
from arq import create_pool
from arq.connections import RedisSettings
from arq.worker import Worker


def sample_event(i: int) -> dict[str, Any]:
    return {
        "tealium_account": "bench",
        "tealium_profile": "main",
        "tealium_event": "purchase" if i % 3 == 0 else "page_view",
        "tealium_visitor_id": f"visitor-{i % 5000}",
        "page_path": "/products/trail-runner",
        "order_id": f"A{i}",
        "order_total": 42.5 + i % 100,
        "currency": "EUR",
        "consent_categories": ["analytics", "email"],
        "event_id": str(uuid.uuid4()),
        "received_at": "2026-11-28T10:00:00.000Z",
    }


async def deliver(ctx: dict[str, Any], event: dict[str, Any]) -> None:
    # The filter (every event: Sluice's "all events" feed) and the mapping (the whole event
    # as the body, the URL from configuration), then one POST; a non-2xx raises and arq
    # retries the job.
    if event.get("tealium_account") is None:
        return
    body = json.dumps(event).encode()
    async with ctx["session"].post(
        ctx["url"], data=body, headers={"Content-Type": "application/json"}
    ) as response:
        await response.read()
        response.raise_for_status()


async def startup(ctx: dict[str, Any]) -> None:
    ctx["session"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100))
    ctx["url"] = os.environ["BENCH_SINK_URL"]


async def shutdown(ctx: dict[str, Any]) -> None:
    await ctx["session"].close()


async def enqueue(port: int, events: int) -> None:
    pool = await create_pool(RedisSettings(host="127.0.0.1", port=port))
    started = time.perf_counter()
    step = 500
    for start in range(0, events, step):
        await asyncio.gather(
            *(
                pool.enqueue_job("deliver", sample_event(i))
                for i in range(start, min(start + step, events))
            )
        )
    print(json.dumps({"enqueued": events, "seconds": round(time.perf_counter() - started, 3)}))
    await pool.aclose()


def work(port: int, sink_url: str, max_jobs: int) -> None:
    os.environ["BENCH_SINK_URL"] = sink_url
    worker = Worker(
        functions=[deliver],
        redis_settings=RedisSettings(host="127.0.0.1", port=port),
        on_startup=startup,
        on_shutdown=shutdown,
        max_jobs=max_jobs,
        burst=True,
        keep_result=0,
        handle_signals=False,
        poll_delay=0.05,
    )
    worker.run()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(
        json.dumps(
            {
                "cpu_seconds": usage.ru_utime + usage.ru_stime,
                "max_rss_kb": usage.ru_maxrss,
                "jobs_complete": worker.jobs_complete,
                "jobs_failed": worker.jobs_failed,
                "jobs_retried": worker.jobs_retried,
            }
        )
    )


if __name__ == "__main__":
    if sys.argv[1] == "enqueue":
        asyncio.run(enqueue(int(sys.argv[2]), int(sys.argv[3])))
    else:
        work(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
