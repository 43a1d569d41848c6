"""Pages: the landing snapshot, the add-connector workflow and the connector page."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from sluice.config import attributes, connectors, publishing
from sluice.connectors.catalog_json import detail_json, summary_json
from sluice.errors import NotFound
from sluice.ui import session, views
from sluice.ui.forms import act, back, checked, ids, posted, redirect
from sluice.ui.render import UIRoute, render

router = APIRouter(route_class=UIRoute)
P = "/p/{account}/{profile}"

BASE_SAMPLE: dict[str, Any] = {
    "tealium_event": "purchase",
    "tealium_visitor_id": "visitor-123",
    "order_id": "A-1001",
    "order_total": 59.9,
    "email": "ada@example.com",
}


def sample_event(ctx: session.PageContext) -> dict[str, Any]:
    """A sample event for previews: the usual keys plus the last value of each discovered
    top-level attribute."""
    event: dict[str, Any] = {
        "tealium_account": ctx.profile.account,
        "tealium_profile": ctx.profile.profile,
        **BASE_SAMPLE,
    }
    for attribute in attributes.list_attributes(ctx.services.db, ctx.profile.id, limit=200):
        name = attribute["name"]
        if "." in name or "[" in name or name in ("event_id", "received_at"):
            continue
        if attribute.get("sample") is not None and len(event) < 40:
            event[name] = attribute["sample"]
    return event


def _decorate(ctx: session.PageContext, item: dict[str, Any], sources: views.Sources) -> None:
    """Add what the templates show to a connector's JSON."""
    ct = ctx.services.registry.get(item["type"])
    item["type_info"] = views.type_of(ctx.services, item["type"])
    item["summary"] = views.config_summary(ct, item["configuration"])
    item["url"] = f"{ctx.base}/connectors/{item['id']}"
    for action in item["actions"]:
        action["type_name"] = views.action_type_name(ct, action["type"])
        action["source_label"] = sources.label(action.get("source"))
        action["consent"] = views.consent_of(ct, action)
        action["url"] = f"{item['url']}/actions/{action['id']}"


@router.get(P + "/")
def landing(request: Request, account: str, profile: str) -> Response:
    ctx = session.profile_context(request, account, profile)
    items = connectors.list_connectors(ctx.services, ctx.profile)
    sources = views.load_sources(ctx.services, ctx.profile)
    for item in items:
        _decorate(ctx, item, sources)
    totals = {
        "success": sum(c["counts"]["success"] for c in items),
        "error": sum(c["counts"]["error"] for c in items),
        "active": sum(1 for c in items if c["enabled"]),
        "unpublished": sum(1 for c in items if c["has_unpublished_changes"]),
    }
    return render(
        request,
        "landing.html",
        ctx,
        nav="connectors",
        groups=views.group_by_type(ctx.services, items),
        totals=totals,
        count=len(items),
        baseline=views.live_baseline(ctx.services, ctx.profile),
    )


@router.get(P)
def landing_without_slash(request: Request, account: str, profile: str) -> Response:
    return landing(request, account, profile)


@router.get(P + "/connectors/new")
def workflow(request: Request, account: str, profile: str, type: str = "") -> Response:
    ctx = session.profile_context(request, account, profile)
    registry = ctx.services.registry
    if not type:
        types = [summary_json(ct) for ct in registry.all()]
        return render(request, "workflow_type.html", ctx, nav="new", types=types)
    ct = registry.get(type)
    if ct is None:
        raise NotFound(f"There is no connector type “{type}” in the catalog.")
    existing = [
        c for c in connectors.list_connectors(ctx.services, ctx.profile) if c["type"] == type
    ]
    return render(
        request,
        "workflow_configure.html",
        ctx,
        nav="new",
        ct=detail_json(ct),
        existing=existing,
        taken=[c["name"] for c in existing],
    )


