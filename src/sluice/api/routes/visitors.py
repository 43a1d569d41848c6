"""Routes: one visitor's profile (SPEC §8), and its erasure with everything stored of it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response

from sluice.api.deps import ProfileContext, editor, viewer
from sluice.audiences import lookup

router = APIRouter(tags=["visitors"])


@router.get("/profiles/{account}/{profile}/visitors/{visitor_id:path}")
def get_visitor(visitor_id: str, ctx: ProfileContext = Depends(viewer)) -> dict[str, Any]:
    """The visitor profile: attributes, badges, audiences, current visit; plus
    ``"over_size_limit": true`` when an event was refused for the size cap."""
    return lookup.get_visitor(ctx.services.db, ctx.profile.id, visitor_id)


@router.delete("/profiles/{account}/{profile}/visitors/{visitor_id:path}", status_code=204)
def erase_visitor(visitor_id: str, ctx: ProfileContext = Depends(editor)) -> Response:
    """Erase the visitor's profile, stored events (with pending deliveries), traces and
    error records. Idempotent: erasing an unknown visitor is also a 204."""
    lookup.erase(ctx.services.db, ctx.principal, ctx.profile.id, visitor_id)
    return Response(status_code=204)
