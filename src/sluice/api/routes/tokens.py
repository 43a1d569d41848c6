"""Routes: API tokens (admin only). A token's secret is shown once, when it is created."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from sluice.api.deps import get_services, require_admin
from sluice.auth import tokens
from sluice.auth.principals import Principal
from sluice.config import audit

router = APIRouter(tags=["tokens"])

Role = Literal["admin", "editor", "viewer"]


class TokenCreate(BaseModel):
    """``profiles`` limits the token to some ``ACCOUNT/PROFILE``s; omitted or null: all."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"name": "CI", "role": "editor", "profiles": ["acme/main"]}]
        },
    )

    name: str = Field(min_length=1, max_length=200)
    role: Role
    profiles: list[str] | None = None


@router.get("/tokens")
def list_tokens(request: Request, _admin: Principal = Depends(require_admin)) -> dict[str, Any]:
    return {"tokens": tokens.list_tokens(get_services(request).db)}


@router.post("/tokens", status_code=201)
def create_token(
    body: TokenCreate, request: Request, actor: Principal = Depends(require_admin)
) -> dict[str, Any]:
    db = get_services(request).db
    created, secret = tokens.create_token(db, body.name, body.role, body.profiles)
    with db.begin() as conn:
        audit.record(
            conn,
            actor,
            "token.create",
            created["id"],
            details={"name": created["name"], "role": body.role, "profiles": body.profiles},
        )
    return {**created, "token": secret}


@router.delete("/tokens/{token_id}", status_code=204)
def revoke_token(
    token_id: str, request: Request, actor: Principal = Depends(require_admin)
) -> Response:
    db = get_services(request).db
    tokens.revoke_token(db, token_id)
    with db.begin() as conn:
        audit.record(conn, actor, "token.revoke", token_id)
    return Response(status_code=204)
