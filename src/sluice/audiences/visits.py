"""Visits: how long they last, what ending one writes, and the durable timers.

A visit ends ``visit_timeout_minutes`` (the profile's setting, default 30) after its
last event, or 24 hours after it started, whichever is first. The moment is kept in
``visitors.visit_ends_at`` (indexed): the scheduler ends due visits from there, so a
visit that should have ended while Sluice was down ends as soon as it is back. An event
that arrives for a visit past its end ends it first, so the two never disagree.
``SLUICE_VISIT_TIMEOUT_SCALE`` multiplies both lengths, for tests only.

Deliveries need an event row (``deliveries.event_seq``): firings at a visit's end refer
to a synthetic event stored with the visitor's id, already routed, whose payload is
``{"tealium_account", "tealium_profile", "tealium_event": "visit_end",
"tealium_visitor_id", "visit_started_at", "visit_ended_at", "event_id", "received_at"}``.
It is what ``event.*`` shows to the mappings, and it is erased with the visitor.

Delayed end-of-visit actions wait as rows of ``scheduled_jobs`` (kind
``audience_action``, key the visitor id) holding the visitor context as it stood at the
visit's end.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, delete, select

from sluice import jsonutil
from sluice.audiences.model import Visit, VisitorProfile
from sluice.engine.compiled import LiveAction, LiveProfile
from sluice.engine.router import StoredEvent, delivery_row
from sluice.ids import new_event_id
from sluice.reporting.counters import CounterDelta
from sluice.storage.tables import deliveries, events, scheduled_jobs, visitors
from sluice.timeutil import iso

DAY = 86400.0
JOB_KIND = "audience_action"


def limits(live: LiveProfile, scale: float) -> tuple[float, float]:
    """(inactivity timeout, longest visit) in seconds."""
    try:
        minutes = float(live.settings.get("visit_timeout_minutes") or 30)
    except (TypeError, ValueError):
        minutes = 30.0
    return minutes * 60.0 * scale, DAY * scale


def end_payload(
    live: LiveProfile, profile: VisitorProfile, visit: Visit, ended: float, now: float
) -> dict[str, Any]:
    """The synthetic ``visit_end`` event (its id is kept when it is stored)."""
    return {
        "tealium_account": live.account,
        "tealium_profile": live.profile,
        "tealium_event": "visit_end",
        "tealium_visitor_id": profile.visitor_id,
        "visit_started_at": iso(visit.started_at),
        "visit_ended_at": iso(ended),
        "event_id": new_event_id(),
        "received_at": iso(now),
    }


@dataclass
class Effects:
    """What ending visits and firing timers write besides the profiles themselves."""

    now: float
    counts: CounterDelta = field(default_factory=CounterDelta)
    rows: list[dict[str, Any]] = field(default_factory=list)
    jobs: list[dict[str, Any]] = field(default_factory=list)
    wake: set[str] = field(default_factory=set)

    def count(self, action_id: str, connector_id: str, profile_id: str, name: str) -> None:
        self.counts.add(action_id, connector_id, profile_id, self.now, name)

    def store_event(
        self, conn: Connection, profile_id: str, payload: dict[str, Any]
    ) -> StoredEvent:
        """Store a synthetic, already routed event for deliveries to refer to."""
        event_id = str(payload.get("event_id") or new_event_id())
        payload = {**payload, "event_id": event_id, "received_at": iso(self.now)}
        visitor = payload.get("tealium_visitor_id")
        result = conn.execute(
            events.insert().values(
                id=event_id,
                profile_id=profile_id,
                received_at=self.now,
                payload=jsonutil.dumps(payload),
                visitor_id=str(visitor)[:200] if visitor else None,
                routed=True,
            )
        )
        seq = int(result.inserted_primary_key[0])  # type: ignore[index]
        return StoredEvent(seq, event_id, profile_id, self.now, payload)

    def deliver(self, event: StoredEvent, action: LiveAction, data: str) -> None:
        self.rows.append(delivery_row(event, action, self.now, data))
        self.wake.add(action.connector.id)

    def write(self, conn: Connection) -> None:
        if self.rows:
            conn.execute(deliveries.insert(), self.rows)
            self.rows = []
        if self.jobs:
            conn.execute(scheduled_jobs.insert(), self.jobs)
            self.jobs = []
        self.counts.write(conn)


class VisitEndOutlet:
    """Firings at a visit's end: one synthetic event, made when first needed."""

    def __init__(
        self, conn: Connection, effects: Effects, live: LiveProfile, payload: dict[str, Any]
    ) -> None:
        self.conn = conn
        self.effects = effects
        self.live = live
        self.payload = payload
        self.event: StoredEvent | None = None

    def count(self, action: LiveAction, name: str) -> None:
        self.effects.count(action.id, action.connector.id, self.live.id, name)

    def deliver(self, action: LiveAction, data: str) -> None:
        if self.event is None:
            self.event = self.effects.store_event(self.conn, self.live.id, self.payload)
        self.effects.deliver(self.event, action, data)

    def schedule(self, action: LiveAction, audience_id: str, hours: int, data: str) -> None:
        payload = {
            "action_id": action.id,
            "connector_id": action.connector.id,
            "audience_id": audience_id,
            "event": self.payload,
            "data": data,
        }
        self.effects.jobs.append(
            {
                "kind": JOB_KIND,
                "due_at": self.effects.now + hours * 3600.0,
                "profile_id": self.live.id,
                "key": str(self.payload["tealium_visitor_id"]),
                "payload": jsonutil.dumps(payload),
                "lease_until": None,
            }
        )


def due_visits(conn: Connection, now: float, limit: int) -> list[tuple[str, str]]:
    """(profile id, visitor id) of visits due to end, oldest first."""
    rows = conn.execute(
        select(visitors.c.profile_id, visitors.c.visitor_id)
        .where(visitors.c.visit_ends_at.is_not(None), visitors.c.visit_ends_at <= now)
        .order_by(visitors.c.visit_ends_at)
        .limit(limit)
    )
    return [(r[0], r[1]) for r in rows]


@dataclass(frozen=True)
class Job:
    seq: int
    profile_id: str
    visitor_id: str
    payload: dict[str, Any]


def due_jobs(conn: Connection, now: float, limit: int, *, postgres: bool) -> list[Job]:
    """Delayed actions due now, taken out of the table (in this transaction)."""
    query = (
        select(
            scheduled_jobs.c.seq,
            scheduled_jobs.c.profile_id,
            scheduled_jobs.c.key,
            scheduled_jobs.c.payload,
        )
        .where(scheduled_jobs.c.kind == JOB_KIND, scheduled_jobs.c.due_at <= now)
        .order_by(scheduled_jobs.c.due_at)
        .limit(limit)
    )
    if postgres:
        query = query.with_for_update(skip_locked=True)
    jobs = [Job(r[0], r[1], r[2], jsonutil.loads(r[3])) for r in conn.execute(query)]
    if jobs:
        conn.execute(delete(scheduled_jobs).where(scheduled_jobs.c.seq.in_([j.seq for j in jobs])))
    return jobs
