"""Benchmark of AudienceStream: profile updates, the stage's cost, memory per profile.

A profile with 10 visitor attributes (every type, one of visit scope), 5 audiences, an
event-sourced action and an audience-triggered one. 50,000 events of 5,000 visitors are
stored, then routed in batches of 500 exactly as the pipeline does (``_route_batch`` in
one transaction each, on a temporary SQLite file), once without and once with the
AudienceStream stage, each on a fresh copy. It prints:

- profile updates per second (events applied to a visitor profile, per second of the
  stage's own time), with a warm profile cache and with none (every batch reads and
  parses its profiles);
- the cost of the stage: routing with it / routing alone (whole transactions);
- memory per cached profile (tracemalloc, parsed profiles) against its JSON size.

Run: ``uv run python bench/bench_audiences.py``. It prints figures and asserts nothing.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import configure, open_services, store_events
from sluice.audiences.model import VisitorProfile
from sluice.audiences.stage import AudienceStage
from sluice.auth.principals import SYSTEM
from sluice.config import actions, audiences, connectors, profiles, publishing
from sluice.config import visitor_attributes as attributes
from sluice.connectors.definition import HttpRequest, HttpResponse
from sluice.delivery.transport import TransportError
from sluice.engine import compiled
from sluice.engine.templates import TemplateEngine
from sluice.pipeline import Pipeline
from sluice.services import Services
from sluice.storage.tables import visitors

EVENTS = 50_000
BATCH = 500
PURCHASE = [[{"attribute": "tealium_event", "operator": "equals", "value": "purchase"}]]


def _attribute(name: str, type_: str, operation: str, **rule: Any) -> dict[str, Any]:
    scope = rule.pop("scope", "visitor")
    return {
        "name": name,
        "scope": scope,
        "type": type_,
        "rules": [{"operation": operation, **rule}],
    }


def _when(attribute: str, operator: str, value: Any) -> list[Any]:
    return [[{"attribute": attribute, "operator": operator, "value": value}]]


ATTRIBUTES: list[dict[str, Any]] = [
    _attribute("purchase_count", "number", "increment", when=PURCHASE),
    _attribute("lifetime_value", "number", "increment", when=PURCHASE, attribute="order_total"),
    _attribute("last_order", "string", "set", when=PURCHASE, attribute="order_id"),
    _attribute("first_page", "string", "set_first", attribute="page_path"),
    _attribute(
        "email_ok", "boolean", "set_true", when=_when("consent_categories", "contains", "email")
    ),
    _attribute("VIP", "badge", "assign", when=_when("order_total", "gte", 140)),
    _attribute("last_seen", "date", "set_now"),
    _attribute("currencies", "set", "add", attribute="currency"),
    _attribute("events_by_name", "tally", "increment", attribute="tealium_event"),
    _attribute("visit_views", "number", "increment", scope="visit"),
]
AUDIENCES: list[tuple[str, list[Any]]] = [
    ("Buyers", [[{"attribute": "purchase_count", "operator": "gte", "value": 1}]]),
    ("Repeat buyers", [[{"attribute": "purchase_count", "operator": "gte", "value": 3}]]),
    ("Big spenders", [[{"attribute": "lifetime_value", "operator": "gte", "value": 300}]]),
    ("VIPs", [[{"attribute": "badges", "operator": "contains", "value": "VIP"}]]),
    ("Busy visits", [[{"attribute": "visit_views", "operator": "gte", "value": 5}]]),
]


class NoTransport:
    """Routing sends nothing; the pipeline only needs a transport to exist."""

    async def send(self, request: HttpRequest, timeout: float) -> HttpResponse:
        raise TransportError("connection", "not in this benchmark")

    async def close(self) -> None:
        return None


def prepare(folder: Path) -> tuple[Services, Pipeline]:
    services = open_services(f"sqlite:///{folder / 'bench.db'}")
    setup = configure(services, "http://127.0.0.1:9/sink")
    profile = profiles.get(services.db, "bench", "main")
    for definition in ATTRIBUTES:
        attributes.create(services.db, SYSTEM, profile, definition)
    ids = [
        audiences.create(services.db, SYSTEM, profile, {"name": n, "conditions": c})["id"]
        for n, c in AUDIENCES
    ]
    connector = connectors.create_connector(
        services,
        SYSTEM,
        profile,
        {"type": "webhook", "name": "Audience sink", "enabled": True, "configuration": {}},
    )
    action = {
        "name": "Joined repeat buyers",
        "type": "send_event_data",
        "enabled": True,
        "source": {"audience": ids[1], "trigger": "joined"},
        "mappings": [{"parameter": "url", "value": "http://127.0.0.1:9/audience"}],
    }
    actions.create_action(services, SYSTEM, profile, connector["id"], action)
    publishing.publish(services, SYSTEM, profile, connector["id"], {})
    store_events(services, setup.profile_id, EVENTS)
    pipeline = Pipeline(services, transport=NoTransport())
    with services.db.read() as conn:
        pipeline.config = compiled.build(conn, services.registry, services.box, TemplateEngine())
    return services, pipeline


def route_all(services: Services, pipeline: Pipeline) -> float:
    """Route every stored event, batch by batch; seconds spent in the transactions."""
    rooms = dict.fromkeys(pipeline.config.connectors, 10**9)
    spent = 0.0
    while True:
        started = time.perf_counter()
        with services.db.begin() as conn:
            count, _, upto = pipeline._route_batch(conn, pipeline.config, rooms, BATCH)
        pipeline._claimed_upto = max(pipeline._claimed_upto, upto)
        spent += time.perf_counter() - started
        if not count:
            return spent


def run(stage: AudienceStage | None) -> tuple[float, float, Services]:
    """(routing seconds, stage seconds) on a fresh database."""
    folder = Path(tempfile.mkdtemp(prefix="sluice-bench-aud-"))
    services, pipeline = prepare(folder)
    stage_time = 0.0
    if stage is not None:
        process = stage.process

        def timed(*args: Any) -> None:
            nonlocal stage_time
            started = time.perf_counter()
            process(*args)
            stage_time += time.perf_counter() - started

        stage.process = timed  # type: ignore[method-assign]
        pipeline.audiences = stage
    total = route_all(services, pipeline)
    return total, stage_time, services


def memory_per_profile(services: Services) -> tuple[float, float]:
    """(bytes of Python objects per parsed profile, mean JSON bytes per profile)."""
    with services.db.read() as conn:
        rows = [r[0] for r in conn.execute(select(visitors.c.data))]
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    parsed = [VisitorProfile.loads(data) for data in rows]
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert parsed
    return (after - before) / len(rows), statistics.mean(len(d.encode()) for d in rows)


def main() -> None:
    alone, _, plain = run(None)
    plain.db.dispose()
    warm_total, warm_stage, services = run(AudienceStage(cache_bytes=256 << 20))
    cold_total, cold_stage, cold = run(AudienceStage(cache_bytes=0))
    cold.db.dispose()
    per_profile, json_size = memory_per_profile(services)
    services.db.dispose()
    print(f"AudienceStream: {EVENTS:,} events of 5,000 visitors, 10 attributes, 5 audiences")
    print(f"  routing alone:              {EVENTS / alone:10,.0f} events/s")
    print(f"  routing + AudienceStream:   {EVENTS / warm_total:10,.0f} events/s (warm cache)")
    print(f"  profile updates (stage):    {EVENTS / warm_stage:10,.0f} /s warm cache")
    print(f"  profile updates (stage):    {EVENTS / cold_stage:10,.0f} /s no cache")
    print(f"  cost ratio (with / alone):  {warm_total / alone:10.2f} x warm, "
          f"{cold_total / alone:.2f} x no cache")  # fmt: skip
    print(f"  memory per cached profile:  {per_profile:10,.0f} bytes "
          f"(JSON {json_size:,.0f} bytes, {per_profile / json_size:.1f} x)")  # fmt: skip


if __name__ == "__main__":
    main()
