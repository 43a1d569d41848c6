"""Pages: publishing, the version history, comparing two versions, rolling back."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from sluice.config import connectors, publishing
from sluice.ui import session, views
from sluice.ui.forms import act, posted, redirect
from sluice.ui.render import UIRoute, render

router = APIRouter(route_class=UIRoute)
C = "/p/{account}/{profile}/connectors/{connector_id}"


def _connector(ctx: session.PageContext, connector_id: str) -> dict[str, Any]:
    item = connectors.get_connector(ctx.services, ctx.profile, connector_id)
    item["type_info"] = views.type_of(ctx.services, item["type"])
    item["url"] = f"{ctx.base}/connectors/{connector_id}"
    return item


@router.get(C + "/versions")
def versions_page(request: Request, account: str, profile: str, connector_id: str) -> Response:
    ctx = session.profile_context(request, account, profile)
    item = _connector(ctx, connector_id)
    versions = publishing.list_versions(ctx.services, ctx.profile, connector_id)
    return render(
        request,
        "versions.html",
        ctx,
        nav="connectors",
        c=item,
        versions=versions,
        default_from=versions[1]["version"] if len(versions) > 1 else None,
        default_to=versions[0]["version"] if versions else None,
    )


@router.get(C + "/versions/compare")
def compare(
    request: Request,
    account: str,
    profile: str,
    connector_id: str,
    a: int = 0,
    b: int = 0,
) -> Response:
    ctx = session.profile_context(request, account, profile)
    url = f"{ctx.base}/connectors/{connector_id}/versions"
    if a and b:
        low, high = sorted((a, b))
        url += f"/{low}/diff/{high}"
    return redirect(url)


@router.get(C + "/versions/{a}/diff/{b}")
def diff_page(
    request: Request, account: str, profile: str, connector_id: str, a: int, b: int
) -> Response:
    ctx = session.profile_context(request, account, profile)
    item = _connector(ctx, connector_id)
    diff = publishing.diff_versions(ctx.services, ctx.profile, connector_id, a, b)
    left = publishing.get_version(ctx.services, ctx.profile, connector_id, a)
    right = publishing.get_version(ctx.services, ctx.profile, connector_id, b)
    names = {x["id"]: x["name"] for v in (left, right) for x in v["snapshot"]["actions"]}
    for change in diff["changes"]:
        change["label"] = _label(change["path"], names)
    counts = {
        k: sum(1 for c in diff["changes"] if c["change"] == k)
        for k in ("added", "removed", "changed")
    }
    return render(
        request,
        "diff.html",
        ctx,
        nav="connectors",
        c=item,
        diff=diff,
        left=left,
        right=right,
        counts=counts,
        versions=publishing.list_versions(ctx.services, ctx.profile, connector_id),
    )


def _label(path: str, names: dict[str, str]) -> str:
    """``actions[act_1].mappings`` as ``Action “Send orders” › mappings``."""
    if path.startswith("actions[") and "]" in path:
        action_id, _, rest = path[len("actions[") :].partition("]")
        rest = rest.lstrip(".")
        shown = f"Action “{names.get(action_id, action_id)}”"
        return f"{shown} › {rest.replace('.', ' › ')}" if rest else shown
    return path.replace(".", " › ")


@router.get(C + "/versions/{version}")
def version_page(
    request: Request, account: str, profile: str, connector_id: str, version: int
) -> Response:
    ctx = session.profile_context(request, account, profile)
    item = _connector(ctx, connector_id)
    found = publishing.get_version(ctx.services, ctx.profile, connector_id, version)
    return render(request, "version.html", ctx, nav="connectors", c=item, v=found)


# --- form posts ------------------------------------------------------------------------


@router.post(C + "/publish")
async def publish(request: Request, account: str, profile: str, connector_id: str) -> Response:
    ctx, form = await posted(request, account, profile, "editor")
    note = str(form.get("note") or "").strip()

    def done(result: tuple[int, bool]) -> str:
        version, created = result
        if not created:
            return f"Nothing to publish: version {version} is live and up to date."
        return f"Version {version} published. It runs from now on."

    return await act(
        request,
        form,
        lambda: publishing.publish(
            ctx.services, ctx.principal, ctx.profile, connector_id, {"note": note} if note else {}
        ),
        done=done,
        default=f"{ctx.base}/connectors/{connector_id}",
    )


@router.post(C + "/rollback")
async def rollback(request: Request, account: str, profile: str, connector_id: str) -> Response:
    ctx, form = await posted(request, account, profile, "editor")
    raw = str(form.get("version") or "")
    target = int(raw) if raw.isdigit() else raw
    return await act(
        request,
        form,
        lambda: publishing.rollback(
            ctx.services, ctx.principal, ctx.profile, connector_id, {"version": target}
        ),
        done=lambda v: f"Rolled back to version {target}: published as version {v}.",
        default=f"{ctx.base}/connectors/{connector_id}/versions",
    )
