"""Counter reports: buckets over time, totals, and the CSV export (SPEC §4 reports)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, func, select

from sluice import timeutil
from sluice.reporting.counters import COUNTERS
from sluice.storage.tables import actions, connectors, counters

BUCKET_MINUTES = {"minute": 1, "hour": 60, "day": 1440}
CSV_HEADER = (
    "start,connector_id,connector_name,action_id,action_name,"
    "triggered,success,error,retried,filtered_consent,dropped"
)


def _filtered(query: Any, profile_id: str, connector: str | None, action: str | None) -> Any:
    query = query.where(counters.c.profile_id == profile_id)
    if connector:
        query = query.where(counters.c.connector_id == connector)
    if action:
        query = query.where(counters.c.action_id == action)
    return query


def report(
    conn: Connection,
    profile_id: str,
    *,
    start: float,
    end: float,
    bucket: str,
    connector: str | None = None,
    action: str | None = None,
) -> dict[str, Any]:
    width = BUCKET_MINUTES[bucket]
    first, last = int(start // 60), int((end - 1e-9) // 60)
    key = (counters.c.minute // width).label("bucket")
    query = select(key, *(func.sum(counters.c[c]).label(c) for c in COUNTERS)).where(
        counters.c.minute >= first, counters.c.minute <= last
    )
    query = _filtered(query, profile_id, connector, action).group_by(key)
    found = {int(row.bucket): row for row in conn.execute(query)}
    buckets = []
    totals = dict.fromkeys(COUNTERS, 0)
    for index in range(first // width, last // width + 1):
        row = found.get(index)
        values = {c: int(getattr(row, c) or 0) if row is not None else 0 for c in COUNTERS}
        for c in COUNTERS:
            totals[c] += values[c]
        buckets.append({"start": timeutil.iso(index * width * 60), **values})
    return {
        "from": timeutil.iso(start),
        "to": timeutil.iso(end),
        "bucket": bucket,
        "buckets": buckets,
        "totals": totals,
    }


def totals_by_action(conn: Connection, profile_id: str, since: float) -> dict[str, dict[str, int]]:
    """Counters per action since ``since`` (the landing page's last 24 h)."""
    query = (
        select(counters.c.action_id, *(func.sum(counters.c[c]).label(c) for c in COUNTERS))
        .where(counters.c.profile_id == profile_id, counters.c.minute >= int(since // 60))
        .group_by(counters.c.action_id)
    )
    return {
        row.action_id: {c: int(getattr(row, c) or 0) for c in COUNTERS}
        for row in conn.execute(query)
    }


def csv_rows(
    conn: Connection,
    profile_id: str,
    *,
    start: float,
    end: float,
    bucket: str,
    connector: str | None = None,
    action: str | None = None,
) -> Iterator[str]:
    """The metrics export: one line per bucket and action that has counts."""
    width = BUCKET_MINUTES[bucket]
    key = (counters.c.minute // width).label("bucket")
    query = select(
        key,
        counters.c.connector_id,
        counters.c.action_id,
        *(func.sum(counters.c[c]).label(c) for c in COUNTERS),
    ).where(counters.c.minute >= int(start // 60), counters.c.minute <= int((end - 1e-9) // 60))
    query = (
        _filtered(query, profile_id, connector, action)
        .group_by(key, counters.c.connector_id, counters.c.action_id)
        .order_by(key, counters.c.connector_id, counters.c.action_id)
    )
    rows = conn.execute(query).all()
    connector_names = dict(
        conn.execute(
            select(connectors.c.id, connectors.c.name).where(connectors.c.profile_id == profile_id)
        ).all()
    )
    action_names = dict(
        conn.execute(
            select(actions.c.id, actions.c.name).where(actions.c.profile_id == profile_id)
        ).all()
    )
    yield CSV_HEADER + "\r\n"
    for row in rows:
        values = [
            timeutil.iso(int(row.bucket) * width * 60) or "",
            row.connector_id,
            connector_names.get(row.connector_id, ""),
            row.action_id,
            action_names.get(row.action_id, ""),
            *(str(int(getattr(row, c) or 0)) for c in COUNTERS),
        ]
        yield csv_line(values)


def csv_line(values: list[str]) -> str:
    out = []
    for value in values:
        if any(ch in value for ch in ',"\r\n') or value.startswith((" ", "=", "+", "-", "@")):
            value = '"' + value.replace('"', '""') + '"'
        out.append(value)
    return ",".join(out) + "\r\n"
