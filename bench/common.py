"""What the benchmarks share: preparing a database, starting processes, reading RSS."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from sluice.auth.principals import SYSTEM
from sluice.config import actions, connectors, profiles, publishing
from sluice.services import Services
from sluice.settings import Settings
from sluice.storage import migrate
from sluice.storage.tables import events

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-secret-key"


def env(**extra: str) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    out.update(SLUICE_SECRET_KEY=SECRET, SLUICE_ALLOW_PRIVATE_DESTINATIONS="1")
    out.update(extra)
    return out


def open_services(database: str, dataset_rows: int | None = None) -> Services:
    services = Services.open(Settings(database_url=database, secret_key=SECRET))
    migrate.upgrade(services.db, dataset_rows=dataset_rows)
    return services


@dataclass
class Setup:
    profile_id: str
    connector_id: str
    action_id: str


def configure(
    services: Services,
    sink_url: str,
    *,
    action_type: str = "send_event_data",
    concurrency: int = 16,
    batch_size: int | None = None,
) -> Setup:
    profile = profiles.create(services.db, SYSTEM, "bench", "main")
    connector = connectors.create_connector(
        services,
        SYSTEM,
        profile,
        {
            "type": "webhook",
            "name": "Sink",
            "enabled": True,
            "configuration": {
                "max_concurrency": concurrency,
                # Backoff waits are not what the failure figure measures: at 10 % failures
                # one event in ~100,000 fails five times in a row, and from 0.01 s its
                # waits (x3 each) add 1.2 s after all else is done, a fifth of the run.
                "first_retry_seconds": 0.001,
                "max_attempts": 10,
            },
        },
    )
    mappings: list[dict[str, Any]] = [{"parameter": "url", "value": sink_url + "/events"}]
    if batch_size:
        mappings += [
            {"parameter": "max_batch_size", "value": batch_size},
            {"parameter": "max_batch_age_seconds", "value": 1},
        ]
    action = actions.create_action(
        services,
        SYSTEM,
        profile,
        connector["id"],
        {
            "name": "Deliver",
            "type": action_type,
            "enabled": True,
            "source": {"event_feed": "all_events"},
            "mappings": mappings,
        },
    )
    publishing.publish(services, SYSTEM, profile, connector["id"], {})
    return Setup(profile.id, connector["id"], action["id"])


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
    }


def store_events(services: Services, profile_id: str, count: int) -> list[dict[str, Any]]:
    """Events as the collect API would have stored them: accepted, not yet routed."""
    now = time.time()
    stored = []
    rows = []
    for i in range(count):
        event = sample_event(i)
        event["event_id"] = str(uuid.uuid4())
        event["received_at"] = "2026-11-28T10:00:00.000Z"
        stored.append(event)
        rows.append(
            {
                "id": event["event_id"],
                "profile_id": profile_id,
                "received_at": now,
                "payload": orjson.dumps(event).decode(),
                "visitor_id": event["tealium_visitor_id"],
                "routed": False,
            }
        )
    with services.db.begin() as conn:
        for start in range(0, len(rows), 5000):
            conn.execute(events.insert(), rows[start : start + 5000])
    return stored


def start_sluice(
    command: str,
    database: str,
    *,
    cpu: int | None = 0,
    port: int | None = None,
    args: tuple[str, ...] = (),
) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "sluice", command, "--database", database, *args]
    if port is not None:
        argv += ["--port", str(port)]
    if cpu is not None:
        argv = ["taskset", "-c", str(cpu), *argv]
    return subprocess.Popen(
        argv, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT
    )


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) / 1024


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
