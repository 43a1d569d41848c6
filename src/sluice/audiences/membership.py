"""Audiences: conditions over a visitor profile, and who joins and leaves them.

An audience's conditions are event-feed conditions (SPEC §8) over the profile's
attribute names (both scopes), ``badges`` (a list), ``audiences`` (ids and names of the
audiences the visitor was in before this evaluation) and ``current_visit.event_count``.
Audiences are evaluated in the order they were created, all against the same view.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sluice.audiences.model import VisitorProfile
from sluice.engine.conditions import Predicate, compile_conditions

log = logging.getLogger("sluice.audiences")


@dataclass(frozen=True, slots=True)
class CompiledAudience:
    id: str
    name: str
    matches: Predicate


@dataclass(slots=True)
class Changes:
    joined: list[str]
    left: list[str]

    def __bool__(self) -> bool:
        return bool(self.joined or self.left)


def compile_audiences(definitions: Mapping[str, Mapping[str, Any]]) -> list[CompiledAudience]:
    compiled = []
    for audience_id, definition in definitions.items():
        try:
            matches = compile_conditions(definition.get("conditions") or [])
        except Exception:  # a stored audience must never take the runtime down
            log.exception("cannot compile the audience %s; skipped", audience_id)
            continue
        compiled.append(CompiledAudience(audience_id, str(definition.get("name")), matches))
    return compiled


def evaluate(
    profile: VisitorProfile,
    audiences: list[CompiledAudience],
    names: dict[str, str],
    at: float,
) -> Changes:
    """Re-evaluate every audience; update the memberships; say who joined and left.

    Memberships of audiences that no longer exist are dropped without a ``left``.
    """
    view = profile.condition_view(names)
    current = profile.audiences
    updated: dict[str, dict[str, Any]] = {}
    changes = Changes([], [])
    for audience in audiences:
        member = current.get(audience.id)
        if audience.matches(view):
            if member is None:
                member = {"name": audience.name, "joined_at": at}
                changes.joined.append(audience.id)
            updated[audience.id] = member
        elif member is not None:
            changes.left.append(audience.id)
    if changes or len(updated) != len(current):
        profile.audiences = updated
    return changes
