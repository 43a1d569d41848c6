"""Routes: the audit log of a profile."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from sluice.api.deps import ProfileContext, viewer
from sluice.api.params import parse_range
from sluice.config import audit

router = APIRouter(tags=["audit"])


@router.get("/profiles/{account}/{profile}/audit")
def list_audit_entries(
    from_: str | None = Query(None, alias="from", description="ISO 8601, inclusive"),
    to: str | None = Query(None, description="ISO 8601, exclusive"),
    cursor: str | None = Query(None, description="next_cursor of the previous page"),
    limit: int = Query(100, ge=1, le=1000),
    ctx: ProfileContext = Depends(viewer),
) -> dict[str, Any]:
    """Newest first: who changed, published, rolled back or toggled what, and when."""
    start, end = parse_range(from_, to)
    entries, next_cursor = audit.list_entries(
        ctx.services.db, ctx.profile.id, start=start, end=end, cursor=cursor, limit=limit
    )
    return {"entries": entries, "next_cursor": next_cursor}
