"""Pages: the action editor (source, action type, mappings, completeness, previews) and the
form posts on actions (toggles, bulk toggles, delete, reassign, copy mappings)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sluice.config import actions, connectors, data_sources, event_feeds
from sluice.connectors.catalog_json import detail_json
from sluice.connectors.definition import CONSENT_CATEGORIES
from sluice.engine.templates import TemplateEngine, TemplateError
from sluice.engine.transforms import TRANSFORM_NAMES
from sluice.errors import NotFound, ValidationFailed
from sluice.ui import pages_audiences, session
from sluice.ui.forms import act, back, checked, ids, posted, redirect
from sluice.ui.pages_connectors import sample_event
from sluice.ui.render import UIRoute, audiences_available, render

router = APIRouter(route_class=UIRoute)
C = "/p/{account}/{profile}/connectors/{connector_id}"
PREVIEW_ENGINE = TemplateEngine()


def _editor(
    request: Request,
    account: str,
    profile: str,
    connector_id: str,
    action_id: str | None,
    wizard: bool,
) -> Response:
    ctx = session.profile_context(request, account, profile)
    connector = connectors.get_connector(ctx.services, ctx.profile, connector_id)
    ct = ctx.services.registry.get(connector["type"])
    if ct is None:
        raise NotFound(f"The connector type {connector['type']} is not installed on this server.")
    detail = detail_json(ct)
    for entry in detail["actions"]:
        action_type = ct.action(entry["id"])
        entry["user_consent"] = bool(action_type and action_type.user_consent)
    action = None
    if action_id is not None:
        action = actions.get_action(ctx.services, ctx.profile, connector_id, action_id)
    connector_url = f"{ctx.base}/connectors/{connector_id}"
    editor = {
        "mode": "edit" if action else "create",
        "api": f"{ctx.api}/connectors/{connector_id}/actions"
        + (f"/{action_id}" if action_id else ""),
        "test_api": f"{ctx.api}/connectors/{connector_id}/actions/{action_id}/test"
        if action_id
        else None,
        "preview_url": f"{ctx.base}/preview-template",
        "attributes_api": f"{ctx.api}/attributes",
        "connector_url": connector_url,
        "editor_base": f"{connector_url}/actions",
        "wizard": wizard,
        "type": detail,
        "action": action,
        "can_edit": ctx.principal.has_role("editor"),
        "transforms": list(TRANSFORM_NAMES),
        "audiences_api": f"{ctx.api}/audiences" if audiences_available() else None,
    }
    return render(
        request,
        "action_editor.html",
        ctx,
        nav="new" if wizard else "connectors",
        c=connector,
        action=action,
        type_detail=detail,
        editor=editor,
        feeds=event_feeds.list_feeds(ctx.services.db, ctx.profile.id),
        data_sources=data_sources.list_sources(ctx.services.db, ctx.profile.id),
        audiences=pages_audiences.list_audiences(ctx.services, ctx.profile),
        consent_categories=CONSENT_CATEGORIES,
        sample=sample_event(ctx),
        wizard=wizard,
    )


@router.get(C + "/actions/new")
def new_action(
    request: Request, account: str, profile: str, connector_id: str, wizard: int = 0
) -> Response:
    return _editor(request, account, profile, connector_id, None, bool(wizard))


@router.get(C + "/actions/{action_id}")
def edit_action(
    request: Request, account: str, profile: str, connector_id: str, action_id: str
) -> Response:
    return _editor(request, account, profile, connector_id, action_id, False)


@router.post("/p/{account}/{profile}/preview-template")
async def preview_template(request: Request, account: str, profile: str) -> Response:
    """Render one template on a sample event, unsaved: the editor's live preview."""
    await run_in_threadpool(session.profile_context, request, account, profile)
    session.check_header_csrf(request)
    body: Any = await request.json()
    if not isinstance(body, dict):
        raise ValidationFailed.field("body", "must be a JSON object")
    template, event = body.get("template"), body.get("event")
    if not isinstance(template, str):
        raise ValidationFailed.field("template", "must be text")
    if not isinstance(event, dict):
        return JSONResponse({"output": None, "error": "The sample event must be a JSON object."})
    try:
        output = PREVIEW_ENGINE.compile(template).render(event)
    except TemplateError as exc:
        return JSONResponse({"output": None, "error": str(exc)})
    return JSONResponse({"output": output, "error": None})


