"""Routes: users of the web interface (admin only)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from sluice.api.deps import get_services, require_admin
from sluice.auth import users
from sluice.auth.principals import Principal
from sluice.config import audit
from sluice.errors import Conflict

router = APIRouter(tags=["users"])

Role = Literal["admin", "editor", "viewer"]


class UserCreate(BaseModel):
    """Without ``password`` one is generated and answered once as ``"password"``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"email": "ana@example.com", "role": "editor"}]},
    )

    email: str = Field(min_length=3, max_length=320)
    role: Role
    password: str | None = Field(default=None, min_length=8)
    profiles: list[str] | None = None


class UserPatch(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"role": "viewer", "disabled": False}]}
    )

    role: Role | None = None
    profiles: list[str] | None = None
    disabled: bool | None = None
    password: str | None = Field(default=None, min_length=8)


@router.get("/users")
def list_users(request: Request, _admin: Principal = Depends(require_admin)) -> dict[str, Any]:
    return {"users": users.list_users(get_services(request).db)}


@router.post("/users", status_code=201)
def create_user(
    body: UserCreate, request: Request, actor: Principal = Depends(require_admin)
) -> dict[str, Any]:
    db = get_services(request).db
    created, generated = users.create_user(db, body.email, body.role, body.password, body.profiles)
    with db.begin() as conn:
        audit.record(
            conn,
            actor,
            "user.create",
            created["id"],
            details={"email": created["email"], "role": body.role, "profiles": body.profiles},
        )
    return {**created, "password": generated} if generated else created


@router.patch("/users/{user_id}")
def patch_user(
    user_id: str, body: UserPatch, request: Request, actor: Principal = Depends(require_admin)
) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True)
    for key in ("role", "disabled", "password"):
        # Only ``profiles`` may be null (every profile); for the others null means "unchanged".
        if key in changes and changes[key] is None:
            del changes[key]
    demoting = changes.get("disabled") or changes.get("role", "admin") != "admin"
    if actor.kind == "user" and actor.id == user_id and demoting:
        raise Conflict("you cannot disable yourself or take away your own admin role")
    db = get_services(request).db
    updated = users.update_user(db, user_id, changes)
    logged = {k: ("********" if k == "password" else v) for k, v in changes.items()}
    with db.begin() as conn:
        audit.record(conn, actor, "user.update", user_id, details={"changes": logged})
    return updated


@router.delete("/users/{user_id}", status_code=204)
def delete_user(
    user_id: str, request: Request, actor: Principal = Depends(require_admin)
) -> Response:
    if actor.kind == "user" and actor.id == user_id:
        raise Conflict("you cannot delete yourself")
    db = get_services(request).db
    email = users.get_user(db, user_id)["email"]
    users.delete_user(db, user_id)
    with db.begin() as conn:
        audit.record(conn, actor, "user.delete", user_id, details={"email": email})
    return Response(status_code=204)
