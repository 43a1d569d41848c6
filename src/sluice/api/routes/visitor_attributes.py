"""Routes: visitor attributes of a profile (AudienceStream enrichments, SPEC §8)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field

from sluice.api.deps import ProfileContext, editor, viewer
from sluice.config import visitor_attributes

router = APIRouter(tags=["visitor attributes"])

_EXAMPLE: dict[str, Any] = {
    "name": "purchase_count",
    "scope": "visitor",
    "type": "number",
    "rules": [
        {
            "when": [[{"attribute": "tealium_event", "operator": "equals", "value": "purchase"}]],
            "operation": "increment",
            "value": 1,
        }
    ],
}


class VisitorAttributeCreate(BaseModel):
    """``scope``: visitor or visit; ``type``: number, string, boolean, badge, date, set or
    tally; each rule's ``operation`` must suit the type (docs/audiences.md)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_EXAMPLE]})

    name: str = Field(min_length=1, max_length=100)
    scope: str
    type: str
    rules: list[Any] = Field(default_factory=list)


class VisitorAttributePatch(BaseModel):
    """Only ``rules`` can change; ``name``, ``scope`` and ``type`` are fixed."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    scope: str | None = None
    type: str | None = None
    rules: list[Any] | None = None


@router.get("/profiles/{account}/{profile}/visitor-attributes")
def list_visitor_attributes(ctx: ProfileContext = Depends(viewer)) -> dict[str, Any]:
    rows = visitor_attributes.list_attributes(ctx.services.db, ctx.profile.id)
    return {"visitor_attributes": rows}


@router.post("/profiles/{account}/{profile}/visitor-attributes", status_code=201)
def create_visitor_attribute(
    body: VisitorAttributeCreate, ctx: ProfileContext = Depends(editor)
) -> dict[str, Any]:
    return visitor_attributes.create(ctx.services.db, ctx.principal, ctx.profile, body.model_dump())


@router.get("/profiles/{account}/{profile}/visitor-attributes/{attribute_id}")
def get_visitor_attribute(
    attribute_id: str, ctx: ProfileContext = Depends(viewer)
) -> dict[str, Any]:
    return visitor_attributes.get(ctx.services.db, ctx.profile.id, attribute_id)


@router.patch("/profiles/{account}/{profile}/visitor-attributes/{attribute_id}")
def patch_visitor_attribute(
    attribute_id: str, body: VisitorAttributePatch, ctx: ProfileContext = Depends(editor)
) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True)
    return visitor_attributes.patch(
        ctx.services.db, ctx.principal, ctx.profile, attribute_id, changes
    )


@router.delete("/profiles/{account}/{profile}/visitor-attributes/{attribute_id}", status_code=204)
def delete_visitor_attribute(attribute_id: str, ctx: ProfileContext = Depends(editor)) -> Response:
    visitor_attributes.remove(ctx.services.db, ctx.principal, ctx.profile, attribute_id)
    return Response(status_code=204)
