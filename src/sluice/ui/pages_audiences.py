"""Pages: AudienceStream (audiences, visitor attributes, visitor lookup).

HOOK: AudienceStream is built separately. Until its API module
(``sluice.api.routes.audiences``) is installed these pages say so, the navigation shows
them as not available, and action sources offer event feeds only. When it lands,
:func:`list_audiences` feeds the action editor's audience picker and these routes render
its objects.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from sluice.config.profiles import Profile
from sluice.services import Services
from sluice.ui import session
from sluice.ui.render import UIRoute, audiences_available, render

router = APIRouter(route_class=UIRoute)
P = "/p/{account}/{profile}"


def list_audiences(services: Services, profile: Profile) -> list[dict[str, Any]]:
    """The profile's audiences as ``{"id", "name"}`` (empty until AudienceStream is installed)."""
    if not audiences_available():
        return []
    return []


def _page(request: Request, account: str, profile: str, section: str) -> Response:
    ctx = session.profile_context(request, account, profile)
    return render(
        request,
        "audiences.html",
        ctx,
        nav="audiences",
        section=section,
        available=audiences_available(),
    )


@router.get(P + "/audiences")
def audiences_page(request: Request, account: str, profile: str) -> Response:
    return _page(request, account, profile, "audiences")


@router.get(P + "/audiences/{audience_id}")
def audience_page(request: Request, account: str, profile: str, audience_id: str) -> Response:
    return _page(request, account, profile, "audiences")


@router.get(P + "/visitor-attributes")
def visitor_attributes_page(request: Request, account: str, profile: str) -> Response:
    return _page(request, account, profile, "visitor_attributes")


@router.get(P + "/visitors")
def visitor_lookup_page(request: Request, account: str, profile: str) -> Response:
    return _page(request, account, profile, "visitors")
