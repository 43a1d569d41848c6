"""Routes: spotlight search across the catalog and one profile's objects."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from sluice.api.deps import get_principal, get_services
from sluice.auth.principals import Principal
from sluice.config import profiles, search
from sluice.errors import ValidationFailed
from sluice.services import Services

router = APIRouter(tags=["search"])


@router.get("/search")
def spotlight(
    q: str = Query("", max_length=200, description="What the user typed so far"),
    account: str | None = Query(None),
    profile: str | None = Query(None),
    principal: Principal = Depends(get_principal),
    services: Services = Depends(get_services),
) -> dict[str, Any]:
    """Connector types, and with ``account``/``profile`` its connectors, actions, event
    feeds and audiences: prefix matches first, then fuzzy; at most 20."""
    found = None
    if account or profile:
        if not account:
            raise ValidationFailed.field("account", "is required with profile")
        name = profile or "main"
        principal.require_profile(account, name, "viewer")
        found = profiles.get(services.db, account, name)
    cache = search.cache_of(services.extras)
    return {"results": search.search(services.db, services.registry, q, found, cache=cache)}
