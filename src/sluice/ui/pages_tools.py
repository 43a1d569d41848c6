"""Pages: the trace viewer and the audit log."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from sluice.api.deps import ProfileContext
from sluice.api.routes import traces
from sluice.config import audit
from sluice.errors import NotFound
from sluice.ui import session
from sluice.ui.render import UIRoute, render

router = APIRouter(route_class=UIRoute)
P = "/p/{account}/{profile}"
STEP_LABELS = {"routed": "Routed", "delivery": "Delivery attempt"}


@router.get(P + "/traces")
def trace_page(request: Request, account: str, profile: str, trace_id: str = "") -> Response:
    ctx = session.profile_context(request, account, profile)
    trace: dict[str, Any] | None = None
    missing = False
    trace_id = trace_id.strip()
    if trace_id:
        try:
            trace = traces.get_trace(
                trace_id, ProfileContext(ctx.services, ctx.principal, ctx.profile)
            )
        except NotFound:
            missing = True
    if trace is not None:
        trace["steps"] = _in_order(trace["steps"])
    return render(
        request,
        "trace.html",
        ctx,
        nav="traces",
        trace_id=trace_id,
        trace=trace,
        missing=missing,
        labels=STEP_LABELS,
    )


def _in_order(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Event by event (in the order they arrived), its routing first, then its deliveries."""
    first: dict[str, str] = {}
    for step in steps:
        first.setdefault(step["event_id"], step["at"])
    return sorted(
        steps, key=lambda s: (first[s["event_id"]], s["event_id"], s["step"] != "routed", s["at"])
    )


@router.get(P + "/audit")
def audit_page(request: Request, account: str, profile: str, cursor: str = "") -> Response:
    ctx = session.profile_context(request, account, profile)
    entries, next_cursor = audit.list_entries(
        ctx.services.db, ctx.profile.id, start=None, end=None, cursor=cursor or None, limit=50
    )
    return render(
        request,
        "audit.html",
        ctx,
        nav="audit",
        entries=entries,
        next_cursor=next_cursor,
        first_page=not cursor,
    )
