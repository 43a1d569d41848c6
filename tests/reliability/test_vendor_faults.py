"""Vendor faults against a real ``sluice serve``: every accepted event is delivered or logged.

One connector per fault, all fed by the same events: timeouts, slow answers, connection
resets, a 5xx storm, 429 with ``Retry-After``, and a vendor down for longer than the retry
budget, whose events end in the error log and are delivered by a replay once it is back.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.reliability._common import Stack, scaled, serve, stack, summary, wait_delivered
from tests.support.server import http
from tests.support.vendor import Recorded, Reply, VendorMock

pytestmark = pytest.mark.reliability


def first_attempts(fail: Reply, times: int = 1, every: int = 1) -> Callable[[Recorded], Reply]:
    """Fail the first ``times`` attempts of every ``every``-th event, then answer 200."""
    seen: Counter[str] = Counter()
    lock = threading.Lock()

    def decide(request: Recorded) -> Reply:
        event_id = request.json()["event_id"]
        with lock:
            seen[event_id] += 1
            attempt = seen[event_id]
        # The id's last digits: its first ones are a UUID v7's timestamp, the same for
        # every event of a bulk request (then every event or none failed).
        if int(event_id[-8:], 16) % every == 0 and attempt <= times:
            return fail
        return Reply(status=200)

    return decide


def storm(seconds: float) -> Callable[[Recorded], Reply]:
    """Every request fails with a 5xx for ``seconds`` after the first one, then all succeed."""
    started: list[float] = []
    codes = (500, 502, 503, 504)

    def decide(request: Recorded) -> Reply:
        if not started:
            started.append(time.monotonic())
        if time.monotonic() - started[0] < seconds:
            return Reply(status=codes[len(request.body) % len(codes)])
        return Reply(status=200)

    return decide


def rate_limited(after: int, times: int) -> Callable[[Recorded], Reply]:
    """429 with ``Retry-After: 1`` once the vendor has seen ``after`` requests, ``times`` times.

    Not from the first request: a 429 before any throughput is measured drops an
    unlimited connector to 1 request/s (see docs/reliability.md).
    """
    seen = [0]
    lock = threading.Lock()

    def decide(_request: Recorded) -> Reply:
        with lock:
            seen[0] += 1
            n = seen[0]
        if after < n <= after + times:
            return Reply(status=429, headers={"Retry-After": "1"})
        return Reply(status=200)

    return decide


def post_events(s: Stack, count: int) -> list[str]:
    accepted: list[str] = []
    for start in range(0, count, 500):
        events = [{"n": n} for n in range(start, min(count, start + 500))]
        status, body = http(
            "POST",
            s.server.url + "/bulk-event",
            {"shared": {"tealium_account": "acme"}, "events": events},
        )
        assert status == 200, body
        accepted.extend(body["event_ids"])
    return accepted


FAULTS: dict[str, tuple[Callable[[], Callable[[Recorded], Reply]], dict[str, float], str]] = {
    "timeout": (
        lambda: first_attempts(Reply(status=200, delay=2.0), every=5),
        {"timeout_seconds": 0.5},
        "a fifth of the first attempts outlive the 0.5 s timeout; the vendor still took them",
    ),
    "slow": (lambda: lambda _r: Reply(status=200, delay=0.2), {}, "every answer takes 0.2 s"),
    "reset": (
        lambda: first_attempts(Reply(reset=True), every=5),
        {},
        "a fifth of the first attempts: connection closed without an answer",
    ),
    "storm": (lambda: storm(2.0), {}, "500/502/503/504 to everything for 2 s"),
    "rate_limit": (
        lambda: rate_limited(after=100, times=5),
        {},
        "requests 101 to 105: 429 with Retry-After: 1",
    ),
}


@pytest.mark.timeout(600)
@pytest.mark.parametrize("fault", list(FAULTS), ids=list(FAULTS))
def test_vendor_fault_loses_nothing(tmp_path: Path, fault: str) -> None:
    count = int(scaled(200, 2000))
    make, config, what = FAULTS[fault]
    vendor = VendorMock().start()
    tally = serve(vendor, "/in", make())
    try:
        with stack(tmp_path) as s:
            cid, _ = s.add_webhook(vendor.url + "/in", configuration=config)
            started = time.monotonic()
            accepted = post_events(s, count)

            def resume() -> set[str]:
                # A storm trips overload protection (a 60 s pause): an operator resumes.
                s.resume(cid)
                return set()

            missing = wait_delivered(accepted, tally, scaled(60, 300), also=resume)
            took = time.monotonic() - started
            time.sleep(0.5)  # room for a late duplicate to show up
            errors = s.errors()
            summary(
                f"vendor fault {fault}",
                sent=count,
                accepted=len(accepted),
                delivered=len(set(tally.ok) & set(accepted)),
                errored=len(errors),
                lost=len(missing),
                duplicated=sum(n - 1 for n in tally.ok.values()),
                note=f"{what}; {len(vendor.received())} requests, all delivered in {took:.1f} s"
                + ("; duplicates are the timed-out requests" if fault == "timeout" else ""),
            )
            assert missing == []
            assert errors == []
            if fault == "rate_limit":
                times = [r.at for r in vendor.received("/in")]
                # Retry-After honoured: after the 429s, nothing for about a second.
                assert max(b - a for a, b in itertools.pairwise(times)) >= 0.8
            else:
                assert sum(n - 1 for n in tally.ok.values()) == 0 or fault == "timeout"
    finally:
        vendor.stop()


@pytest.mark.timeout(600)
def test_vendor_down_past_the_retry_budget_then_replay(tmp_path: Path) -> None:
    count = int(scaled(200, 2000))
    vendor = VendorMock().start()
    up = threading.Event()
    tally = serve(vendor, "/in", lambda _r: Reply(status=200) if up.is_set() else Reply(503))
    try:
        with stack(tmp_path) as s:
            cid, _ = s.add_webhook(
                vendor.url + "/in", configuration={"max_attempts": 2, "first_retry_seconds": 0.1}
            )
            accepted = post_events(s, count)
            deadline = time.monotonic() + scaled(60, 300)
            errored: list[dict[str, object]] = []
            while time.monotonic() < deadline:
                errored = s.errors(connector=cid)
                if len(errored) >= count:
                    break
                # Every attempt fails: overload protection pauses the connector for 60 s
                # (waiting is not an attempt). Resume it, as an operator would.
                s.resume(cid)
                time.sleep(0.5)
            assert {e["event_id"] for e in errored} == set(accepted)
            assert {e["category"] for e in errored} == {"http_5xx"}
            assert tally.ok == Counter()
            up.set()
            s.resume(cid)
            replay = "/profiles/acme/main/errors/replay"
            status, body = s.api("POST", replay, {"connector": cid})
            assert status == 202, body
            assert body["replayed"] == count, body
            # Each record is replayed once: a second replay finds nothing.
            status, body = s.api("POST", replay, {"connector": cid})
            assert status == 202, body
            assert body["replayed"] == 0, body
            missing = wait_delivered(accepted, tally, scaled(60, 300))
            time.sleep(1.0)
            summary(
                "vendor down past the retry budget",
                sent=count,
                accepted=len(accepted),
                delivered=len(set(tally.ok) & set(accepted)),
                errored=len(errored),
                lost=len(missing),
                duplicated=sum(n - 1 for n in tally.ok.values()),
                note="503 to everything with max_attempts=2: all in the error log, replayed once",
            )
            assert missing == []
            assert sum(n - 1 for n in tally.ok.values()) == 0
    finally:
        vendor.stop()
