"""Reading and erasing stored visitors: the visitor lookup, erasure and member counts."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, or_, select, text

from sluice.audiences.model import VisitorProfile
from sluice.audiences.visits import JOB_KIND
from sluice.auth.principals import Principal
from sluice.config import audit
from sluice.errors import NotFound
from sluice.storage.db import Database
from sluice.storage.tables import (
    audiences,
    deliveries,
    error_records,
    events,
    scheduled_jobs,
    traces,
    visitors,
)

# Audience ids are the keys of each profile document's "audiences" object.
_COUNTS_SQLITE = text(
    "SELECT m.key, count(*) FROM visitors, json_each(visitors.data, '$.audiences') AS m"
    " WHERE visitors.profile_id = :profile_id GROUP BY m.key"
)
_COUNTS_POSTGRES = text(
    "SELECT m.key, count(*) FROM visitors,"
    " jsonb_object_keys(visitors.data::jsonb -> 'audiences') AS m(key)"
    " WHERE visitors.profile_id = :profile_id GROUP BY m.key"
)


def member_counts(conn: Connection, profile_id: str) -> dict[str, int]:
    """Members per audience id, counted over the stored profiles (a scan of the profile's
    visitors: live, and fine to millions of visitors)."""
    query = _COUNTS_POSTGRES if conn.dialect.name == "postgresql" else _COUNTS_SQLITE
    return {str(k): int(n) for k, n in conn.execute(query, {"profile_id": profile_id})}


def get_visitor(db: Database, profile_id: str, visitor_id: str) -> dict[str, Any]:
    """The stored profile as the API shows it (SPEC §8); NotFound when there is none."""
    with db.read() as conn:
        data = conn.execute(
            select(visitors.c.data).where(
                visitors.c.profile_id == profile_id, visitors.c.visitor_id == visitor_id
            )
        ).scalar()
        if data is None:
            raise NotFound(f"no visitor profile {visitor_id!r}")
        names = dict(
            conn.execute(
                select(audiences.c.id, audiences.c.name).where(audiences.c.profile_id == profile_id)
            ).all()
        )
    return VisitorProfile.loads(data).shown({str(k): str(v) for k, v in names.items()})


def erase_visitor(conn: Connection, profile_id: str, visitor_id: str) -> dict[str, int]:
    """Erase the visitor: profile, timers, stored events with their pending deliveries,
    traces and error records. Returns how many rows of each went."""
    their_seqs = select(events.c.seq).where(
        events.c.profile_id == profile_id, events.c.visitor_id == visitor_id
    )
    their_ids = select(events.c.id).where(
        events.c.profile_id == profile_id, events.c.visitor_id == visitor_id
    )
    removed = {
        "profile": conn.execute(
            delete(visitors).where(
                visitors.c.profile_id == profile_id, visitors.c.visitor_id == visitor_id
            )
        ).rowcount,
        "timers": conn.execute(
            delete(scheduled_jobs).where(
                scheduled_jobs.c.profile_id == profile_id,
                scheduled_jobs.c.kind == JOB_KIND,
                scheduled_jobs.c.key == visitor_id,
            )
        ).rowcount,
        "deliveries": conn.execute(
            delete(deliveries).where(deliveries.c.event_seq.in_(their_seqs))
        ).rowcount,
        # Delivery steps of a trace carry the event's id, not always the visitor's.
        "traces": conn.execute(
            delete(traces).where(
                traces.c.profile_id == profile_id,
                or_(traces.c.visitor_id == visitor_id, traces.c.event_id.in_(their_ids)),
            )
        ).rowcount,
        "errors": conn.execute(
            delete(error_records).where(
                error_records.c.profile_id == profile_id,
                or_(
                    error_records.c.visitor_id == visitor_id,
                    error_records.c.event_id.in_(their_ids),
                ),
            )
        ).rowcount,
    }
    removed["events"] = conn.execute(
        delete(events).where(events.c.profile_id == profile_id, events.c.visitor_id == visitor_id)
    ).rowcount
    return removed


def erase(db: Database, actor: Principal, profile_id: str, visitor_id: str) -> dict[str, int]:
    """``DELETE P/visitors/{visitor_id}``: erase, and say so in the audit log."""
    with db.begin() as conn:
        removed = erase_visitor(conn, profile_id, visitor_id)
        audit.record(
            conn, actor, "visitor.erase", visitor_id, profile_id=profile_id, details=removed
        )
    return removed
