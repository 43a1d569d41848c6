"""Visitor attributes (AudienceStream, SPEC §8): what a visitor profile keeps, and how.

An attribute is ``{"id", "name", "scope", "type", "rules", "created_at", "updated_at"}``.
Names are unique per profile across both scopes (ignoring case). ``name``, ``scope``
and ``type`` are fixed once created (profiles store values by name and type); ``rules``
can be replaced. Changes take effect within seconds, like feeds (no draft).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, delete, func, select, update

from sluice import jsonutil, timeutil
from sluice.audiences.rules import check_kind, check_name, check_rules
from sluice.auth.principals import Principal
from sluice.config import audit, revision
from sluice.config.profiles import Profile
from sluice.errors import Conflict, NotFound, ValidationFailed
from sluice.ids import new_id
from sluice.storage.db import Database
from sluice.storage.tables import audiences, visitor_attributes

FIXED = ("name", "scope", "type")


def as_json(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "scope": row.scope,
        "type": row.type,
        "rules": jsonutil.loads(row.rules) or [],
        "created_at": timeutil.iso(row.created_at),
        "updated_at": timeutil.iso(row.updated_at),
    }


def names(conn: Connection, profile_id: str) -> list[str]:
    """The profile's visitor attribute names, oldest first."""
    query = (
        select(visitor_attributes.c.name)
        .where(visitor_attributes.c.profile_id == profile_id)
        .order_by(visitor_attributes.c.created_at)
    )
    return [r[0] for r in conn.execute(query)]


def list_attributes(db: Database, profile_id: str) -> list[dict[str, Any]]:
    with db.read() as conn:
        rows = conn.execute(
            select(visitor_attributes)
            .where(visitor_attributes.c.profile_id == profile_id)
            .order_by(func.lower(visitor_attributes.c.name), visitor_attributes.c.created_at)
        ).all()
    return [as_json(row) for row in rows]


def get(db: Database, profile_id: str, attribute_id: str) -> dict[str, Any]:
    with db.read() as conn:
        return as_json(_row(conn, profile_id, attribute_id))


def create(
    db: Database, actor: Principal, profile: Profile, body: dict[str, Any]
) -> dict[str, Any]:
    for key in body:
        if key not in ("name", "scope", "type", "rules"):
            raise ValidationFailed.field(key, "unknown field")
    name = check_name(body.get("name"))
    scope, type_ = check_kind(body.get("scope"), body.get("type"))
    rules = check_rules(body.get("rules", []), type_)
    now = timeutil.now()
    attribute_id = new_id("vattr")
    with db.begin() as conn:
        _refuse_duplicate_name(conn, profile.id, name)
        conn.execute(
            visitor_attributes.insert().values(
                id=attribute_id,
                profile_id=profile.id,
                name=name,
                scope=scope,
                type=type_,
                rules=jsonutil.dumps(rules),
                created_at=now,
                updated_at=now,
            )
        )
        audit.record(
            conn,
            actor,
            "visitor_attribute.create",
            attribute_id,
            profile_id=profile.id,
            details={"name": name, "scope": scope, "type": type_, "rules": rules},
        )
        revision.bump(conn)
        return as_json(_row(conn, profile.id, attribute_id))


def patch(
    db: Database, actor: Principal, profile: Profile, attribute_id: str, changes: dict[str, Any]
) -> dict[str, Any]:
    with db.begin() as conn:
        current = _row(conn, profile.id, attribute_id)
        values: dict[str, Any] = {}
        for key, value in changes.items():
            if key == "rules":
                values["rules"] = jsonutil.dumps(check_rules(value, current.type))
            elif key in FIXED:
                if value != getattr(current, key):
                    raise ValidationFailed.field(
                        key, "cannot be changed; create a new visitor attribute instead"
                    )
            elif key in ("id", "created_at", "updated_at"):
                raise ValidationFailed.field(key, "cannot be changed")
            else:
                raise ValidationFailed.field(key, "unknown field")
        if values:
            values["updated_at"] = timeutil.now()
            conn.execute(
                update(visitor_attributes)
                .where(visitor_attributes.c.id == attribute_id)
                .values(**values)
            )
            audit.record(
                conn,
                actor,
                "visitor_attribute.update",
                attribute_id,
                profile_id=profile.id,
                details={"changes": changes},
            )
            revision.bump(conn)
        return as_json(_row(conn, profile.id, attribute_id))


def remove(db: Database, actor: Principal, profile: Profile, attribute_id: str) -> None:
    with db.begin() as conn:
        current = _row(conn, profile.id, attribute_id)
        users = _audiences_using(conn, profile.id, current.name)
        if users:
            listed = ", ".join(repr(a["name"]) for a in users)
            raise Conflict(
                f"the visitor attribute {current.name!r} is used by the audiences {listed}; "
                "change those audiences first",
                [{"audience_id": a["id"], "audience_name": a["name"]} for a in users],
            )
        conn.execute(delete(visitor_attributes).where(visitor_attributes.c.id == attribute_id))
        audit.record(
            conn,
            actor,
            "visitor_attribute.delete",
            attribute_id,
            profile_id=profile.id,
            details={"name": current.name},
        )
        revision.bump(conn)


def _audiences_using(conn: Connection, profile_id: str, name: str) -> list[dict[str, str]]:
    rows = conn.execute(
        select(audiences.c.id, audiences.c.name, audiences.c.conditions).where(
            audiences.c.profile_id == profile_id
        )
    )
    found = []
    for audience_id, audience_name, conditions in rows:
        groups = jsonutil.loads(conditions) or []
        if any(
            str(c.get("attribute", "")).split(".")[0] == name for group in groups for c in group
        ):
            found.append({"id": audience_id, "name": audience_name})
    return found


def _row(conn: Connection, profile_id: str, attribute_id: str) -> Row[Any]:
    row = conn.execute(
        select(visitor_attributes).where(
            visitor_attributes.c.id == attribute_id,
            visitor_attributes.c.profile_id == profile_id,
        )
    ).first()
    if row is None:
        raise NotFound(f"no visitor attribute {attribute_id}")
    return row


def _refuse_duplicate_name(conn: Connection, profile_id: str, name: str) -> None:
    clash = conn.execute(
        select(visitor_attributes.c.id).where(
            visitor_attributes.c.profile_id == profile_id,
            func.lower(visitor_attributes.c.name) == name.lower(),
        )
    ).first()
    if clash is not None:
        raise Conflict(f"a visitor attribute named {name!r} exists already")
