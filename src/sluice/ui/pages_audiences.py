"""Pages: AudienceStream (audiences, visitor attributes, visitor lookup).

HOOK: AudienceStream is built separately; these pages are thin and talk to its management
API (SPEC §4, §8: ``P/audiences``, ``P/visitor-attributes``, ``P/visitors/{id}``) from the
browser. Without that API the navigation hides them
(:func:`sluice.ui.render.audiences_available`) and the pages say AudienceStream is not
available; :func:`list_audiences` feeds the action editor's audience picker.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from sluice.config.profiles import Profile
from sluice.engine.conditions import OPERATORS
from sluice.services import Services
from sluice.ui import session
from sluice.ui.pages_profile import OPERATOR_LABELS
from sluice.ui.render import UIRoute, audiences_available, render

router = APIRouter(route_class=UIRoute)
P = "/p/{account}/{profile}"
TITLES = {
    "audiences": "Audiences",
    "visitor_attributes": "Visitor attributes",
    "visitors": "Visitor lookup",
}


def list_audiences(services: Services, profile: Profile) -> list[dict[str, Any]]:
    """The profile's audiences (``{"id", "name", ...}``), or none without AudienceStream."""
    if not audiences_available():
        return []
    # Imported here: AudienceStream is optional to the rest of the interface.
    from sluice.config import audiences

    found: list[dict[str, Any]] = audiences.list_audiences(services.db, profile.id)
    return found


def _page(request: Request, account: str, profile: str, section: str, **values: Any) -> Response:
    ctx = session.profile_context(request, account, profile)
    return render(
        request,
        "audiences.html",
        ctx,
        nav=section,
        section=section,
        title=TITLES[section],
        available=audiences_available(),
        **values,
    )


@router.get(P + "/audiences")
def audiences_page(request: Request, account: str, profile: str) -> Response:
    return _page(request, account, profile, "audiences")


def _audience_editor(
    request: Request, account: str, profile: str, audience_id: str | None
) -> Response:
    ctx = session.profile_context(request, account, profile)
    api = f"{ctx.api}/audiences" + (f"/{audience_id}" if audience_id else "")
    editor = {
        "api": api,
        "method": "PATCH" if audience_id else "POST",
        "feed": None,
        "load_url": api if audience_id else None,
        "operators": [{"id": op, "label": OPERATOR_LABELS.get(op, op)} for op in OPERATORS],
        "attributes_api": f"{ctx.api}/visitor-attributes",
        "list_url": f"{ctx.base}/audiences",
        "noun": "Audience",
    }
    return render(
        request,
        "feed_editor.html",
        ctx,
        nav="audiences",
        feed=None,
        editor=editor,
        used=[],
        noun="audience",
        list_title="Audiences",
        list_url=f"{ctx.base}/audiences",
    )


@router.get(P + "/audiences/new")
def new_audience(request: Request, account: str, profile: str) -> Response:
    return _audience_editor(request, account, profile, None)


@router.get(P + "/audiences/{audience_id}")
def audience_page(request: Request, account: str, profile: str, audience_id: str) -> Response:
    return _audience_editor(request, account, profile, audience_id)


@router.get(P + "/visitor-attributes")
def visitor_attributes_page(request: Request, account: str, profile: str) -> Response:
    return _page(request, account, profile, "visitor_attributes")


@router.get(P + "/visitors")
def visitor_lookup_page(
    request: Request, account: str, profile: str, visitor_id: str = ""
) -> Response:
    return _page(request, account, profile, "visitors", visitor_id=visitor_id.strip())
