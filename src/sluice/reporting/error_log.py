"""The error log (SPEC §5's dead-letter records): list, CSV, groups, replay."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, func, select, update

from sluice import jsonutil, timeutil
from sluice.engine.compiled import CompiledConfig
from sluice.errors import BadRequest
from sluice.reporting.counters import CounterDelta
from sluice.reporting.reports import csv_line
from sluice.storage import notify
from sluice.storage.tables import deliveries, error_records, events

CSV_HEADER = (
    "timestamp,account,profile,connector_id,connector_name,action_id,action_name,event_id,"
    "attempts,category,status_code,message,request,response"
)


def record_json(row: Any, account: str, profile: str) -> dict[str, Any]:
    return {
        "id": row.id,
        "timestamp": timeutil.iso(row.timestamp),
        "account": account,
        "profile": profile,
        "connector_id": row.connector_id,
        "connector_name": row.connector_name,
        "action_id": row.action_id,
        "action_name": row.action_name,
        "event_id": row.event_id,
        "attempts": row.attempts,
        "category": row.category,
        "status_code": row.status_code,
        "message": row.message,
        "request": jsonutil.loads(row.request),
        "response": jsonutil.loads(row.response),
        "replayed_at": timeutil.iso(row.replayed_at),
    }


def _where(
    query: Any,
    profile_id: str,
    connector: str | None,
    action: str | None,
    start: float | None,
    end: float | None,
) -> Any:
    query = query.where(error_records.c.profile_id == profile_id)
    if connector:
        query = query.where(error_records.c.connector_id == connector)
    if action:
        query = query.where(error_records.c.action_id == action)
    if start is not None:
        query = query.where(error_records.c.timestamp >= start)
    if end is not None:
        query = query.where(error_records.c.timestamp < end)
    return query


def parse_cursor(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        return int(cursor)
    except ValueError as exc:
        raise BadRequest("invalid cursor") from exc


def page(
    conn: Connection,
    profile_id: str,
    *,
    connector: str | None,
    action: str | None,
    start: float | None,
    end: float | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[Any], str | None]:
    query = _where(select(error_records), profile_id, connector, action, start, end)
    before = parse_cursor(cursor)
    if before is not None:
        query = query.where(error_records.c.seq < before)
    rows = conn.execute(query.order_by(error_records.c.seq.desc()).limit(limit + 1)).all()
    next_cursor = str(rows[limit - 1].seq) if len(rows) > limit else None
    return list(rows[:limit]), next_cursor


def csv_stream(
    db_read: Any,
    profile_id: str,
    account: str,
    profile: str,
    *,
    connector: str | None,
    action: str | None,
    start: float | None,
    end: float | None,
    chunk: int = 1000,
) -> Iterator[str]:
    """Every matching record, newest first, read in keyset pages: constant memory."""
    yield CSV_HEADER + "\r\n"
    before: int | None = None
    while True:
        query = _where(select(error_records), profile_id, connector, action, start, end)
        if before is not None:
            query = query.where(error_records.c.seq < before)
        with db_read() as conn:
            rows = conn.execute(query.order_by(error_records.c.seq.desc()).limit(chunk)).all()
        if not rows:
            return
        lines = []
        for row in rows:
            lines.append(
                csv_line(
                    [
                        timeutil.iso(row.timestamp) or "",
                        account,
                        profile,
                        row.connector_id,
                        row.connector_name,
                        row.action_id,
                        row.action_name,
                        row.event_id,
                        str(row.attempts),
                        row.category,
                        "" if row.status_code is None else str(row.status_code),
                        row.message,
                        row.request or "",
                        row.response or "",
                    ]
                )
            )
        yield "".join(lines)
        before = rows[-1].seq
        if len(rows) < chunk:
            return


def groups(
    conn: Connection,
    profile_id: str,
    *,
    connector: str | None,
    action: str | None,
    start: float | None,
    end: float | None,
    account: str,
    profile: str,
) -> list[dict[str, Any]]:
    query = select(
        error_records.c.category,
        error_records.c.message,
        func.count().label("count"),
        func.max(error_records.c.seq).label("sample_seq"),
    )
    query = _where(query, profile_id, connector, action, start, end)
    query = query.group_by(error_records.c.category, error_records.c.message)
    query = query.order_by(func.count().desc()).limit(200)
    found = conn.execute(query).all()
    samples = {}
    seqs = [row.sample_seq for row in found]
    if seqs:
        rows = conn.execute(select(error_records).where(error_records.c.seq.in_(seqs))).all()
        samples = {row.seq: record_json(row, account, profile) for row in rows}
    return [
        {
            "category": row.category,
            "message": row.message,
            "count": int(row[2]),
            "sample": samples.get(row.sample_seq),
        }
        for row in found
    ]


def replay(
    conn: Connection,
    config: CompiledConfig,
    profile_id: str,
    *,
    connector: str | None,
    action: str | None,
    start: float | None,
    end: float | None,
) -> tuple[int, set[str]]:
    """Queue each matching record not yet replayed once more, with today's published action."""
    query = _where(select(error_records), profile_id, connector, action, start, end)
    query = query.where(error_records.c.replayed_at.is_(None)).order_by(error_records.c.seq)
    now = time.time()
    counts = CounterDelta()
    replayed = 0
    touched: set[str] = set()
    for row in conn.execute(query).all():
        if row.action_id not in config.actions or not row.event:
            continue
        event_seq = conn.execute(select(events.c.seq).where(events.c.id == row.event_id)).scalar()
        if event_seq is None:
            payload = jsonutil.loads(row.event)
            visitor = payload.get("tealium_visitor_id")
            event_seq = conn.execute(
                events.insert().values(
                    id=row.event_id,
                    profile_id=profile_id,
                    received_at=now,
                    payload=row.event,
                    visitor_id=str(visitor) if visitor else None,
                    routed=True,
                )
            ).inserted_primary_key[0]  # type: ignore[index]
        conn.execute(
            deliveries.insert().values(
                event_seq=event_seq,
                event_id=row.event_id,
                profile_id=profile_id,
                connector_id=row.connector_id,
                action_id=row.action_id,
                attempts=0,
                next_at=now,
                lease_until=None,
                created_at=now,
                data=row.data,
            )
        )
        conn.execute(
            update(error_records).where(error_records.c.seq == row.seq).values(replayed_at=now)
        )
        counts.add(row.action_id, row.connector_id, profile_id, now, "triggered")
        notify.later(conn, notify.DELIVERIES)  # wakes the workers of other processes
        touched.add(row.connector_id)
        replayed += 1
    counts.write(conn)
    return replayed, touched