# --- form posts ------------------------------------------------------------------------


@router.post(C + "/actions/bulk")
async def bulk_actions(request: Request, account: str, profile: str, connector_id: str) -> Response:
    ctx, form = await posted(request, account, profile, "editor")
    default = f"{ctx.base}/connectors/{connector_id}"
    chosen = ids(form)
    if not chosen:
        session.flash(request, "Select at least one action first.", "error")
        return redirect(back(form, default))
    enabled = checked(form, "enabled")
    return await act(
        request,
        form,
        lambda: actions.bulk_toggle(
            ctx.services,
            ctx.principal,
            ctx.profile,
            connector_id,
            {"ids": chosen, "enabled": enabled},
        ),
        done=f"{len(chosen)} action(s) switched {'on' if enabled else 'off'}; publish to apply.",
        default=default,
    )


@router.post(C + "/actions/{action_id}/toggle")
async def toggle_action(
    request: Request, account: str, profile: str, connector_id: str, action_id: str
) -> Response:
    ctx, form = await posted(request, account, profile, "editor")
    enabled = checked(form, "enabled")
    return await act(
        request,
        form,
        lambda: actions.patch_action(
            ctx.services, ctx.principal, ctx.profile, connector_id, action_id, {"enabled": enabled}
        ),
        done=lambda a: f"{a['name']} switched {'on' if enabled else 'off'}; publish to apply.",
        default=f"{ctx.base}/connectors/{connector_id}",
    )


@router.post(C + "/actions/{action_id}/delete")
async def delete_action(
    request: Request, account: str, profile: str, connector_id: str, action_id: str
) -> Response:
    ctx, form = await posted(request, account, profile, "editor")

    def work() -> str:
        found = actions.get_action(ctx.services, ctx.profile, connector_id, action_id)
        actions.delete_action(ctx.services, ctx.principal, ctx.profile, connector_id, action_id)
        return str(found["name"])

    return await act(
        request,
        form,
        work,
        done=lambda name: f"{name} deleted from the draft; publish to apply.",
        default=f"{ctx.base}/connectors/{connector_id}",
    )


@router.post(C + "/actions/{action_id}/reassign")
async def reassign_action(
    request: Request, account: str, profile: str, connector_id: str, action_id: str
) -> Response:
    ctx, form = await posted(request, account, profile, "editor")
    target = str(form.get("connector_id") or "")
    return await act(
        request,
        form,
        lambda: actions.reassign(
            ctx.services,
            ctx.principal,
            ctx.profile,
            connector_id,
            action_id,
            {"connector_id": target},
        ),
        done=lambda a: f"{a['name']} moved with its mappings; publish both connectors to apply.",
        default=f"{ctx.base}/connectors/{connector_id}",
        success_url=lambda _a: f"{ctx.base}/connectors/{target}",
    )


@router.post(C + "/actions/{action_id}/copy-mappings")
async def copy_mappings(
    request: Request, account: str, profile: str, connector_id: str, action_id: str
) -> Response:
    ctx, form = await posted(request, account, profile, "editor")
    body = {
        "to_action_id": str(form.get("to_action_id") or ""),
        "mode": "overwrite" if form.get("mode") == "overwrite" else "keep",
    }
    return await act(
        request,
        form,
        lambda: actions.copy_mappings(
            ctx.services, ctx.principal, ctx.profile, connector_id, action_id, body
        ),
        done=lambda a: f"Mappings copied to {a['name']}.",
        default=f"{ctx.base}/connectors/{connector_id}",
    )
