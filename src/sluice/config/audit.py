"""The audit log: who changed, published, rolled back or toggled what, and when."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from sluice import jsonutil, timeutil
from sluice.auth.principals import Principal
from sluice.errors import BadRequest
from sluice.storage.db import Database
from sluice.storage.tables import audit_log


def record(
    conn: Connection,
    actor: Principal,
    action: str,
    obj: str,
    *,
    profile_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    conn.execute(
        audit_log.insert().values(
            profile_id=profile_id,
            at=timeutil.now(),
            actor=actor.name,
            action=action,
            object=obj,
            details=jsonutil.dumps(details or {}),
        )
    )


def list_entries(
    db: Database,
    profile_id: str,
    *,
    start: float | None,
    end: float | None,
    cursor: str | None,
    limit: int = 100,
) -> tuple[list[dict[str, Any]], str | None]:
    query = select(audit_log).where(audit_log.c.profile_id == profile_id)
    if start is not None:
        query = query.where(audit_log.c.at >= start)
    if end is not None:
        query = query.where(audit_log.c.at < end)
    if cursor:
        try:
            before = int(cursor)
        except ValueError as exc:
            raise BadRequest("invalid cursor") from exc
        query = query.where(audit_log.c.seq < before)
    query = query.order_by(audit_log.c.seq.desc()).limit(limit + 1)
    with db.read() as conn:
        rows = conn.execute(query).all()
    next_cursor = str(rows[limit - 1].seq) if len(rows) > limit else None
    entries = [
        {
            "at": timeutil.iso(r.at),
            "actor": r.actor,
            "action": r.action,
            "object": r.object,
            "details": jsonutil.loads(r.details),
        }
        for r in rows[:limit]
    ]
    return entries, next_cursor
