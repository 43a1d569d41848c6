"""Routes: the catalog of connector types (any authenticated caller)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query

from sluice.api.deps import get_principal, get_services
from sluice.auth.principals import Principal
from sluice.connectors.catalog_json import detail_json, summary_json
from sluice.errors import NotFound
from sluice.services import Services

router = APIRouter(tags=["catalog"])


@router.get("/catalog")
def list_types(
    q: str | None = Query(None, description="Matches names, ids, descriptions and actions"),
    data_type: Literal["event", "visitor"] | None = Query(None),
    _principal: Principal = Depends(get_principal),
    services: Services = Depends(get_services),
) -> dict[str, Any]:
    return {"types": [summary_json(ct) for ct in services.registry.search(q, data_type)]}


@router.get("/catalog/{type_id}")
def get_type(
    type_id: str,
    _principal: Principal = Depends(get_principal),
    services: Services = Depends(get_services),
) -> dict[str, Any]:
    ct = services.registry.get(type_id)
    if ct is None:
        raise NotFound(f"no connector type {type_id!r} in the catalog")
    return detail_json(ct)
