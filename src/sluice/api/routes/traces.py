"""Routes: traces, step by step."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from sqlalchemy import select

from sluice import jsonutil, timeutil
from sluice.api.deps import ProfileContext, viewer
from sluice.errors import NotFound
from sluice.storage.tables import traces

router = APIRouter(tags=["traces"])


@router.get("/profiles/{account}/{profile}/traces/{trace_id}")
def get_trace(trace_id: str, ctx: ProfileContext = Depends(viewer)) -> dict[str, Any]:
    with ctx.services.db.read() as conn:
        rows = conn.execute(
            select(traces)
            .where(traces.c.profile_id == ctx.profile.id, traces.c.trace_id == trace_id)
            .order_by(traces.c.seq)
            .limit(5000)
        ).all()
    if not rows:
        raise NotFound(f"no trace {trace_id}")
    return {
        "trace_id": trace_id,
        "steps": [
            {
                "at": timeutil.iso(r.at),
                "step": r.step,
                "event_id": r.event_id,
                "data": jsonutil.loads(r.data),
            }
            for r in rows
        ],
    }
