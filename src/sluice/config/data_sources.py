"""Data sources: named origins of events, each with a generated key (``tealium_datasource``)."""

from __future__ import annotations

import secrets
import string
from typing import Any

from sqlalchemy import Connection, Row, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from sluice import timeutil
from sluice.auth.principals import Principal
from sluice.config import audit, references, revision
from sluice.config.profiles import Profile
from sluice.errors import Conflict, NotFound, ValidationFailed
from sluice.ids import new_id
from sluice.storage.db import Database
from sluice.storage.tables import data_sources

PLATFORMS = ("web", "mobile", "http_api", "webhook", "file")
KEY_ALPHABET = string.ascii_lowercase + string.digits
KEY_LENGTH = 6
_KEY_ATTEMPTS = 5


def as_json(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "platform": row.platform,
        "key": row.key,
        "description": row.description,
        "created_at": timeutil.iso(row.created_at),
        "updated_at": timeutil.iso(row.updated_at),
    }


def new_key() -> str:
    """Six lowercase letters and digits, like Tealium's data source keys (36^6 ≈ 2·10^9)."""
    return "".join(secrets.choice(KEY_ALPHABET) for _ in range(KEY_LENGTH))


def find_by_key(conn: Connection, key: str) -> Row[Any] | None:
    """The data source with this key, in any profile (the collect API checks the profile)."""
    return conn.execute(select(data_sources).where(data_sources.c.key == key)).first()


def list_sources(db: Database, profile_id: str) -> list[dict[str, Any]]:
    with db.read() as conn:
        rows = conn.execute(
            select(data_sources)
            .where(data_sources.c.profile_id == profile_id)
            .order_by(func.lower(data_sources.c.name), data_sources.c.created_at)
        ).all()
    return [as_json(r) for r in rows]


def get(db: Database, profile_id: str, source_id: str) -> dict[str, Any]:
    with db.read() as conn:
        return as_json(_row(conn, profile_id, source_id))


def create(
    db: Database, actor: Principal, profile: Profile, body: dict[str, Any]
) -> dict[str, Any]:
    name = _check_name(body.get("name"))
    platform = _check_platform(body.get("platform"))
    description = _check_description(body.get("description", ""))
    # A key collision is astronomically rare, but the unique index is the real guard: on
    # a clash (or a race on PostgreSQL) the whole insert is retried with a new key.
    for attempt in range(_KEY_ATTEMPTS):
        now = timeutil.now()
        source_id = new_id("ds")
        row = {
            "id": source_id,
            "profile_id": profile.id,
            "name": name,
            "platform": platform,
            "key": new_key(),
            "description": description,
            "created_at": now,
            "updated_at": now,
        }
        try:
            with db.begin() as conn:
                _refuse_duplicate_name(conn, profile.id, name)
                conn.execute(data_sources.insert().values(**row))
                audit.record(
                    conn,
                    actor,
                    "data_source.create",
                    source_id,
                    profile_id=profile.id,
                    details={"name": name, "platform": platform, "key": row["key"]},
                )
                revision.bump(conn)
                return as_json(_row(conn, profile.id, source_id))
        except IntegrityError:
            if attempt == _KEY_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def patch(
    db: Database, actor: Principal, profile: Profile, source_id: str, changes: dict[str, Any]
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, value in changes.items():
        if key == "name":
            values["name"] = _check_name(value)
        elif key == "platform":
            values["platform"] = _check_platform(value)
        elif key == "description":
            values["description"] = _check_description(value)
        elif key == "key":
            raise ValidationFailed.field("key", "is generated and cannot be changed")
        elif key in ("id", "created_at", "updated_at"):
            raise ValidationFailed.field(key, "cannot be changed")
        else:
            raise ValidationFailed.field(key, "unknown field")
    with db.begin() as conn:
        current = _row(conn, profile.id, source_id)
        if "name" in values and values["name"].lower() != current.name.lower():
            _refuse_duplicate_name(conn, profile.id, values["name"])
        if values:
            values["updated_at"] = timeutil.now()
            conn.execute(
                update(data_sources).where(data_sources.c.id == source_id).values(**values)
            )
            audit.record(
                conn,
                actor,
                "data_source.update",
                source_id,
                profile_id=profile.id,
                details={"changes": changes},
            )
            revision.bump(conn)
        return as_json(_row(conn, profile.id, source_id))


def remove(db: Database, actor: Principal, profile: Profile, source_id: str) -> None:
    with db.begin() as conn:
        current = _row(conn, profile.id, source_id)
        references.refuse_if_used(
            conn, profile.id, "data_source", source_id, f"the data source {current.name!r}"
        )
        conn.execute(delete(data_sources).where(data_sources.c.id == source_id))
        audit.record(
            conn,
            actor,
            "data_source.delete",
            source_id,
            profile_id=profile.id,
            details={"name": current.name, "key": current.key},
        )
        revision.bump(conn)


def _row(conn: Connection, profile_id: str, source_id: str) -> Row[Any]:
    row = conn.execute(
        select(data_sources).where(
            data_sources.c.id == source_id, data_sources.c.profile_id == profile_id
        )
    ).first()
    if row is None:
        raise NotFound(f"no data source {source_id}")
    return row


def _refuse_duplicate_name(conn: Connection, profile_id: str, name: str) -> None:
    clash = conn.execute(
        select(data_sources.c.id).where(
            data_sources.c.profile_id == profile_id,
            func.lower(data_sources.c.name) == name.lower(),
        )
    ).first()
    if clash is not None:
        raise Conflict(f"a data source named {name!r} exists already")


def _check_name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationFailed.field("name", "is required")
    if len(value.strip()) > 200:
        raise ValidationFailed.field("name", "must be at most 200 characters")
    return value.strip()


def _check_platform(value: Any) -> str:
    if value not in PLATFORMS:
        raise ValidationFailed.field("platform", f"must be one of {', '.join(PLATFORMS)}")
    return str(value)


def _check_description(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationFailed.field("description", "must be a string")
    return value
