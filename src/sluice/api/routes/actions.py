"""Routes: the actions of a connector, their toggles, reassigning and copying mappings."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Response

from sluice.api.deps import ProfileContext, editor, viewer
from sluice.config import actions

router = APIRouter(tags=["actions"])
A = "/profiles/{account}/{profile}/connectors/{connector_id}/actions"

CREATE_EXAMPLE = {
    "name": "Order to webhook",
    "type": "send_custom_request",
    "enabled": True,
    "source": {"event_feed": "all_events", "data_source": None},
    "mappings": [
        {"parameter": "method", "value": "POST"},
        {"parameter": "url", "value": "https://example.com/orders"},
        {"parameter": "body", "template": '{"order": "{{ order_id }}"}'},
    ],
    "consent_categories": [],
}


@router.get(A)
def list_actions(connector_id: str, ctx: ProfileContext = Depends(viewer)) -> dict[str, Any]:
    return {"actions": actions.list_actions(ctx.services, ctx.profile, connector_id)}


@router.post(A, status_code=201)
def create_action(
    connector_id: str,
    body: dict[str, Any] = Body(..., examples=[CREATE_EXAMPLE]),
    ctx: ProfileContext = Depends(editor),
) -> dict[str, Any]:
    return actions.create_action(ctx.services, ctx.principal, ctx.profile, connector_id, body)


@router.post(A + "/bulk")
def bulk_toggle(
    connector_id: str,
    body: dict[str, Any] = Body(..., examples=[{"ids": ["act_1", "act_2"], "enabled": True}]),
    ctx: ProfileContext = Depends(editor),
) -> dict[str, Any]:
    return {
        "actions": actions.bulk_toggle(ctx.services, ctx.principal, ctx.profile, connector_id, body)
    }


@router.get(A + "/{action_id}")
def get_action(
    connector_id: str, action_id: str, ctx: ProfileContext = Depends(viewer)
) -> dict[str, Any]:
    return actions.get_action(ctx.services, ctx.profile, connector_id, action_id)


@router.patch(A + "/{action_id}")
def patch_action(
    connector_id: str,
    action_id: str,
    body: dict[str, Any] = Body(..., examples=[{"enabled": False}]),
    ctx: ProfileContext = Depends(editor),
) -> dict[str, Any]:
    """Replace each field named whole (``mappings`` is the full new list)."""
    return actions.patch_action(
        ctx.services, ctx.principal, ctx.profile, connector_id, action_id, body
    )


@router.delete(A + "/{action_id}", status_code=204)
def delete_action(
    connector_id: str, action_id: str, ctx: ProfileContext = Depends(editor)
) -> Response:
    actions.delete_action(ctx.services, ctx.principal, ctx.profile, connector_id, action_id)
    return Response(status_code=204)


@router.post(A + "/{action_id}/reassign")
def reassign_action(
    connector_id: str,
    action_id: str,
    body: dict[str, Any] = Body(..., examples=[{"connector_id": "con_prod"}]),
    ctx: ProfileContext = Depends(editor),
) -> dict[str, Any]:
    """Move the action with its mappings to another connector of the same type."""
    return actions.reassign(ctx.services, ctx.principal, ctx.profile, connector_id, action_id, body)


@router.post(A + "/{action_id}/copy-mappings")
def copy_mappings(
    connector_id: str,
    action_id: str,
    body: dict[str, Any] = Body(..., examples=[{"to_action_id": "act_2", "mode": "keep"}]),
    ctx: ProfileContext = Depends(editor),
) -> dict[str, Any]:
    """Copy this action's mappings to another; answers the target action."""
    return actions.copy_mappings(
        ctx.services, ctx.principal, ctx.profile, connector_id, action_id, body
    )
