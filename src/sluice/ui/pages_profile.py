"""Pages: the profile's event feeds (with the condition builder), data sources, attributes
and settings."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from sluice.config import attributes, connectors, data_sources, event_feeds, profiles
from sluice.config.data_sources import PLATFORMS
from sluice.config.event_feeds import ALL_EVENTS_ID
from sluice.engine.conditions import OPERATORS
from sluice.ui import session
from sluice.ui.forms import act, checked, posted
from sluice.ui.render import UIRoute, render

router = APIRouter(route_class=UIRoute)
P = "/p/{account}/{profile}"

OPERATOR_LABELS = {
    "equals": "equals",
    "not_equals": "does not equal",
    "contains": "contains",
    "not_contains": "does not contain",
    "starts_with": "starts with",
    "ends_with": "ends with",
    "regex": "matches regex",
    "exists": "is defined",
    "not_exists": "is not defined",
    "gt": "is greater than",
    "gte": "is greater than or equal to",
    "lt": "is less than",
    "lte": "is less than or equal to",
    "in": "is one of",
    "is_true": "is true",
    "is_false": "is false",
}
PLATFORM_LABELS = {
    "web": "Web",
    "mobile": "Mobile app",
    "http_api": "HTTP API",
    "webhook": "Webhook",
    "file": "File import",
}


def _feed_usage(ctx: session.PageContext) -> dict[str, list[str]]:
    """Which actions use each feed, by feed id."""
    used: dict[str, list[str]] = {}
    for item in connectors.list_connectors(ctx.services, ctx.profile):
        for action in item["actions"]:
            feed = (action.get("source") or {}).get("event_feed")
            if feed:
                used.setdefault(str(feed), []).append(f"{item['name']} › {action['name']}")
    return used


@router.get(P + "/event-feeds")
def feeds_page(request: Request, account: str, profile: str) -> Response:
    ctx = session.profile_context(request, account, profile)
    return render(
        request,
        "feeds.html",
        ctx,
        nav="feeds",
        feeds=event_feeds.list_feeds(ctx.services.db, ctx.profile.id),
        used=_feed_usage(ctx),
        operators=OPERATOR_LABELS,
    )


def _feed_editor(ctx: session.PageContext, feed: dict[str, Any] | None) -> Response:
    editor = {
        "api": f"{ctx.api}/event-feeds" + (f"/{feed['id']}" if feed else ""),
        "method": "PATCH" if feed else "POST",
        "feed": feed,
        "operators": [{"id": op, "label": OPERATOR_LABELS.get(op, op)} for op in OPERATORS],
        "attributes_api": f"{ctx.api}/attributes",
        "list_url": f"{ctx.base}/event-feeds",
    }
    return render(
        ctx.request,
        "feed_editor.html",
        ctx,
        nav="feeds",
        feed=feed,
        editor=editor,
        used=_feed_usage(ctx).get(feed["id"], []) if feed else [],
    )


@router.get(P + "/event-feeds/new")
def new_feed(request: Request, account: str, profile: str) -> Response:
    ctx = session.profile_context(request, account, profile)
    return _feed_editor(ctx, None)


@router.get(P + "/event-feeds/{feed_id}")
def edit_feed(request: Request, account: str, profile: str, feed_id: str) -> Response:
    ctx = session.profile_context(request, account, profile)
    return _feed_editor(ctx, event_feeds.get(ctx.services.db, ctx.profile.id, feed_id))


@router.post(P + "/event-feeds/{feed_id}/delete")
async def delete_feed(request: Request, account: str, profile: str, feed_id: str) -> Response:
    ctx, form = await posted(request, account, profile, "editor")

    def work() -> str:
        name = str(event_feeds.get(ctx.services.db, ctx.profile.id, feed_id)["name"])
        event_feeds.remove(ctx.services.db, ctx.principal, ctx.profile, feed_id)
        return name

    return await act(
        request,
        form,
        work,
        done=lambda name: f"Event feed {name} deleted.",
        default=f"{ctx.base}/event-feeds",
        success_url=lambda _n: f"{ctx.base}/event-feeds",
    )


@router.get(P + "/data-sources")
def sources_page(request: Request, account: str, profile: str) -> Response:
    ctx = session.profile_context(request, account, profile)
    return render(
        request,
        "data_sources.html",
        ctx,
        nav="sources",
        sources=data_sources.list_sources(ctx.services.db, ctx.profile.id),
        platforms=PLATFORM_LABELS,
        collect_url=str(request.base_url).rstrip("/") + "/event",
        all_events=ALL_EVENTS_ID,
    )


@router.post(P + "/data-sources")
async def create_source(request: Request, account: str, profile: str) -> Response:
    ctx, form = await posted(request, account, profile, "editor")
    platform = str(form.get("platform") or "")
    body = {
        "name": str(form.get("name") or ""),
        "platform": platform if platform in PLATFORMS else platform or None,
        "description": str(form.get("description") or ""),
    }
    return await act(
        request,
        form,
        lambda: data_sources.create(ctx.services.db, ctx.principal, ctx.profile, body),
        done=lambda d: f"Data source {d['name']} created; its key is {d['key']}.",
        default=f"{ctx.base}/data-sources",
    )


@router.post(P + "/data-sources/{source_id}/delete")
async def delete_source(request: Request, account: str, profile: str, source_id: str) -> Response:
    ctx, form = await posted(request, account, profile, "editor")

    def work() -> str:
        name = str(data_sources.get(ctx.services.db, ctx.profile.id, source_id)["name"])
        data_sources.remove(ctx.services.db, ctx.principal, ctx.profile, source_id)
        return name

    return await act(
        request,
        form,
        work,
        done=lambda name: f"Data source {name} deleted.",
        default=f"{ctx.base}/data-sources",
    )


@router.get(P + "/attributes")
def attributes_page(request: Request, account: str, profile: str, q: str = "") -> Response:
    ctx = session.profile_context(request, account, profile)
    found = attributes.list_attributes(ctx.services.db, ctx.profile.id, prefix=q or None, limit=500)
    return render(request, "attributes.html", ctx, nav="attributes", attributes=found, q=q)


@router.get(P + "/settings")
def settings_page(request: Request, account: str, profile: str) -> Response:
    ctx = session.profile_context(request, account, profile)
    return render(request, "settings.html", ctx, nav="settings", settings=ctx.profile.settings)


@router.post(P + "/settings")
async def save_settings(request: Request, account: str, profile: str) -> Response:
    ctx, form = await posted(request, account, profile, "admin")
    rate = str(form.get("rate_limit_per_second") or "").strip()
    timeout = str(form.get("visit_timeout_minutes") or "").strip()
    changes: dict[str, Any] = {
        "consent": {
            "enforcement": checked(form, "consent_enforcement"),
            "missing": "deny" if form.get("consent_missing") == "deny" else "allow",
        },
        "collect_token_required": checked(form, "collect_token_required"),
        "rate_limit_per_second": _number(rate) if rate else None,
        "visit_timeout_minutes": _number(timeout) if timeout else 30,
    }
    return await act(
        request,
        form,
        lambda: profiles.patch(ctx.services.db, ctx.principal, ctx.profile, changes),
        done="Settings saved. They take effect within 2 seconds.",
        default=f"{ctx.base}/settings",
    )


def _number(text: str) -> Any:
    """A whole or decimal number from a form field; anything else is passed on as text, so
    the settings check names the field."""
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if value.is_integer() else value
