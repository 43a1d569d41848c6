"""Event attributes: discovered from traffic by the pipeline, or defined by users.

A discovered attribute has ``defined: false`` and follows the traffic (its type is the
type last seen). Defining one (``POST``) fixes its type and description; when the name was
already discovered, the definition upgrades that attribute in place, keeping its sample
and first/last seen, and only an attribute that is already defined is a 409.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Row, case, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import ColumnElement

from sluice import jsonutil, timeutil
from sluice.auth.principals import Principal
from sluice.config import audit, revision
from sluice.config.profiles import Profile
from sluice.errors import Conflict, ValidationFailed
from sluice.ids import new_id
from sluice.storage.db import Database
from sluice.storage.tables import attributes

TYPES = ("string", "number", "boolean", "array", "object", "null")
MAX_NAME = 300
# A sample is for people reading the attribute list; huge values are cut to a text preview.
MAX_SAMPLE_CHARS = 2048
# Rows per upsert statement: well under SQLite's limit of bound parameters.
_CHUNK = 500

Observation = tuple[str, Any, float, float]  # type, sample, first_seen, last_seen


def json_type(value: Any) -> str:
    """The attribute type of a JSON value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    return "object"


def as_json(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "type": row.type,
        "sample": jsonutil.loads(row.sample),
        "description": row.description,
        "defined": bool(row.defined),
        "first_seen": timeutil.iso(row.first_seen),
        "last_seen": timeutil.iso(row.last_seen),
    }


def list_attributes(
    db: Database, profile_id: str, *, prefix: str | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    """Attributes by name; ``prefix`` matches the start of the name, ignoring case."""
    query = select(attributes).where(attributes.c.profile_id == profile_id)
    if prefix:
        pattern = _escape_like(prefix.lower()) + "%"
        query = query.where(func.lower(attributes.c.name).like(pattern, escape="\\"))
    query = query.order_by(attributes.c.name)
    if limit is not None:
        query = query.limit(limit)
    with db.read() as conn:
        rows = conn.execute(query).all()
    return [as_json(r) for r in rows]


def define(
    db: Database, actor: Principal, profile: Profile, body: dict[str, Any]
) -> dict[str, Any]:
    """Define an attribute, or upgrade a discovered one; 409 when it is defined already."""
    name = _check_name(body.get("name"))
    type_ = body.get("type") or "string"
    if type_ not in TYPES:
        raise ValidationFailed.field("type", f"must be one of {', '.join(TYPES)}")
    description = body.get("description") or ""
    if not isinstance(description, str):
        raise ValidationFailed.field("description", "must be a string")
    with db.begin() as conn:
        existing = _by_name(conn, profile.id, name)
        if existing is not None and existing.defined:
            raise Conflict(f"the attribute {name!r} is defined already")
        if existing is None:
            attribute_id = new_id("att")
            conn.execute(
                attributes.insert().values(
                    id=attribute_id,
                    profile_id=profile.id,
                    name=name,
                    type=type_,
                    sample=None,
                    description=description,
                    defined=True,
                    first_seen=None,
                    last_seen=None,
                    created_at=timeutil.now(),
                )
            )
        else:
            attribute_id = existing.id
            conn.execute(
                update(attributes)
                .where(attributes.c.id == attribute_id)
                .values(type=type_, description=description, defined=True)
            )
        audit.record(
            conn,
            actor,
            "attribute.define",
            attribute_id,
            profile_id=profile.id,
            details={"name": name, "type": type_, "was_discovered": existing is not None},
        )
        revision.bump(conn)
        row = _by_name(conn, profile.id, name)
    assert row is not None
    return as_json(row)


def record_observations(
    conn: Connection, profile_id: str, observations: Mapping[str, Observation]
) -> None:
    """Upsert what the pipeline saw: name → (type, sample, first_seen, last_seen).

    One multi-row ``INSERT … ON CONFLICT DO UPDATE`` per 500 names. A defined attribute
    keeps its type; every attribute keeps its earliest first_seen, and the sample of its
    latest last_seen. Rows go in name order so concurrent batches on PostgreSQL lock in
    the same order and never deadlock.
    """
    if not observations:
        return
    now = timeutil.now()
    rows = [
        {
            "id": new_id("att"),
            "profile_id": profile_id,
            "name": name,
            "type": type_,
            "sample": _sample_text(sample),
            "description": "",
            "defined": False,
            "first_seen": first_seen,
            "last_seen": last_seen,
            "created_at": now,
        }
        for name, (type_, sample, first_seen, last_seen) in sorted(observations.items())
        if name and len(name) <= MAX_NAME
    ]
    for start in range(0, len(rows), _CHUNK):
        conn.execute(_upsert(conn.dialect.name, rows[start : start + _CHUNK]))


def _upsert(dialect: str, rows: list[dict[str, Any]]) -> Any:
    table = attributes
    if dialect == "postgresql":
        pg = postgresql.insert(table).values(rows)
        excluded = pg.excluded
        least, greatest = func.least, func.greatest
    elif dialect == "sqlite":
        lite = sqlite.insert(table).values(rows)
        excluded = lite.excluded
        # SQLite's min()/max() with two arguments are the scalar functions.
        least, greatest = func.min, func.max  # type: ignore[assignment]
    else:
        raise ValueError(f"unsupported database dialect {dialect!r}")
    first_seen: ColumnElement[Any] = least(
        func.coalesce(table.c.first_seen, excluded.first_seen), excluded.first_seen
    )
    last_seen: ColumnElement[Any] = greatest(
        func.coalesce(table.c.last_seen, excluded.last_seen), excluded.last_seen
    )
    newer = excluded.last_seen >= func.coalesce(table.c.last_seen, excluded.last_seen)
    changes = {
        "type": case((table.c.defined, table.c.type), else_=excluded.type),
        "sample": case((newer, excluded.sample), else_=table.c.sample),
        "first_seen": first_seen,
        "last_seen": last_seen,
    }
    index = [table.c.profile_id, table.c.name]
    if dialect == "postgresql":
        return pg.on_conflict_do_update(index_elements=index, set_=changes)
    return lite.on_conflict_do_update(index_elements=index, set_=changes)


def _sample_text(sample: Any) -> str:
    try:
        text = jsonutil.dumps(sample)
    except TypeError:  # orjson's error for what JSON cannot hold (e.g. huge integers)
        text = jsonutil.dumps(str(sample))
    if len(text) <= MAX_SAMPLE_CHARS:
        return text
    return jsonutil.dumps(text[: MAX_SAMPLE_CHARS - 1] + "…")


def _by_name(conn: Connection, profile_id: str, name: str) -> Row[Any] | None:
    return conn.execute(
        select(attributes).where(attributes.c.profile_id == profile_id, attributes.c.name == name)
    ).first()


def _check_name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationFailed.field("name", "is required")
    name = value.strip()
    if len(name) > MAX_NAME:
        raise ValidationFailed.field("name", f"must be at most {MAX_NAME} characters")
    if not name.isprintable():
        raise ValidationFailed.field("name", "must not contain control characters")
    return name


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
