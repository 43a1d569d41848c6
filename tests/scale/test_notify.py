"""LISTEN/NOTIFY between processes on PostgreSQL: a worker sees a publish and new events
at once, with its fallback poll set far beyond the test's patience (120 s).

One ``sluice serve --no-workers`` stores the events and the configuration; one
``sluice worker`` routes and delivers. Without notifications the worker would not see
the new action, nor the events, for two minutes.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import SluiceProcess, base_env, cli, http
from tests.support.vendor import VendorMock

pytestmark = pytest.mark.pg

PROFILE = "/api/v1/profiles/acme/main"


@pytest.fixture
def vendor() -> Iterator[VendorMock]:
    mock = VendorMock().start()
    yield mock
    mock.stop()


def _wait(check: object, timeout: float) -> float:
    """Seconds until ``check()`` held; fails after ``timeout``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():  # type: ignore[operator]
            return time.monotonic() - started
        time.sleep(0.01)
    raise AssertionError(f"not within {timeout} s")


def test_a_worker_is_woken_by_a_publish_and_by_new_events(
    tmp_path: Path, pg_url: str, vendor: VendorMock
) -> None:
    env = base_env(SLUICE_POLL_FALLBACK_SECONDS="120")
    cli(pg_url, "migrate")
    token = (
        cli(pg_url, "tokens", "create", "--name", "t", "--role", "admin").strip().splitlines()[-1]
    )
    api = SluiceProcess(tmp_path, pg_url, command="serve", args=("--no-workers",), env=env)
    worker = SluiceProcess(tmp_path, pg_url, command="worker", env=env)
    try:
        api.start()
        worker.start()
        _wait(lambda: "worker running" in worker.log(), 30)
        time.sleep(1.0)  # its first look at the (empty) configuration is done

        def call(method: str, path: str, body: object = None) -> dict[str, object]:
            status, answer = http(method, api.url + path, body, token)
            assert status in (200, 201), answer
            assert isinstance(answer, dict)
            return answer

        call("POST", "/api/v1/profiles", {"account": "acme", "profile": "main"})
        connector = call(
            "POST",
            PROFILE + "/connectors",
            {"type": "webhook", "name": "Hook", "enabled": True, "configuration": {}},
        )
        call(
            "POST",
            f"{PROFILE}/connectors/{connector['id']}/actions",
            {
                "name": "Events",
                "type": "send_event_data",
                "enabled": True,
                "source": {"event_feed": "all_events"},
                "mappings": [{"parameter": "url", "value": vendor.url + "/in"}],
            },
        )
        call("POST", f"{PROFILE}/connectors/{connector['id']}/publish", {})
        time.sleep(0.5)  # the publish is notified, not polled for: 120 s away

        latencies = []
        for n in range(20):
            sent = time.monotonic()
            status, body = http(
                "POST",
                api.url + "/event",
                {"tealium_account": "acme", "tealium_profile": "main", "n": n},
            )
            assert status == 200, body
            latencies.append(_wait(lambda n=n: len(vendor.received("/in")) > n, 2.0))
            assert time.monotonic() - sent < 2.5
            time.sleep(0.05)
        print(
            f"\ncollect -> vendor with LISTEN/NOTIFY (fallback poll 120 s): "
            f"p50 {statistics.median(latencies) * 1000:.0f} ms, "
            f"max {max(latencies) * 1000:.0f} ms"
        )
    finally:
        api.stop()
        worker.stop()