@router.get(P + "/connectors/{connector_id}")
def connector_page(request: Request, account: str, profile: str, connector_id: str) -> Response:
    ctx = session.profile_context(request, account, profile)
    item = connectors.get_connector(ctx.services, ctx.profile, connector_id)
    sources = views.load_sources(ctx.services, ctx.profile)
    _decorate(ctx, item, sources)
    ct = ctx.services.registry.get(item["type"])
    siblings = [
        c
        for c in connectors.list_connectors(ctx.services, ctx.profile)
        if c["type"] == item["type"] and c["id"] != connector_id
    ]
    copy_targets = [
        {"id": a["id"], "name": a["name"], "connector": c["name"], "type": a["type"]}
        for c in [item, *siblings]
        for a in c["actions"]
    ]
    versions = publishing.list_versions(ctx.services, ctx.profile, connector_id)
    return render(
        request,
        "connector.html",
        ctx,
        nav="connectors",
        c=item,
        ct=detail_json(ct) if ct is not None else None,
        config=views.config_rows(ct, item["configuration"]),
        siblings=siblings,
        copy_targets=copy_targets,
        latest=versions[0] if versions else None,
        sample=sample_event(ctx),
        baseline=views.live_baseline(ctx.services, ctx.profile),
    )


# --- form posts ------------------------------------------------------------------------


@router.post(P + "/connectors/bulk")
async def bulk_connectors(request: Request, account: str, profile: str) -> Response:
    ctx, form = await posted(request, account, profile, "editor")
    chosen = ids(form)
    enabled = checked(form, "enabled")
    if not chosen:
        session.flash(request, "Select at least one connector first.", "error")
        return redirect(back(form, ctx.base + "/"))
    word = "on" if enabled else "off"
    return await act(
        request,
        form,
        lambda: connectors.bulk_toggle(
            ctx.services, ctx.principal, ctx.profile, {"ids": chosen, "enabled": enabled}
        ),
        done=f"{len(chosen)} connector(s) switched {word} in the draft. Publish each to apply.",
        default=ctx.base + "/",
    )


@router.post(P + "/connectors/{connector_id}/toggle")
async def toggle_connector(
    request: Request, account: str, profile: str, connector_id: str
) -> Response:
    ctx, form = await posted(request, account, profile, "editor")
    enabled = checked(form, "enabled")
    return await act(
        request,
        form,
        lambda: connectors.patch_connector(
            ctx.services, ctx.principal, ctx.profile, connector_id, {"enabled": enabled}
        ),
        done=lambda c: f"{c['name']} switched {'on' if enabled else 'off'}; publish to apply.",
        default=f"{ctx.base}/connectors/{connector_id}",
    )


@router.post(P + "/connectors/{connector_id}/delete")
async def delete_connector(
    request: Request, account: str, profile: str, connector_id: str
) -> Response:
    ctx, form = await posted(request, account, profile, "editor")

    def work() -> str:
        name = str(connectors.get_connector(ctx.services, ctx.profile, connector_id)["name"])
        connectors.delete_connector(ctx.services, ctx.principal, ctx.profile, connector_id)
        return name

    return await act(
        request,
        form,
        work,
        done=lambda name: f"{name} deleted. It no longer receives events.",
        default=ctx.base + "/",
        success_url=lambda _r: ctx.base + "/",
    )


@router.post(P + "/connectors/{connector_id}/duplicate")
async def duplicate_connector(
    request: Request, account: str, profile: str, connector_id: str
) -> Response:
    ctx, form = await posted(request, account, profile, "editor")
    name = str(form.get("name") or "").strip()
    return await act(
        request,
        form,
        lambda: connectors.duplicate_connector(
            ctx.services, ctx.principal, ctx.profile, connector_id, {"name": name}
        ),
        done=lambda c: f"Created {c['name']}, switched off and without secrets: fill them in.",
        default=f"{ctx.base}/connectors/{connector_id}",
        success_url=lambda c: f"{ctx.base}/connectors/{c['id']}",
    )
