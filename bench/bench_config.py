"""Benchmark of the configuration plane: spotlight search and publishing.

Builds a profile with 1,000 connectors and 5,000 actions through the service layer (a
temporary SQLite database), then prints:

- spotlight: 200 queries (1-5 letter prefixes and fuzzy ones) through the HTTP app,
  p50 / p95 / max in ms (target: under 50 ms);
- publish: the median of 20 publishes of a connector with 50 actions, each after a
  change (target: under 200 ms).

Run: ``uv run python bench/bench_config.py``. It prints figures and asserts nothing.
"""

from __future__ import annotations

import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from sluice.app import create_app
from sluice.auth import tokens
from sluice.auth.principals import SYSTEM
from sluice.config import actions, connectors, profiles, publishing
from sluice.services import Services
from sluice.settings import Settings

CONNECTORS = 1000
ACTIONS = 5000
QUERIES = 200
WORDS = (
    "orders", "checkout", "cart", "signup", "login", "newsletter", "loyalty", "refund",
    "shipping", "invoice", "crm", "sms", "email", "push", "alerts", "analytics", "ads",
    "retargeting", "audience", "profile", "purchase", "browse", "search", "support",
    "billing", "marketing", "sales", "partner", "affiliate", "mobile", "web", "store",
)  # fmt: skip
ENVIRONMENTS = ("Prod", "Dev", "Sandbox", "Staging", "EU", "US")
ACTION_NAMES = ("Send", "Post", "Track", "Notify", "Sync", "Forward", "Mirror", "Alert")
MAPPINGS = [
    {"parameter": "method", "value": "POST"},
    {"parameter": "url", "value": "https://example.com/hook"},
    {"parameter": "body", "template": '{"order": "{{ order_id }}"}'},
]


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def build(services: Services, rng: random.Random) -> tuple[profiles.Profile, list[str]]:
    profile = profiles.create(services.db, SYSTEM, "bench", "main")
    names: list[str] = []
    connector_ids: list[str] = []
    for i in range(CONNECTORS):
        kind = "webhook" if i % 3 else "slack"
        name = f"{rng.choice(WORDS).title()} {rng.choice(ENVIRONMENTS)} {i}"
        created = connectors.create_connector(
            services, SYSTEM, profile, {"type": kind, "name": name}
        )
        connector_ids.append(created["id"])
        names.append(name)
    for i in range(ACTIONS):
        connector_id = connector_ids[i % CONNECTORS]
        ct = services.registry.get("webhook" if (i % CONNECTORS) % 3 else "slack")
        assert ct is not None
        name = f"{rng.choice(ACTION_NAMES)} {rng.choice(WORDS)} {i}"
        body: dict[str, Any] = {"name": name, "type": ct.actions[0].id}
        if ct.id == "webhook":
            body["mappings"] = MAPPINGS
        actions.create_action(services, SYSTEM, profile, connector_id, body)
        names.append(name)
    return profile, names


def queries(names: list[str], rng: random.Random) -> list[str]:
    found: list[str] = []
    while len(found) < QUERIES:
        word = rng.choice(rng.choice(names).split()).lower()
        if rng.random() < 0.75:
            found.append(word[: rng.randint(1, min(5, len(word)))])
        else:
            # Fuzzy: drop a letter, or swap two neighbours.
            letters = list(word[:6])
            if len(letters) > 3 and rng.random() < 0.5:
                del letters[rng.randrange(1, len(letters))]
            elif len(letters) > 2:
                j = rng.randrange(len(letters) - 1)
                letters[j], letters[j + 1] = letters[j + 1], letters[j]
            found.append("".join(letters))
    return found


def bench_search(client: TestClient, token: str, qs: list[str]) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    params = {"account": "bench", "profile": "main"}
    start = time.perf_counter()
    first = client.get("/api/v1/search", params={"q": "ord", **params}, headers=headers)
    cold = time.perf_counter() - start
    assert first.status_code == 200, first.text
    times = []
    for q in qs:
        start = time.perf_counter()
        response = client.get("/api/v1/search", params={"q": q, **params}, headers=headers)
        times.append(time.perf_counter() - start)
        assert response.status_code == 200, response.text
    times.sort()
    p95 = times[int(len(times) * 0.95) - 1]
    print(f"spotlight: first query (index build) {_ms(cold)} ms")
    start = time.perf_counter()
    landing = client.get("/api/v1/profiles/bench/main/connectors", headers=headers)
    assert landing.status_code == 200, landing.text
    print(
        f"landing: GET connectors (1,000 with 5,000 actions) {_ms(time.perf_counter() - start)} ms"
    )
    print(
        f"spotlight: {len(times)} queries  p50 {_ms(statistics.median(times))} ms  "
        f"p95 {_ms(p95)} ms  max {_ms(times[-1])} ms  (target < 50 ms)"
    )


def bench_publish(services: Services, profile: profiles.Profile) -> None:
    created = connectors.create_connector(
        services, SYSTEM, profile, {"type": "webhook", "name": "Publish bench"}
    )
    cid = created["id"]
    action_ids = [
        actions.create_action(
            services,
            SYSTEM,
            profile,
            cid,
            {"name": f"Action {i}", "type": "send_custom_request", "mappings": MAPPINGS},
        )["id"]
        for i in range(50)
    ]
    publishing.publish(services, SYSTEM, profile, cid, {})
    times = []
    for i in range(20):
        actions.patch_action(
            services, SYSTEM, profile, cid, action_ids[i], {"name": f"Action {i} v{i}"}
        )
        start = time.perf_counter()
        _version, recorded = publishing.publish(services, SYSTEM, profile, cid, {"note": str(i)})
        times.append(time.perf_counter() - start)
        assert recorded
    print(
        f"publish: connector with 50 actions, median of 20 {_ms(statistics.median(times))} ms  "
        f"max {_ms(max(times))} ms  (target < 200 ms)"
    )


def main() -> int:
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(
            database_url=f"sqlite:///{Path(folder) / 'bench.db'}",
            secret_key="bench",
            run_workers=False,
        )
        services = Services.open(settings)
        app = create_app(services=services)
        with TestClient(app) as client:
            start = time.perf_counter()
            profile, names = build(services, rng)
            print(
                f"setup: {CONNECTORS} connectors and {ACTIONS} actions through the service "
                f"layer in {time.perf_counter() - start:.1f} s"
            )
            _, token = tokens.create_token(services.db, "bench", "admin", None)
            bench_search(client, token, queries(names, rng))
            bench_publish(services, profile)
        services.db.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
