"""Routes: reports, the metrics CSV and the live stream of counts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import select

from sluice.api.deps import ProfileContext, viewer
from sluice.api.params import parse_range
from sluice.errors import BadRequest, ValidationFailed
from sluice.reporting import reports
from sluice.reporting.counters import COUNTERS
from sluice.storage.tables import counters

router = APIRouter(tags=["reports"])

LIVE_POLL_SECONDS = 1.0


def _window(start: str | None, end: str | None, bucket: str) -> tuple[float, float]:
    if bucket not in reports.BUCKET_MINUTES:
        raise ValidationFailed.field("bucket", "must be minute, hour or day")
    parsed_start, parsed_end = parse_range(start, end)
    finish = parsed_end if parsed_end is not None else time.time()
    begin = parsed_start if parsed_start is not None else finish - 86400
    if begin >= finish:
        raise BadRequest(
            "from must be before to", [{"field": "from", "message": "must be before to"}]
        )
    if (finish - begin) / 60 / reports.BUCKET_MINUTES[bucket] > 50_000:
        raise ValidationFailed.field("bucket", "too many buckets for this range: use a wider one")
    return begin, finish


@router.get("/profiles/{account}/{profile}/reports")
def get_report(
    ctx: ProfileContext = Depends(viewer),
    connector: str | None = None,
    action: str | None = None,
    start: str | None = Query(None, alias="from"),
    end: str | None = Query(None, alias="to"),
    bucket: str = "hour",
) -> dict[str, Any]:
    begin, finish = _window(start, end, bucket)
    with ctx.services.db.read() as conn:
        return reports.report(
            conn,
            ctx.profile.id,
            start=begin,
            end=finish,
            bucket=bucket,
            connector=connector,
            action=action,
        )


@router.get("/profiles/{account}/{profile}/reports.csv")
def get_report_csv(
    ctx: ProfileContext = Depends(viewer),
    connector: str | None = None,
    action: str | None = None,
    start: str | None = Query(None, alias="from"),
    end: str | None = Query(None, alias="to"),
    bucket: str = "hour",
) -> StreamingResponse:
    begin, finish = _window(start, end, bucket)
    with ctx.services.db.read() as conn:
        lines = list(
            reports.csv_rows(
                conn,
                ctx.profile.id,
                start=begin,
                end=finish,
                bucket=bucket,
                connector=connector,
                action=action,
            )
        )
    name = f"sluice-metrics-{ctx.profile.account}-{ctx.profile.profile}.csv"
    return StreamingResponse(
        iter(lines),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/profiles/{account}/{profile}/reports/live")
async def live(request: Request, ctx: ProfileContext = Depends(viewer)) -> StreamingResponse:
    """Server-Sent Events: ``event: counts`` for each action whose minute changed."""
    db = ctx.services.db
    profile_id = ctx.profile.id

    def read(since_minute: int) -> list[Any]:
        with db.read() as conn:
            return list(
                conn.execute(
                    select(counters).where(
                        counters.c.profile_id == profile_id, counters.c.minute >= since_minute
                    )
                ).all()
            )

    async def stream() -> AsyncIterator[bytes]:
        last: dict[tuple[str, int], tuple[int, ...]] = {}
        first = True
        quiet = 0.0
        yield b"retry: 2000\n\n"
        while not await request.is_disconnected():
            minute = int(time.time() // 60)
            rows = await asyncio.to_thread(read, minute - 1)
            sent = False
            for row in rows:
                values = tuple(int(getattr(row, c)) for c in COUNTERS)
                key = (row.action_id, int(row.minute))
                if last.get(key) == values:
                    continue
                last[key] = values
                if first and row.minute < minute:
                    continue
                data = {
                    "connector_id": row.connector_id,
                    "action_id": row.action_id,
                    "minute": f"{_iso_minute(int(row.minute))}",
                    **dict(zip(COUNTERS, values, strict=True)),
                }
                yield b"event: counts\ndata: " + orjson.dumps(data) + b"\n\n"
                sent = True
            first = False
            for key in [k for k in last if k[1] < minute - 1]:
                del last[key]
            quiet = 0.0 if sent else quiet + LIVE_POLL_SECONDS
            if quiet >= 15:
                quiet = 0.0
                yield b": keep-alive\n\n"
            await asyncio.sleep(LIVE_POLL_SECONDS)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _iso_minute(minute: int) -> str:
    from sluice.timeutil import iso

    return iso(minute * 60) or ""
