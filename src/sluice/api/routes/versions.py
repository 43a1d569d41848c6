"""Routes: publishing a connector, its versions, diffs and rollback."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path
from fastapi.responses import JSONResponse

from sluice.api.deps import ProfileContext, editor, viewer
from sluice.config import publishing

router = APIRouter(tags=["versions"])
C = "/profiles/{account}/{profile}/connectors/{connector_id}"
# Version numbers count from 1; the bound keeps a huge one out of SQL (a 422, not a 500).
VersionNumber = Annotated[int, Path(ge=1, le=publishing.MAX_VERSION)]


@router.post(
    C + "/publish",
    status_code=201,
    responses={200: {"description": "Nothing unpublished: the current version"}},
)
def publish(
    connector_id: str,
    body: dict[str, Any] | None = Body(None, examples=[{"note": "Add the order SMS"}]),
    ctx: ProfileContext = Depends(editor),
) -> JSONResponse:
    """Make the draft live as version N; with nothing unpublished, 200 and no new version."""
    version, created = publishing.publish(
        ctx.services, ctx.principal, ctx.profile, connector_id, body
    )
    return JSONResponse({"version": version}, status_code=201 if created else 200)


@router.get(C + "/versions")
def list_versions(connector_id: str, ctx: ProfileContext = Depends(viewer)) -> dict[str, Any]:
    """Every version, newest first."""
    return {"versions": publishing.list_versions(ctx.services, ctx.profile, connector_id)}


@router.get(C + "/versions/{version}")
def get_version(
    connector_id: str, version: VersionNumber, ctx: ProfileContext = Depends(viewer)
) -> dict[str, Any]:
    """One version with its snapshot (the connector and its actions, no secrets)."""
    return publishing.get_version(ctx.services, ctx.profile, connector_id, version)


@router.get(C + "/versions/{a}/diff/{b}")
def diff_versions(
    connector_id: str, a: VersionNumber, b: VersionNumber, ctx: ProfileContext = Depends(viewer)
) -> dict[str, Any]:
    """What changed from version ``a`` to version ``b``, actions matched by id."""
    return publishing.diff_versions(ctx.services, ctx.profile, connector_id, a, b)


@router.post(C + "/rollback", status_code=201)
def rollback(
    connector_id: str,
    body: dict[str, Any] = Body(..., examples=[{"version": 3}]),
    ctx: ProfileContext = Depends(editor),
) -> dict[str, Any]:
    """Publish version n's content as a new version, keeping the current secrets."""
    version = publishing.rollback(ctx.services, ctx.principal, ctx.profile, connector_id, body)
    return {"version": version}
