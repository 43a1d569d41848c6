"""Audience-triggered actions: consent, the frequency cap, then a delivery (or a timer).

Triggers (the ``trigger`` of an action's audience source):

- ``joined`` / ``left``: the visitor entered / left the audience, after an event's
  enrichments or at the end of a visit;
- ``in_at_start_of_visit``: the visitor is in the audience after the first event of a
  visit;
- ``in_at_end_of_visit``: the visitor is in the audience when the visit ends; with
  ``delay_hours`` the action waits that long and fires only if the visitor is still in
  the audience then.

Each fires once per transition: the transition and its deliveries are written in one
transaction. Counters (SPEC §5): every firing is ``triggered``; consent, evaluated on the
profile's last known ``consent_categories``, may make it ``filtered_consent``; the
frequency cap may make it ``dropped``.

**Frequency cap** (``{"priority": int, "cooldown_group": name}``): within one visit, at
most one action of a cooldown group fires for a visitor. When several actions of a group
trigger at the same moment, the one with the lowest ``priority`` number fires (1 before
2; the first action on a tie); the others, and every later trigger of the group in that
visit, are dropped. Actions without a cap are never limited.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from sluice import jsonutil
from sluice.audiences.model import Visit, VisitorProfile
from sluice.engine.compiled import LiveAction, LiveProfile
from sluice.engine.consent import consent_allows
from sluice.engine.router import Routed, StoredEvent, delivery_row

TRIGGERS = ("joined", "left", "in_at_start_of_visit", "in_at_end_of_visit")
Candidate = tuple[LiveAction, str]  # (action, audience id)


class Outlet(Protocol):
    """Where one trigger point's counters, deliveries and timers go."""

    def count(self, action: LiveAction, name: str) -> None: ...

    def deliver(self, action: LiveAction, data: str) -> None: ...

    def schedule(self, action: LiveAction, audience_id: str, hours: int, data: str) -> None: ...


class EventOutlet:
    """Firings caused by a stored event: its deliveries and counts join its routing."""

    def __init__(self, routed: Routed, event: StoredEvent, now: float) -> None:
        self.routed = routed
        self.event = event
        self.now = now
        self.fired: list[dict[str, str]] = []

    def count(self, action: LiveAction, name: str) -> None:
        connector_id = action.connector.id
        self.routed.counts.add(action.id, connector_id, self.event.profile_id, self.now, name)
        self.routed.tallies.setdefault(self.event.seq, []).append((action.id, connector_id, name))

    def deliver(self, action: LiveAction, data: str) -> None:
        self.routed.deliveries.append(delivery_row(self.event, action, self.now, data))
        self.fired.append({"action_id": action.id, "name": action.name})

    def schedule(self, action: LiveAction, audience_id: str, hours: int, data: str) -> None:
        raise ValueError("only in_at_end_of_visit actions wait")  # validation prevents it


def consent_ok(action: LiveAction, profile: VisitorProfile, live: LiveProfile) -> bool:
    if not action.consent:
        return True
    known: dict[str, Any] = {}
    if profile.consent is not None:
        known["consent_categories"] = profile.consent
    return consent_allows(
        action.consent, known, enforcement=live.enforcement, missing=live.missing_consent
    )


def _priority(candidate: Candidate) -> int:
    cap = candidate[0].source.get("frequency_cap") or {}
    value = cap.get("priority")
    return value if isinstance(value, int) else 0


def apply_cap(candidates: list[Candidate], visit: Visit | None) -> tuple[list[Candidate], ...]:
    """(to fire, dropped by the cap); records the groups used in ``visit``."""
    fire: list[Candidate] = []
    dropped: list[Candidate] = []
    groups: dict[str, list[Candidate]] = {}
    for candidate in candidates:
        cap = candidate[0].source.get("frequency_cap")
        if isinstance(cap, dict) and cap.get("cooldown_group"):
            groups.setdefault(str(cap["cooldown_group"]), []).append(candidate)
        else:
            fire.append(candidate)
    for group, members in groups.items():
        if visit is not None and group in visit.capped:
            dropped.extend(members)
            continue
        best = min(members, key=_priority)  # the first of equals
        fire.append(best)
        dropped.extend(m for m in members if m is not best)
        if visit is not None:
            visit.capped = {**visit.capped, group: best[0].id}
    return fire, dropped


def fire(
    candidates: list[Candidate],
    profile: VisitorProfile,
    live: LiveProfile,
    outlet: Outlet,
    context: Callable[[], dict[str, Any]],
) -> bool:
    """Count, filter and fire these actions; True if the profile changed (a cap used)."""
    if not candidates:
        return False
    passing: list[Candidate] = []
    for action, audience_id in candidates:
        outlet.count(action, "triggered")
        if consent_ok(action, profile, live):
            passing.append((action, audience_id))
        else:
            outlet.count(action, "filtered_consent")
    visit = profile.visit
    capped_before = visit.capped if visit is not None else None
    chosen, dropped = apply_cap(passing, visit)
    for action, _ in dropped:
        outlet.count(action, "dropped")
    data: str | None = None
    for action, audience_id in chosen:
        if data is None:
            data = jsonutil.dumps(context())
        hours = action.source.get("delay_hours")
        if action.source.get("trigger") == "in_at_end_of_visit" and isinstance(hours, int):
            outlet.schedule(action, audience_id, hours, data)
        else:
            outlet.deliver(action, data)
    return visit is not None and visit.capped is not capped_before
