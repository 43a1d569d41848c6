"""Disk full: the collect API answers 503 with Retry-After, keeps what it accepted, recovers.

The storage layer's fault-injection hook (``pipeline.writer.fault``) raises SQLite's own
disk-full error in every transaction, as a full filesystem would; the app runs in-process.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from tests.reliability._common import Tally, serve, stack, summary, wait_delivered
from tests.support.flows import add_connector, event_data_action
from tests.support.server import http
from tests.support.vendor import Reply, VendorMock

pytestmark = pytest.mark.reliability


def _disk_full() -> None:
    raise OperationalError("INSERT", {}, sqlite3.OperationalError("database or disk is full"))


def test_disk_full_refuses_with_503_and_recovers(
    api: Any, profile: str, vendor: VendorMock, services: Any
) -> None:
    tally: Tally = serve(vendor, "/in", lambda _r: Reply(status=200))
    add_connector(api, profile, actions=[event_data_action(vendor.url + "/in")])
    client = api.client
    accepted: list[str] = []
    sent = refused = 0

    def post(n: int) -> int:
        nonlocal sent, refused
        sent += 1
        response = client.post("/event", json={"tealium_account": "acme", "n": n})
        if response.status_code == 200:
            accepted.extend(response.json()["event_ids"])
        else:
            refused += 1
        return int(response.status_code)

    for n in range(50):
        assert post(n) == 200
    writer = services.pipeline.writer
    writer.fault = _disk_full
    try:
        for n in range(50, 100):
            assert post(n) == 503
        response = client.post("/event", json={"tealium_account": "acme"})
        assert response.status_code == 503
        assert int(response.headers["Retry-After"]) > 0
        assert "error" in response.json()
        bulk = client.post(
            "/bulk-event", json={"shared": {"tealium_account": "acme"}, "events": [{"x": 1}]}
        )
        assert bulk.status_code == 503
        # Still responsive: health and the management API answer while the disk is full.
        assert client.get("/healthz").status_code == 200
        assert api.get(profile).status_code == 200
    finally:
        writer.fault = None
    time.sleep(0.2)
    for n in range(100, 150):
        assert post(n) == 200
    missing = wait_delivered(accepted, tally, timeout=30)
    summary(
        "disk full",
        sent=sent + 2,
        accepted=len(accepted),
        delivered=len(set(tally.ok) & set(accepted)),
        errored=0,
        lost=len(missing),
        duplicated=sum(n - 1 for n in tally.ok.values()),
        note=f"{refused + 2} refused with 503 while the disk was full, none of them stored",
    )
    assert missing == []
    assert len(accepted) == 100


@pytest.mark.timeout(300)
def test_a_real_full_filesystem(tmp_path: Path) -> None:
    """The database on a small tmpfs, filled up by a ballast file, then given room again."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(disk)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    vendor = VendorMock().start()
    tally = serve(vendor, "/in", lambda _r: Reply(status=200))
    try:
        with stack(tmp_path, database=f"sqlite:///{disk / 'sluice.db'}") as s:
            s.add_webhook(vendor.url + "/in")
            stat = os.statvfs(disk)
            ballast = disk / "ballast"
            with ballast.open("wb") as f:
                f.write(b"\0" * (stat.f_bavail * stat.f_frsize - 256 * 1024))
            accepted: list[str] = []
            statuses: list[int] = []
            payload = "x" * 4000
            for n in range(2000):
                status, body = http(
                    "POST",
                    s.server.url + "/event",
                    {"tealium_account": "acme", "n": n, "p": payload},
                )
                statuses.append(status)
                if status == 200:
                    accepted.extend(body["event_ids"])
                elif status == 503:
                    break
            assert statuses[-1] == 503, f"never full: {len(accepted)} accepted"
            refused = sum(1 for st in statuses if st == 503)
            assert set(statuses) <= {200, 503}
            assert http("GET", s.server.url + "/healthz")[0] == 200
            ballast.unlink()
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                status, body = http("POST", s.server.url + "/event", {"tealium_account": "acme"})
                statuses.append(status)
                if status == 200:
                    accepted.extend(body["event_ids"])
                    break
                time.sleep(0.5)
            assert statuses[-1] == 200, "did not recover once there was room"
            missing = wait_delivered(accepted, tally, timeout=60)
            summary(
                "full tmpfs",
                sent=len(statuses),
                accepted=len(accepted),
                delivered=len(set(tally.ok) & set(accepted)),
                errored=0,
                lost=len(missing),
                duplicated=sum(n - 1 for n in tally.ok.values()),
                note=f"{refused} refused with 503 on a full 16 MB tmpfs; recovered once freed",
            )
            assert missing == []
    finally:
        vendor.stop()
        subprocess.run(["umount", "-l", str(disk)], check=False)
