"""The visitor profile: what AudienceStream keeps per ``tealium_visitor_id``.

Stored as one JSON document per visitor (``visitors.data``)::

    {"v": 1, "visitor_id", "created_at", "updated_at",        # epoch seconds
     "attributes": {name: value},                             # visitor scope
     "badges": [name, ...],                                    # sorted
     "audiences": {audience id: {"name", "joined_at"}},
     "visit": {"started_at", "last_event_at", "event_count",
               "attributes": {name: value},                   # visit scope
               "capped": {cooldown group: action id}} or null,
     "consent": [category, ...] or null,                       # last known, normalised
     "last_seq": N, "over_size_limit": bool}

Values are plain JSON: a set is a sorted list of strings, a tally an object of counts, a
date ISO 8601 text. Values are replaced, never changed in place (a set gains an element
as a new list), so a snapshot of a profile is a few shallow copies: that is how an event
that would pass the size cap is undone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from sluice.timeutil import iso

FORMAT = 1


@dataclass(slots=True)
class Visit:
    started_at: float
    last_event_at: float
    event_count: int = 0
    attributes: dict[str, Any] = field(default_factory=dict)
    capped: dict[str, str] = field(default_factory=dict)  # cooldown group -> action id

    def ends_at(self, timeout: float, longest: float) -> float:
        """After ``timeout`` seconds without an event, or ``longest`` after its start."""
        return min(self.last_event_at + timeout, self.started_at + longest)

    def copy(self) -> Visit:
        return Visit(
            self.started_at, self.last_event_at, self.event_count, self.attributes, self.capped
        )

    def doc(self) -> dict[str, Any]:
        return {
            "started_at": self.started_at,
            "last_event_at": self.last_event_at,
            "event_count": self.event_count,
            "attributes": self.attributes,
            "capped": self.capped,
        }

    def shown(self) -> dict[str, Any]:
        return {
            "started_at": iso(self.started_at),
            "last_event_at": iso(self.last_event_at),
            "event_count": self.event_count,
            "attributes": dict(self.attributes),
        }


Snapshot = tuple[Any, ...]


@dataclass(slots=True)
class VisitorProfile:
    visitor_id: str
    created_at: float
    updated_at: float
    attributes: dict[str, Any] = field(default_factory=dict)
    badges: list[str] = field(default_factory=list)
    audiences: dict[str, dict[str, Any]] = field(default_factory=dict)
    visit: Visit | None = None
    consent: list[str] | None = None
    last_seq: int = 0
    over_size: bool = False

    # --- storage ----------------------------------------------------------------------

    def doc(self) -> dict[str, Any]:
        return {
            "v": FORMAT,
            "visitor_id": self.visitor_id,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "attributes": self.attributes,
            "badges": self.badges,
            "audiences": self.audiences,
            "visit": self.visit.doc() if self.visit is not None else None,
            "consent": self.consent,
            "last_seq": self.last_seq,
            "over_size_limit": self.over_size,
        }

    def dumps(self) -> bytes:
        return orjson.dumps(self.doc())

    @classmethod
    def loads(cls, data: str | bytes) -> VisitorProfile:
        doc = orjson.loads(data)
        raw_visit = doc.get("visit")
        visit = None
        if isinstance(raw_visit, dict):
            visit = Visit(
                float(raw_visit["started_at"]),
                float(raw_visit["last_event_at"]),
                int(raw_visit.get("event_count") or 0),
                dict(raw_visit.get("attributes") or {}),
                dict(raw_visit.get("capped") or {}),
            )
        return cls(
            visitor_id=str(doc["visitor_id"]),
            created_at=float(doc.get("created_at") or 0.0),
            updated_at=float(doc.get("updated_at") or 0.0),
            attributes=dict(doc.get("attributes") or {}),
            badges=list(doc.get("badges") or []),
            audiences=dict(doc.get("audiences") or {}),
            visit=visit,
            consent=doc.get("consent"),
            last_seq=int(doc.get("last_seq") or 0),
            over_size=bool(doc.get("over_size_limit")),
        )

    # --- undo -------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """What :meth:`restore` needs to undo one event (values are never mutated)."""
        return (
            dict(self.attributes),
            self.badges,
            self.audiences,
            self.visit.copy() if self.visit is not None else None,
            dict(self.visit.attributes) if self.visit is not None else None,
            self.consent,
            self.updated_at,
        )

    def restore(self, snapshot: Snapshot) -> None:
        attributes, badges, audiences, visit, visit_attributes, consent, updated_at = snapshot
        self.attributes = attributes
        self.badges = badges
        self.audiences = audiences
        if visit is not None:
            visit.attributes = visit_attributes
        self.visit = visit
        self.consent = consent
        self.updated_at = updated_at

    # --- views ------------------------------------------------------------------------

    def memberships(self, names: dict[str, str]) -> dict[str, dict[str, Any]]:
        """``{audience id: {"name", "joined_at"}}`` with current names where known."""
        return {
            audience_id: {
                "name": names.get(audience_id, member.get("name")),
                "joined_at": iso(member.get("joined_at")),
            }
            for audience_id, member in self.audiences.items()
        }

    def shown(self, names: dict[str, str]) -> dict[str, Any]:
        """The API's view (``GET P/visitors/{visitor_id}``, SPEC §8)."""
        shown: dict[str, Any] = {
            "visitor_id": self.visitor_id,
            "attributes": dict(self.attributes),
            "badges": list(self.badges),
            "audiences": self.memberships(names),
            "current_visit": self.visit.shown() if self.visit is not None else None,
            "updated_at": iso(self.updated_at),
        }
        if self.over_size:
            shown["over_size_limit"] = True
        return shown

    def context(self, event: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
        """What the mappings of a visitor-sourced action see (SPEC §8)."""
        context: dict[str, Any] = dict(self.attributes)
        if self.visit is not None:
            context.update(self.visit.attributes)
        context["visitor_id"] = self.visitor_id
        context["badges"] = list(self.badges)
        context["audiences"] = self.memberships(names)
        context["current_visit"] = self.visit.shown() if self.visit is not None else None
        context["event"] = event
        return context

    def condition_view(self, names: dict[str, str]) -> dict[str, Any]:
        """What audience conditions test: attribute names, ``badges``, ``audiences``
        (ids and names of the audiences joined so far) and ``current_visit.event_count``."""
        view: dict[str, Any] = dict(self.attributes)
        visit = self.visit
        if visit is not None:
            view.update(visit.attributes)
            view["current_visit"] = {"event_count": visit.event_count}
        view["badges"] = self.badges
        joined = list(self.audiences)
        joined.extend(names[a] for a in self.audiences if a in names)
        view["audiences"] = joined
        return view


def new_profile(visitor_id: str, now: float) -> VisitorProfile:
    return VisitorProfile(visitor_id=visitor_id, created_at=now, updated_at=now)
