"""Collect ingest: wrk at 64 connections against ``POST /event``, durable, one event each.

The baseline is a bare uvicorn hello-world app served the same way (uvloop, httptools,
no access log). The server runs on core 0 and wrk on core 1.
"""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.common import ROOT, env, open_services
from bench.sink import free_port
from sluice.auth.principals import SYSTEM
from sluice.config import profiles

DURATION = 10
CONNECTIONS = 64
LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"tealium_account":"bench","tealium_profile":"main","tealium_event":"page_view",' ..
  '"tealium_visitor_id":"v-123","page_path":"/products/trail-runner","order_total":42.5}'
"""


def _wait(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def _wrk(url: str, script: Path, duration: int = DURATION) -> dict[str, Any]:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed (apt-get install wrk)")
    out = subprocess.run(
        [
            "taskset",
            "-c",
            "1",
            wrk,
            "-t1",
            f"-c{CONNECTIONS}",
            f"-d{duration}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    p99 = _ms(re.search(r"99%\s+([\d.]+\w+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"50%\s+([\d.]+\w+)", out).group(1))  # type: ignore[union-attr]
    return {
        "requests_per_s": round(rps),
        "p50_ms": p50,
        "p99_ms": p99,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
    }


def _ms(text: str) -> float:
    value = float(re.match(r"[\d.]+", text).group(0))  # type: ignore[union-attr]
    if text.endswith("us"):
        return round(value / 1000, 3)
    if text.endswith("ms"):
        return round(value, 3)
    return round(value * 1000, 3)


def run_baseline(script: Path) -> dict[str, Any]:
    port = free_port()
    proc = subprocess.Popen(
        [
            "taskset",
            "-c",
            "0",
            sys.executable,
            "-m",
            "uvicorn",
            "bench.hello:app",
            "--port",
            str(port),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(1.0)
        _wrk(f"http://127.0.0.1:{port}/event", script, 2)  # warm up
        return _wrk(f"http://127.0.0.1:{port}/event", script)
    finally:
        proc.terminate()
        proc.wait(10)


def run_sluice(script: Path, *, workers: bool) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="sluice-ingest-"))
    database = f"sqlite:///{folder / 'ingest.db'}"
    services = open_services(database)
    profiles.create(services.db, SYSTEM, "bench", "main")
    services.db.dispose()
    port = free_port()
    argv = [
        "taskset",
        "-c",
        "0",
        sys.executable,
        "-m",
        "sluice",
        "serve",
        "--database",
        database,
        "--port",
        str(port),
    ]
    if not workers:
        argv.append("--no-workers")
    # Without workers nothing drains the queue: lift its bound so that every request is
    # stored (a 503 for a full queue is quicker than a store and would flatter the figure).
    proc = subprocess.Popen(
        argv,
        cwd=folder,
        env=env(SLUICE_QUEUE_BOUND="100000000"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait(f"http://127.0.0.1:{port}/readyz")
        _wrk(f"http://127.0.0.1:{port}/event", script, 2)
        result = _wrk(f"http://127.0.0.1:{port}/event", script)
        return result
    finally:
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(folder, ignore_errors=True)


def run(rounds: int = 2) -> dict[str, Any]:
    """Baseline and ``--no-workers`` in interleaved rounds; the ratios are the medians.

    One round of each is at the mercy of this VM's neighbours (±10 % between runs);
    pairing each Sluice run with a baseline measured just before it, and taking the median
    of the pairs, keeps the ratio from riding on one lucky or unlucky run.
    """
    script = Path(tempfile.mkdtemp()) / "post.lua"
    script.write_text(LUA)
    pairs = []
    for _ in range(rounds):
        baseline = run_baseline(script)
        collect_only = run_sluice(script, workers=False)
        pairs.append(
            {
                "baseline_hello_world": baseline,
                "sluice_no_workers": collect_only,
                "ratio_rps": round(collect_only["requests_per_s"] / baseline["requests_per_s"], 3),
                "ratio_p99": round(collect_only["p99_ms"] / baseline["p99_ms"], 2),
            }
        )
    full = run_sluice(script, workers=True)
    last_baseline = pairs[-1]["baseline_hello_world"]
    return {
        "rounds": pairs,
        "sluice_with_workers": full,
        "ratio_rps_no_workers": round(statistics.median(p["ratio_rps"] for p in pairs), 3),
        "ratio_p99_no_workers": round(statistics.median(p["ratio_p99"] for p in pairs), 2),
        "ratio_rps_with_workers": round(
            full["requests_per_s"] / last_baseline["requests_per_s"], 3
        ),
        "ratio_p99_with_workers": round(full["p99_ms"] / last_baseline["p99_ms"], 2),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
