"""Routing: which published actions does each event trigger? (SPEC §5)

For every event: the profile's event-sourced actions are checked in order of data source,
feed conditions, then consent. An action that matches is ``triggered``; consent either
filters it (``filtered_consent``) or it becomes a delivery.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sluice import jsonutil
from sluice.engine.compiled import CompiledConfig, LiveAction
from sluice.engine.consent import consent_allows
from sluice.reporting.counters import CounterDelta


@dataclass
class StoredEvent:
    seq: int
    id: str
    profile_id: str
    received_at: float
    payload: dict[str, Any]


@dataclass
class TraceStep:
    profile_id: str
    trace_id: str
    event_id: str | None
    step: str
    data: dict[str, Any]
    visitor_id: str | None = None

    def row(self, now: float) -> dict[str, Any]:
        return {
            "profile_id": self.profile_id,
            "trace_id": self.trace_id,
            "event_id": self.event_id,
            "visitor_id": self.visitor_id,
            "at": now,
            "step": self.step,
            "data": jsonutil.dumps(self.data),
        }


@dataclass
class Routed:
    """What routing a batch of events produced, written in one transaction."""

    deliveries: list[dict[str, Any]] = field(default_factory=list)
    counts: CounterDelta = field(default_factory=CounterDelta)
    traces: list[TraceStep] = field(default_factory=list)
    # The same counts and traces per event (by seq), for events whose first delivery
    # attempts are tracked in memory and recorded only when they all have an outcome.
    tallies: dict[int, list[tuple[str, str, str]]] = field(default_factory=dict)
    trace_of: dict[int, TraceStep] = field(default_factory=dict)


def delivery_row(
    event: StoredEvent, action: LiveAction, now: float, data: str | None = None
) -> dict[str, Any]:
    return {
        "event_seq": event.seq,
        "event_id": event.id,
        "profile_id": event.profile_id,
        "connector_id": action.connector.id,
        "action_id": action.id,
        "attempts": 0,
        "next_at": now,
        "lease_until": None,
        "created_at": now,
        "data": data,
    }


def route_events(config: CompiledConfig, events: list[StoredEvent], now: float) -> Routed:
    routed = Routed()
    counts = routed.counts
    for event in events:
        profile = config.profiles_by_id.get(event.profile_id)
        if profile is None:
            continue
        payload = event.payload
        trace_id = payload.get("tealium_trace_id")
        source_key = payload.get("tealium_datasource")
        matched: list[str] = []
        filtered: list[str] = []
        tally: list[tuple[str, str, str]] = []
        for action in profile.event_actions:
            if action.data_source_key is not None and action.data_source_key != source_key:
                continue
            if not action.matches(payload):
                continue
            connector = action.connector
            counts.add(action.id, connector.id, event.profile_id, now, "triggered")
            tally.append((action.id, connector.id, "triggered"))
            if action.consent and not consent_allows(
                action.consent,
                payload,
                enforcement=profile.enforcement,
                missing=profile.missing_consent,
            ):
                counts.add(action.id, connector.id, event.profile_id, now, "filtered_consent")
                tally.append((action.id, connector.id, "filtered_consent"))
                if trace_id:
                    filtered.append(action.id)
                continue
            routed.deliveries.append(delivery_row(event, action, now))
            if trace_id:
                matched.append(action.id)
        if tally:
            routed.tallies[event.seq] = tally
        if trace_id:
            routed.trace_of[event.seq] = step = TraceStep(
                event.profile_id,
                str(trace_id),
                event.id,
                "routed",
                {
                    "event": payload,
                    "triggered": [
                        {"action_id": a, "name": config.actions[a].name} for a in matched
                    ],
                    "filtered_consent": [
                        {"action_id": a, "name": config.actions[a].name} for a in filtered
                    ],
                    "consent_categories": payload.get("consent_categories"),
                    "consent_enforcement": profile.enforcement,
                },
                payload.get("tealium_visitor_id"),
            )
            routed.traces.append(step)
    return routed
