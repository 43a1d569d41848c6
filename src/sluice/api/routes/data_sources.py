"""Routes: data sources of a profile."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field

from sluice.api.deps import ProfileContext, editor, viewer
from sluice.config import data_sources

router = APIRouter(tags=["data sources"])

Platform = Literal["web", "mobile", "http_api", "webhook", "file"]


class DataSourceCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "Web shop", "platform": "web"}]},
    )

    name: str = Field(min_length=1, max_length=200)
    platform: Platform
    description: str = ""


class DataSourcePatch(BaseModel):
    """Any of the fields; the generated ``key`` never changes."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"description": "iOS and Android"}]}
    )

    name: str | None = Field(default=None, min_length=1, max_length=200)
    platform: Platform | None = None
    description: str | None = None


@router.get("/profiles/{account}/{profile}/data-sources")
def list_data_sources(ctx: ProfileContext = Depends(viewer)) -> dict[str, Any]:
    return {"data_sources": data_sources.list_sources(ctx.services.db, ctx.profile.id)}


@router.post("/profiles/{account}/{profile}/data-sources", status_code=201)
def create_data_source(
    body: DataSourceCreate, ctx: ProfileContext = Depends(editor)
) -> dict[str, Any]:
    return data_sources.create(ctx.services.db, ctx.principal, ctx.profile, body.model_dump())


@router.get("/profiles/{account}/{profile}/data-sources/{source_id}")
def get_data_source(source_id: str, ctx: ProfileContext = Depends(viewer)) -> dict[str, Any]:
    return data_sources.get(ctx.services.db, ctx.profile.id, source_id)


@router.patch("/profiles/{account}/{profile}/data-sources/{source_id}")
def patch_data_source(
    source_id: str, body: DataSourcePatch, ctx: ProfileContext = Depends(editor)
) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True)
    return data_sources.patch(ctx.services.db, ctx.principal, ctx.profile, source_id, changes)


@router.delete("/profiles/{account}/{profile}/data-sources/{source_id}", status_code=204)
def delete_data_source(source_id: str, ctx: ProfileContext = Depends(editor)) -> Response:
    data_sources.remove(ctx.services.db, ctx.principal, ctx.profile, source_id)
    return Response(status_code=204)
