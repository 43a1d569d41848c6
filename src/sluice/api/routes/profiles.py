"""Routes: profiles and their settings."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Request, Response

from sluice.api.deps import ProfileContext, admin, get_principal, get_services, viewer
from sluice.config import profiles
from sluice.errors import ValidationFailed

router = APIRouter(tags=["profiles"])


@router.get("/profiles")
def list_profiles(request: Request) -> dict[str, Any]:
    principal = get_principal(request)
    found = profiles.list_all(get_services(request).db, principal)
    return {"profiles": [p.as_json() for p in found]}


@router.post("/profiles", status_code=201)
def create_profile(
    request: Request,
    body: dict[str, Any] = Body(
        ..., examples=[{"account": "acme", "profile": "main"}], description="account and profile"
    ),
) -> dict[str, Any]:
    principal = get_principal(request)
    principal.require("admin")
    account = body.get("account")
    if not account:
        raise ValidationFailed.field("account", "is required")
    settings = {k: v for k, v in body.items() if k not in ("account", "profile")}
    created = profiles.create(
        get_services(request).db, principal, account, body.get("profile") or "main", **settings
    )
    return created.as_json()


@router.get("/profiles/{account}/{profile}")
def get_profile(ctx: ProfileContext = Depends(viewer)) -> dict[str, Any]:
    return ctx.profile.as_json()


@router.patch("/profiles/{account}/{profile}")
def patch_profile(
    body: dict[str, Any] = Body(..., examples=[{"consent": {"enforcement": True}}]),
    ctx: ProfileContext = Depends(admin),
) -> dict[str, Any]:
    return profiles.patch(ctx.services.db, ctx.principal, ctx.profile, body).as_json()


@router.delete("/profiles/{account}/{profile}", status_code=204)
def delete_profile(ctx: ProfileContext = Depends(admin)) -> Response:
    profiles.remove(ctx.services.db, ctx.principal, ctx.profile)
    return Response(status_code=204)
