"""Routes: event feeds of a profile (the built-in "All Events" included)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field

from sluice.api.deps import ProfileContext, editor, viewer
from sluice.config import event_feeds

router = APIRouter(tags=["event feeds"])

_EXAMPLE: dict[str, Any] = {
    "name": "Purchases",
    "conditions": [[{"attribute": "tealium_event", "operator": "equals", "value": "purchase"}]],
}


class EventFeedCreate(BaseModel):
    """``conditions`` is an OR of AND groups; ``[]`` matches every event."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_EXAMPLE]})

    name: str = Field(min_length=1, max_length=200)
    conditions: list[Any] = Field(default_factory=list)


class EventFeedPatch(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"name": "Completed purchases"}]}
    )

    name: str | None = Field(default=None, min_length=1, max_length=200)
    conditions: list[Any] | None = None


@router.get("/profiles/{account}/{profile}/event-feeds")
def list_event_feeds(ctx: ProfileContext = Depends(viewer)) -> dict[str, Any]:
    return {"event_feeds": event_feeds.list_feeds(ctx.services.db, ctx.profile.id)}


@router.post("/profiles/{account}/{profile}/event-feeds", status_code=201)
def create_event_feed(
    body: EventFeedCreate, ctx: ProfileContext = Depends(editor)
) -> dict[str, Any]:
    return event_feeds.create(ctx.services.db, ctx.principal, ctx.profile, body.model_dump())


@router.get("/profiles/{account}/{profile}/event-feeds/{feed_id}")
def get_event_feed(feed_id: str, ctx: ProfileContext = Depends(viewer)) -> dict[str, Any]:
    return event_feeds.get(ctx.services.db, ctx.profile.id, feed_id)


@router.patch("/profiles/{account}/{profile}/event-feeds/{feed_id}")
def patch_event_feed(
    feed_id: str, body: EventFeedPatch, ctx: ProfileContext = Depends(editor)
) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True)
    return event_feeds.patch(ctx.services.db, ctx.principal, ctx.profile, feed_id, changes)


@router.delete("/profiles/{account}/{profile}/event-feeds/{feed_id}", status_code=204)
def delete_event_feed(feed_id: str, ctx: ProfileContext = Depends(editor)) -> Response:
    event_feeds.remove(ctx.services.db, ctx.principal, ctx.profile, feed_id)
    return Response(status_code=204)
