"""Routes: event attributes of a profile, discovered and defined."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from sluice.api.deps import ProfileContext, editor, viewer
from sluice.config import attributes

router = APIRouter(tags=["attributes"])


class AttributeDefine(BaseModel):
    """Define an attribute; a discovered one of that name becomes defined (201 either way)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"name": "order_total", "type": "number", "description": "incl. tax"}]
        },
    )

    name: str = Field(min_length=1, max_length=attributes.MAX_NAME)
    type: Literal["string", "number", "boolean", "array", "object", "null"] = "string"
    description: str = ""


@router.get("/profiles/{account}/{profile}/attributes")
def list_attributes(
    q: str | None = Query(None, description="only names starting with this (any case)"),
    limit: int | None = Query(None, ge=1, le=10_000, description="at most this many"),
    ctx: ProfileContext = Depends(viewer),
) -> dict[str, Any]:
    found = attributes.list_attributes(ctx.services.db, ctx.profile.id, prefix=q, limit=limit)
    return {"attributes": found}


@router.post("/profiles/{account}/{profile}/attributes", status_code=201)
def define_attribute(
    body: AttributeDefine, ctx: ProfileContext = Depends(editor)
) -> dict[str, Any]:
    return attributes.define(ctx.services.db, ctx.principal, ctx.profile, body.model_dump())
