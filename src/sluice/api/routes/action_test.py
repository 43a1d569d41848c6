"""Route: test an action on a sample event."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends

from sluice.api.deps import ProfileContext, editor
from sluice.delivery.trial import try_action
from sluice.errors import ValidationFailed

router = APIRouter(tags=["actions"])


@router.post("/profiles/{account}/{profile}/connectors/{connector_id}/actions/{action_id}/test")
async def run_action_test(
    connector_id: str,
    action_id: str,
    body: dict[str, Any] = Body(
        ..., examples=[{"event": {"tealium_event": "purchase", "order_id": "A1"}, "send": False}]
    ),
    ctx: ProfileContext = Depends(editor),
) -> dict[str, Any]:
    """Render the draft action for ``event``: the exact requests, secrets masked; with
    ``send: true`` they are sent and the vendor's responses shown."""
    unknown = set(body) - {"event", "send"}
    if unknown:
        raise ValidationFailed.field(sorted(unknown)[0], "unknown field")
    send = body.get("send", False)
    if not isinstance(send, bool):
        raise ValidationFailed.field("send", "must be a boolean")
    return await try_action(
        ctx.services, ctx.profile, connector_id, action_id, body.get("event", {}), send
    )
