"""Routes: audiences of a profile (AudienceStream, SPEC §8), with live member counts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field

from sluice.api.deps import ProfileContext, editor, viewer
from sluice.config import audiences

router = APIRouter(tags=["audiences"])

_EXAMPLE: dict[str, Any] = {
    "name": "Repeat buyers",
    "conditions": [[{"attribute": "purchase_count", "operator": "gte", "value": 2}]],
}


class AudienceCreate(BaseModel):
    """``conditions`` is an OR of AND groups over visitor attribute names (either scope),
    ``badges``, ``audiences`` and ``current_visit``; ``[]`` matches every visitor."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_EXAMPLE]})

    name: str = Field(min_length=1, max_length=200)
    conditions: list[Any] = Field(default_factory=list)


class AudiencePatch(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"name": "Loyal buyers"}]}
    )

    name: str | None = Field(default=None, min_length=1, max_length=200)
    conditions: list[Any] | None = None


@router.get("/profiles/{account}/{profile}/audiences")
def list_audiences(ctx: ProfileContext = Depends(viewer)) -> dict[str, Any]:
    return {"audiences": audiences.list_audiences(ctx.services.db, ctx.profile.id)}


@router.post("/profiles/{account}/{profile}/audiences", status_code=201)
def create_audience(body: AudienceCreate, ctx: ProfileContext = Depends(editor)) -> dict[str, Any]:
    return audiences.create(ctx.services.db, ctx.principal, ctx.profile, body.model_dump())


@router.get("/profiles/{account}/{profile}/audiences/{audience_id}")
def get_audience(audience_id: str, ctx: ProfileContext = Depends(viewer)) -> dict[str, Any]:
    return audiences.get(ctx.services.db, ctx.profile.id, audience_id)


@router.patch("/profiles/{account}/{profile}/audiences/{audience_id}")
def patch_audience(
    audience_id: str, body: AudiencePatch, ctx: ProfileContext = Depends(editor)
) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True)
    return audiences.patch(ctx.services.db, ctx.principal, ctx.profile, audience_id, changes)


@router.delete("/profiles/{account}/{profile}/audiences/{audience_id}", status_code=204)
def delete_audience(audience_id: str, ctx: ProfileContext = Depends(editor)) -> Response:
    audiences.remove(ctx.services.db, ctx.principal, ctx.profile, audience_id)
    return Response(status_code=204)
