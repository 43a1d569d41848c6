"""Pages: the marketplace (the catalog of connector types) and each type's summary."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from sluice.api.deps import get_services
from sluice.config import connectors
from sluice.connectors.catalog_json import detail_json, summary_json
from sluice.errors import NotFound
from sluice.ui import session
from sluice.ui.render import UIRoute, render

router = APIRouter(route_class=UIRoute)

SORTS = {"relevance": "Best match", "name": "Name (A–Z)", "actions": "Most actions"}
DATA_TYPES = {"": "All data types", "event": "Event data", "visitor": "Visitor data"}


@router.get("/catalog")
def catalog_page(
    request: Request, q: str = "", data_type: str = "", sort: str = "relevance"
) -> Response:
    session.require_user(request)
    services = get_services(request)
    found = services.registry.search(q or None, data_type if data_type in DATA_TYPES else None)
    types = [summary_json(ct) for ct in found]
    if sort == "name" or (sort == "relevance" and not q.strip()):
        types.sort(key=lambda t: t["name"].casefold())
    elif sort == "actions":
        types.sort(key=lambda t: (-t["action_count"], t["name"].casefold()))
    return render(
        request,
        "catalog.html",
        nav="catalog",
        types=types,
        total=len(services.registry),
        q=q,
        data_type=data_type,
        sort=sort if sort in SORTS else "relevance",
        sorts=SORTS,
        data_types=DATA_TYPES,
    )


@router.get("/catalog/{type_id}")
def catalog_type_page(request: Request, type_id: str) -> Response:
    principal = session.require_user(request)
    services = get_services(request)
    ct = services.registry.get(type_id)
    if ct is None:
        raise NotFound(f"There is no connector type “{type_id}” in the catalog.")
    detail = detail_json(ct)
    for action in detail["actions"]:
        action_type = ct.action(action["id"])
        action["user_consent"] = bool(action_type and action_type.user_consent)
        action["required"] = [p["title"] for p in action["parameters"] if p["required"]]
    existing: list[dict[str, Any]] = []
    found = session.remembered_profile(request, principal)
    if found is not None:
        existing = [c for c in connectors.list_connectors(services, found) if c["type"] == type_id]
    secrets = [f["title"] for f in detail["configuration"] if f["secret"]]
    return render(
        request,
        "catalog_type.html",
        nav="catalog",
        ct=detail,
        existing=existing,
        secret_titles=secrets,
    )
