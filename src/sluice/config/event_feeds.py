"""Event feeds: named filters over events (SPEC §8), plus the built-in "All Events".

"All Events" (id ``all_events``) is virtual: it is in no table, matches every event, is
listed first in every profile, and can be neither changed nor deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, delete, func, select, update

from sluice import jsonutil, timeutil
from sluice.auth.principals import Principal
from sluice.config import audit, references, revision
from sluice.config.profiles import Profile
from sluice.engine.conditions import validate_conditions
from sluice.errors import Conflict, NotFound, ValidationFailed
from sluice.ids import new_id
from sluice.storage.db import Database
from sluice.storage.tables import event_feeds

ALL_EVENTS_ID = "all_events"
ALL_EVENTS_NAME = "All Events"


@dataclass(frozen=True)
class EventFeed:
    id: str
    name: str
    conditions: list[Any]  # OR of ANDs, as validated; [] matches every event
    builtin: bool = False
    created_at: float | None = None
    updated_at: float | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "conditions": self.conditions,
            "builtin": self.builtin,
            "created_at": timeutil.iso(self.created_at),
            "updated_at": timeutil.iso(self.updated_at),
        }


ALL_EVENTS = EventFeed(ALL_EVENTS_ID, ALL_EVENTS_NAME, [], builtin=True)


def load_feeds(conn: Connection, profile_id: str) -> list[EventFeed]:
    """Every feed of a profile, "All Events" first, then by name."""
    rows = conn.execute(
        select(event_feeds)
        .where(event_feeds.c.profile_id == profile_id)
        .order_by(func.lower(event_feeds.c.name), event_feeds.c.created_at)
    ).all()
    return [ALL_EVENTS, *map(_from_row, rows)]


def list_feeds(db: Database, profile_id: str) -> list[dict[str, Any]]:
    with db.read() as conn:
        return [feed.as_json() for feed in load_feeds(conn, profile_id)]


def get(db: Database, profile_id: str, feed_id: str) -> dict[str, Any]:
    if feed_id == ALL_EVENTS_ID:
        return ALL_EVENTS.as_json()
    with db.read() as conn:
        return _from_row(_row(conn, profile_id, feed_id)).as_json()


def create(
    db: Database, actor: Principal, profile: Profile, body: dict[str, Any]
) -> dict[str, Any]:
    name = _check_name(body.get("name"))
    conditions = _check_conditions(body.get("conditions", []))
    now = timeutil.now()
    feed_id = new_id("feed")
    with db.begin() as conn:
        _refuse_duplicate_name(conn, profile.id, name)
        conn.execute(
            event_feeds.insert().values(
                id=feed_id,
                profile_id=profile.id,
                name=name,
                conditions=jsonutil.dumps(conditions),
                created_at=now,
                updated_at=now,
            )
        )
        audit.record(
            conn,
            actor,
            "event_feed.create",
            feed_id,
            profile_id=profile.id,
            details={"name": name, "conditions": conditions},
        )
        revision.bump(conn)
        return _from_row(_row(conn, profile.id, feed_id)).as_json()


def patch(
    db: Database, actor: Principal, profile: Profile, feed_id: str, changes: dict[str, Any]
) -> dict[str, Any]:
    _refuse_builtin(feed_id, "changed")
    values: dict[str, Any] = {}
    for key, value in changes.items():
        if key == "name":
            values["name"] = _check_name(value)
        elif key == "conditions":
            values["conditions"] = jsonutil.dumps(_check_conditions(value))
        elif key in ("id", "builtin", "created_at", "updated_at"):
            raise ValidationFailed.field(key, "cannot be changed")
        else:
            raise ValidationFailed.field(key, "unknown field")
    with db.begin() as conn:
        current = _row(conn, profile.id, feed_id)
        if "name" in values and values["name"].lower() != current.name.lower():
            _refuse_duplicate_name(conn, profile.id, values["name"])
        if values:
            values["updated_at"] = timeutil.now()
            conn.execute(update(event_feeds).where(event_feeds.c.id == feed_id).values(**values))
            audit.record(
                conn,
                actor,
                "event_feed.update",
                feed_id,
                profile_id=profile.id,
                details={"changes": changes},
            )
            revision.bump(conn)
        return _from_row(_row(conn, profile.id, feed_id)).as_json()


def remove(db: Database, actor: Principal, profile: Profile, feed_id: str) -> None:
    _refuse_builtin(feed_id, "deleted")
    with db.begin() as conn:
        current = _row(conn, profile.id, feed_id)
        references.refuse_if_used(
            conn, profile.id, "event_feed", feed_id, f"the event feed {current.name!r}"
        )
        conn.execute(delete(event_feeds).where(event_feeds.c.id == feed_id))
        audit.record(
            conn,
            actor,
            "event_feed.delete",
            feed_id,
            profile_id=profile.id,
            details={"name": current.name},
        )
        revision.bump(conn)


def _from_row(row: Any) -> EventFeed:
    return EventFeed(
        id=row.id,
        name=row.name,
        conditions=jsonutil.loads(row.conditions) or [],
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _row(conn: Connection, profile_id: str, feed_id: str) -> Row[Any]:
    row = conn.execute(
        select(event_feeds).where(
            event_feeds.c.id == feed_id, event_feeds.c.profile_id == profile_id
        )
    ).first()
    if row is None:
        raise NotFound(f"no event feed {feed_id}")
    return row


def _refuse_builtin(feed_id: str, verb: str) -> None:
    if feed_id == ALL_EVENTS_ID:
        raise Conflict(f"the built-in feed {ALL_EVENTS_NAME!r} cannot be {verb}")


def _refuse_duplicate_name(conn: Connection, profile_id: str, name: str) -> None:
    clash = name.lower() == ALL_EVENTS_NAME.lower() or (
        conn.execute(
            select(event_feeds.c.id).where(
                event_feeds.c.profile_id == profile_id,
                func.lower(event_feeds.c.name) == name.lower(),
            )
        ).first()
        is not None
    )
    if clash:
        raise Conflict(f"an event feed named {name!r} exists already")


def _check_name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationFailed.field("name", "is required")
    if len(value.strip()) > 200:
        raise ValidationFailed.field("name", "must be at most 200 characters")
    return value.strip()


def _check_conditions(raw: Any) -> list[Any]:
    return list(validate_conditions(raw, field="conditions"))
