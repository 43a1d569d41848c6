"""Routes: the error log, its CSV, error groups and replay."""

from __future__ import annotations

import functools
from typing import Any

from fastapi import APIRouter, Body, Depends, Query
from fastapi.responses import JSONResponse, StreamingResponse

from sluice.api.deps import ProfileContext, editor, viewer
from sluice.api.params import parse_range, parse_time
from sluice.errors import ValidationFailed
from sluice.reporting import error_log

router = APIRouter(tags=["errors"])


@router.get("/profiles/{account}/{profile}/errors")
def list_errors(
    ctx: ProfileContext = Depends(viewer),
    connector: str | None = None,
    action: str | None = None,
    start: str | None = Query(None, alias="from"),
    end: str | None = Query(None, alias="to"),
    limit: int = 100,
    cursor: str | None = None,
) -> dict[str, Any]:
    if not 1 <= limit <= 1000:
        raise ValidationFailed.field("limit", "must be between 1 and 1000")
    begin, finish = parse_range(start, end)
    with ctx.services.db.read() as conn:
        rows, next_cursor = error_log.page(
            conn,
            ctx.profile.id,
            connector=connector,
            action=action,
            start=begin,
            end=finish,
            limit=limit,
            cursor=cursor,
        )
    account, profile = ctx.profile.account, ctx.profile.profile
    return {
        "errors": [error_log.record_json(r, account, profile) for r in rows],
        "next_cursor": next_cursor,
    }


@router.get("/profiles/{account}/{profile}/errors.csv")
def errors_csv(
    ctx: ProfileContext = Depends(viewer),
    connector: str | None = None,
    action: str | None = None,
    start: str | None = Query(None, alias="from"),
    end: str | None = Query(None, alias="to"),
) -> StreamingResponse:
    begin, finish = parse_range(start, end)
    stream = error_log.csv_stream(
        ctx.services.db.read,
        ctx.profile.id,
        ctx.profile.account,
        ctx.profile.profile,
        connector=connector,
        action=action,
        start=begin,
        end=finish,
    )
    name = f"sluice-errors-{ctx.profile.account}-{ctx.profile.profile}.csv"
    return StreamingResponse(
        stream,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/profiles/{account}/{profile}/errors/groups")
def error_groups(
    ctx: ProfileContext = Depends(viewer),
    connector: str | None = None,
    action: str | None = None,
    start: str | None = Query(None, alias="from"),
    end: str | None = Query(None, alias="to"),
) -> dict[str, Any]:
    begin, finish = parse_range(start, end)
    with ctx.services.db.read() as conn:
        found = error_log.groups(
            conn,
            ctx.profile.id,
            connector=connector,
            action=action,
            start=begin,
            end=finish,
            account=ctx.profile.account,
            profile=ctx.profile.profile,
        )
    return {"groups": found}


@router.post("/profiles/{account}/{profile}/errors/replay", status_code=202)
async def replay_errors(
    body: dict[str, Any] = Body(
        default_factory=dict,
        examples=[{"connector": "con_…", "action": None, "from": None, "to": None}],
    ),
    ctx: ProfileContext = Depends(editor),
) -> JSONResponse:
    unknown = set(body) - {"connector", "action", "from", "to"}
    if unknown:
        raise ValidationFailed.field(sorted(unknown)[0], "unknown field")
    for name in ("connector", "action", "from", "to"):
        if not isinstance(body.get(name), str | None):
            what = "an id" if name in ("connector", "action") else "an ISO 8601 timestamp"
            raise ValidationFailed.field(name, f"must be {what} (a string) or null")
    begin = parse_time(body.get("from"), "from")
    finish = parse_time(body.get("to"), "to")
    pipeline = ctx.services.pipeline
    if pipeline is None:
        raise ValidationFailed.field("connector", "the pipeline is not running in this process")
    replay = functools.partial(
        error_log.replay,
        config=pipeline.config,
        profile_id=ctx.profile.id,
        connector=body.get("connector"),
        action=body.get("action"),
        start=begin,
        end=finish,
    )
    count, touched = await pipeline.writer.run(replay)
    if pipeline.engine is not None:
        pipeline.engine.wake(touched)
    return JSONResponse({"replayed": count}, status_code=202)
