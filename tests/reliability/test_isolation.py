"""One vendor hanging while nine are healthy: the nine keep their throughput.

Two runs of the same load on a real ``sluice serve``: nine healthy webhook connectors, then
the same nine plus one whose vendor never answers. The healthy deliveries per second of the
second run are compared with the first.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.reliability._common import Producer, Tally, scaled, serve, stack, summary
from tests.support.vendor import Reply, VendorMock

pytestmark = pytest.mark.reliability


def _run(folder: Path, hanging: bool, seconds: float) -> tuple[float, int, int, int]:
    """Healthy deliveries per second, and sent, accepted, delivered."""
    vendor = VendorMock().start()
    tallies: list[Tally] = []
    try:
        with stack(folder) as s:
            for n in range(9):
                tallies.append(serve(vendor, f"/ok{n}", lambda _r: Reply(status=200)))
                s.add_webhook(f"{vendor.url}/ok{n}", name=f"healthy {n}")
            if hanging:
                vendor.respond("/hang", Reply(hang=True))
                s.add_webhook(
                    f"{vendor.url}/hang", name="hanging", configuration={"timeout_seconds": 5}
                )
            producer = Producer(lambda: s.server.url, threads=2, pause=0.002).start()
            time.sleep(1.0)  # warm up
            before = sum(len(t.ok) for t in tallies)
            started = time.monotonic()
            time.sleep(seconds)
            delivered = sum(len(t.ok) for t in tallies) - before
            rate = delivered / (time.monotonic() - started)
            producer.stop()
            return rate, producer.sent, len(producer.accepted), delivered
    finally:
        vendor.stop()


@pytest.mark.timeout(900)
def test_a_hanging_vendor_does_not_slow_the_healthy_ones(tmp_path: Path) -> None:
    seconds = scaled(8, 60)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    alone, *_ = _run(tmp_path / "a", hanging=False, seconds=seconds)
    beside, sent, accepted, delivered = _run(tmp_path / "b", hanging=True, seconds=seconds)
    ratio = beside / alone
    summary(
        "one hanging vendor beside nine healthy",
        sent=sent,
        accepted=accepted,
        delivered=delivered,
        errored=0,
        lost=0,
        duplicated=0,
        note=(
            f"healthy deliveries/s {beside:.0f} beside the hanging vendor vs {alone:.0f} "
            f"without it: ratio {ratio:.2f}; lost is checked by the other scenarios"
        ),
    )
    assert ratio >= 0.5


@pytest.mark.timeout(120)
def test_a_paused_connector_does_not_hold_back_the_retries_of_another(tmp_path: Path) -> None:
    from tests.reliability.test_vendor_faults import first_attempts, post_events, storm

    vendor = VendorMock().start()
    tally = serve(vendor, "/reset", first_attempts(Reply(reset=True), every=5))
    serve(vendor, "/storm", storm(30.0))
    try:
        with stack(tmp_path) as s:
            s.add_webhook(vendor.url + "/reset", name="resets")
            s.add_webhook(vendor.url + "/storm", name="storm")  # trips a 60 s pause
            accepted = post_events(s, 200)
            from tests.reliability._common import wait_delivered

            missing = wait_delivered(accepted, tally, timeout=15)
            print(f"\n[reliability] retries beside a paused connector: {len(missing)} late")
            assert missing == []
    finally:
        vendor.stop()
