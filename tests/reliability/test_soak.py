"""Soak: steady load for 1 minute (CI) or 10 (the long run); RSS, queue and p99 stay flat."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import pytest

from tests.reliability._common import Producer, scaled, serve, stack, summary, wait_delivered
from tests.support.server import http
from tests.support.vendor import Reply, VendorMock

pytestmark = pytest.mark.reliability


def _queue_depth(url: str) -> float:
    """Unrouted events plus deliveries held, from the Prometheus metrics."""
    status, text = http("GET", url + "/metrics")
    assert status == 200
    total = 0.0
    for line in str(text).splitlines():
        if line.startswith("sluice_queue_depth{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] * 1000 if len(values) > 100 else 0.0


@pytest.mark.timeout(1500)
def test_soak(tmp_path: Path) -> None:
    seconds = scaled(60, 600)
    vendor = VendorMock().start()
    tally = serve(vendor, "/in", lambda _r: Reply(status=200))
    samples: list[tuple[float, float, float, float]] = []  # t, rss, queue, p99 ms
    try:
        with stack(tmp_path) as s:
            s.add_webhook(vendor.url + "/in")
            producer = Producer(lambda: s.server.url, threads=2, pause=0.005).start()
            started = time.monotonic()
            try:
                while time.monotonic() - started < seconds:
                    time.sleep(seconds / 10)
                    with producer._lock:
                        window = producer.latencies[:]
                        producer.latencies.clear()
                    samples.append(
                        (
                            time.monotonic() - started,
                            s.server.rss_mb(),
                            _queue_depth(s.server.url),
                            _p99(window),
                        )
                    )
            finally:
                producer.stop()
            missing = wait_delivered(producer.accepted, tally, 60)
            for t, rss, queue, p99 in samples:
                print(f"  t={t:5.0f}s rss={rss:6.1f} MB queue={queue:6.0f} p99={p99:6.1f} ms")
            rss = [r for _, r, _, _ in samples]
            queues = [q for _, _, q, _ in samples]
            p99s = [p for _, _, _, p in samples if p]
            half = len(samples) // 2
            # Flat: the second half's peak RSS within 25 % (and 40 MB) of the first half's.
            growth = max(rss[half:]) - max(rss[:half])
            summary(
                f"soak {seconds:.0f} s",
                sent=producer.sent,
                accepted=len(producer.accepted),
                delivered=len(set(tally.ok) & set(producer.accepted)),
                errored=0,
                lost=len(missing),
                duplicated=sum(n - 1 for n in tally.ok.values()),
                note=(
                    f"{len(producer.accepted) / seconds:.0f} events/s; RSS {rss[0]:.0f} -> "
                    f"{rss[-1]:.0f} MB (growth {growth:+.1f} MB), queue max {max(queues):.0f}, "
                    f"p99 {min(p99s):.0f}-{max(p99s):.0f} ms"
                ),
            )
            assert missing == []
            assert growth < max(40.0, 0.25 * max(rss[:half]))
            assert max(queues[half:]) < 5000
            assert statistics.median(p99s[half:]) < 3 * statistics.median(p99s[:half]) + 50
    finally:
        vendor.stop()
