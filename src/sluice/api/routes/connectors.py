"""Routes: connectors (the landing snapshot, CRUD, duplicate, toggles, resume)."""

from __future__ import annotations

import inspect
from typing import Any

from fastapi import APIRouter, Body, Depends, Response
from starlette.concurrency import run_in_threadpool

from sluice.api.deps import ProfileContext, editor, viewer
from sluice.config import connectors

router = APIRouter(tags=["connectors"])
P = "/profiles/{account}/{profile}"

CREATE_EXAMPLE = {
    "type": "webhook",
    "name": "Order webhook (prod)",
    "configuration": {"auth_type": "bearer", "token": "s3cret"},
    "enabled": True,
}


@router.get(P + "/connectors")
def list_connectors(ctx: ProfileContext = Depends(viewer)) -> dict[str, Any]:
    """Every connector with its actions, health and the counters of the last 24 h."""
    return {"connectors": connectors.list_connectors(ctx.services, ctx.profile)}


@router.post(P + "/connectors", status_code=201)
def create_connector(
    body: dict[str, Any] = Body(..., examples=[CREATE_EXAMPLE]),
    ctx: ProfileContext = Depends(editor),
) -> dict[str, Any]:
    return connectors.create_connector(ctx.services, ctx.principal, ctx.profile, body)


@router.post(P + "/connectors/bulk")
def bulk_toggle(
    body: dict[str, Any] = Body(..., examples=[{"ids": ["con_1", "con_2"], "enabled": False}]),
    ctx: ProfileContext = Depends(editor),
) -> dict[str, Any]:
    """Switch many connectors on or off (in their drafts)."""
    return {"connectors": connectors.bulk_toggle(ctx.services, ctx.principal, ctx.profile, body)}


@router.get(P + "/connectors/{connector_id}")
def get_connector(connector_id: str, ctx: ProfileContext = Depends(viewer)) -> dict[str, Any]:
    return connectors.get_connector(ctx.services, ctx.profile, connector_id)


@router.patch(P + "/connectors/{connector_id}")
def patch_connector(
    connector_id: str,
    body: dict[str, Any] = Body(
        ..., examples=[{"name": "Order webhook", "configuration": {"token": None}}]
    ),
    ctx: ProfileContext = Depends(editor),
) -> dict[str, Any]:
    """Merge ``configuration`` key by key: an omitted secret is kept, ``null`` clears it."""
    return connectors.patch_connector(ctx.services, ctx.principal, ctx.profile, connector_id, body)


@router.delete(P + "/connectors/{connector_id}", status_code=204)
def delete_connector(connector_id: str, ctx: ProfileContext = Depends(editor)) -> Response:
    """Takes effect at once, without publishing."""
    connectors.delete_connector(ctx.services, ctx.principal, ctx.profile, connector_id)
    return Response(status_code=204)


@router.post(P + "/connectors/{connector_id}/duplicate", status_code=201)
def duplicate_connector(
    connector_id: str,
    body: dict[str, Any] = Body(..., examples=[{"name": "Order webhook (sandbox)"}]),
    ctx: ProfileContext = Depends(editor),
) -> dict[str, Any]:
    """A copy with its actions, switched off, without secrets."""
    return connectors.duplicate_connector(
        ctx.services, ctx.principal, ctx.profile, connector_id, body
    )


@router.post(P + "/connectors/{connector_id}/resume")
async def resume_connector(
    connector_id: str, ctx: ProfileContext = Depends(editor)
) -> dict[str, Any]:
    """Resume a paused or unhealthy connector at once.

    The pipeline of this process (if it runs the connector) forgets its pause; the shared
    health row is reset too, so every process and the UI see the connector as ok.
    """
    services = ctx.services
    await run_in_threadpool(connectors.require_connector, services, ctx.profile, connector_id)
    resume = getattr(services.pipeline, "resume_connector", None)
    if resume is not None:
        outcome = resume(connector_id)
        if inspect.isawaitable(outcome):
            await outcome
    await run_in_threadpool(
        lambda: connectors.record_resume(
            services, ctx.principal, ctx.profile, connector_id, reset=True
        )
    )
    return await run_in_threadpool(connectors.get_connector, services, ctx.profile, connector_id)
