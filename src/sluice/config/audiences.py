"""Audiences (AudienceStream, SPEC §8): named rules over visitor profiles.

An audience is ``{"id", "name", "conditions", "member_count", "created_at",
"updated_at"}``. ``conditions`` are event-feed conditions over the profile's visitor
attribute names (either scope), ``badges``, ``audiences`` and ``current_visit``; each
condition must name one of those, so a typo is a 422 rather than an audience nobody
joins. ``member_count`` is counted live from the stored profiles. Changes take effect
within seconds (no draft); an audience that an action uses cannot be deleted (409).
"""

from __future__ import annotations

import difflib
from typing import Any

from sqlalchemy import Connection, Row, delete, func, select, update

from sluice import jsonutil, timeutil
from sluice.audiences.lookup import member_counts
from sluice.auth.principals import Principal
from sluice.config import audit, references, revision
from sluice.config import visitor_attributes as attributes_service
from sluice.config.profiles import Profile
from sluice.engine.conditions import validate_conditions
from sluice.errors import Conflict, NotFound, ValidationFailed
from sluice.ids import new_id
from sluice.storage.db import Database
from sluice.storage.tables import audiences

BUILTIN_NAMES = ("badges", "audiences", "current_visit")


def _as_json(row: Any, members: dict[str, int]) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "conditions": jsonutil.loads(row.conditions) or [],
        "member_count": members.get(row.id, 0),
        "created_at": timeutil.iso(row.created_at),
        "updated_at": timeutil.iso(row.updated_at),
    }


def list_audiences(db: Database, profile_id: str) -> list[dict[str, Any]]:
    with db.read() as conn:
        rows = conn.execute(
            select(audiences)
            .where(audiences.c.profile_id == profile_id)
            .order_by(func.lower(audiences.c.name), audiences.c.created_at)
        ).all()
        members = member_counts(conn, profile_id) if rows else {}
    return [_as_json(row, members) for row in rows]


def get(db: Database, profile_id: str, audience_id: str) -> dict[str, Any]:
    with db.read() as conn:
        return _as_json(_row(conn, profile_id, audience_id), member_counts(conn, profile_id))


def create(
    db: Database, actor: Principal, profile: Profile, body: dict[str, Any]
) -> dict[str, Any]:
    for key in body:
        if key not in ("name", "conditions"):
            raise ValidationFailed.field(key, "unknown field")
    name = _check_name(body.get("name"))
    now = timeutil.now()
    audience_id = new_id("aud")
    with db.begin() as conn:
        conditions = _check_conditions(conn, profile.id, body.get("conditions", []))
        _refuse_duplicate_name(conn, profile.id, name)
        conn.execute(
            audiences.insert().values(
                id=audience_id,
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
            "audience.create",
            audience_id,
            profile_id=profile.id,
            details={"name": name, "conditions": conditions},
        )
        revision.bump(conn)
        return _as_json(_row(conn, profile.id, audience_id), {})


def patch(
    db: Database, actor: Principal, profile: Profile, audience_id: str, changes: dict[str, Any]
) -> dict[str, Any]:
    with db.begin() as conn:
        current = _row(conn, profile.id, audience_id)
        values: dict[str, Any] = {}
        for key, value in changes.items():
            if key == "name":
                values["name"] = _check_name(value)
                if values["name"].lower() != current.name.lower():
                    _refuse_duplicate_name(conn, profile.id, values["name"])
            elif key == "conditions":
                values["conditions"] = jsonutil.dumps(_check_conditions(conn, profile.id, value))
            elif key in ("id", "member_count", "created_at", "updated_at"):
                raise ValidationFailed.field(key, "cannot be changed")
            else:
                raise ValidationFailed.field(key, "unknown field")
        if values:
            values["updated_at"] = timeutil.now()
            conn.execute(update(audiences).where(audiences.c.id == audience_id).values(**values))
            audit.record(
                conn,
                actor,
                "audience.update",
                audience_id,
                profile_id=profile.id,
                details={"changes": changes},
            )
            revision.bump(conn)
        return _as_json(_row(conn, profile.id, audience_id), member_counts(conn, profile.id))


def remove(db: Database, actor: Principal, profile: Profile, audience_id: str) -> None:
    with db.begin() as conn:
        current = _row(conn, profile.id, audience_id)
        references.refuse_if_used(
            conn, profile.id, "audience", audience_id, f"the audience {current.name!r}"
        )
        conn.execute(delete(audiences).where(audiences.c.id == audience_id))
        audit.record(
            conn,
            actor,
            "audience.delete",
            audience_id,
            profile_id=profile.id,
            details={"name": current.name},
        )
        revision.bump(conn)


def _row(conn: Connection, profile_id: str, audience_id: str) -> Row[Any]:
    row = conn.execute(
        select(audiences).where(audiences.c.id == audience_id, audiences.c.profile_id == profile_id)
    ).first()
    if row is None:
        raise NotFound(f"no audience {audience_id}")
    return row


def _refuse_duplicate_name(conn: Connection, profile_id: str, name: str) -> None:
    clash = conn.execute(
        select(audiences.c.id).where(
            audiences.c.profile_id == profile_id, func.lower(audiences.c.name) == name.lower()
        )
    ).first()
    if clash is not None:
        raise Conflict(f"an audience named {name!r} exists already")


def _check_name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationFailed.field("name", "is required")
    if len(value.strip()) > 200:
        raise ValidationFailed.field("name", "must be at most 200 characters")
    return value.strip()


def _check_conditions(conn: Connection, profile_id: str, raw: Any) -> list[Any]:
    conditions = validate_conditions(raw, field="conditions")
    known = [*attributes_service.names(conn, profile_id), *BUILTIN_NAMES]
    for g, group in enumerate(conditions):
        for i, condition in enumerate(group):
            name = str(condition["attribute"]).split(".")[0]
            if name not in known:
                close = difflib.get_close_matches(name, known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ValidationFailed.field(
                    f"conditions[{g}][{i}].attribute",
                    f"no visitor attribute {name!r}{hint}; create it first, or use "
                    f"{', '.join(BUILTIN_NAMES)}",
                )
    return list(conditions)
