"""Pages: reporting per profile, connector and action (counts, trends, error groups), the
CSV downloads and the live stream of counts the pages listen to."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from sluice import timeutil
from sluice.api.deps import ProfileContext
from sluice.api.routes import errors_log as errors_routes
from sluice.api.routes import reports as reports_routes
from sluice.config import connectors
from sluice.errors import NotFound
from sluice.reporting import error_log, reports
from sluice.reporting.counters import COUNTERS
from sluice.ui import session, views
from sluice.ui.charts import trend_svg
from sluice.ui.render import UIRoute, render

router = APIRouter(route_class=UIRoute)
P = "/p/{account}/{profile}"
RANGES: dict[str, tuple[int, str, str]] = {
    "1h": (3600, "minute", "Last hour"),
    "24h": (86400, "hour", "Last 24 hours"),
    "7d": (7 * 86400, "hour", "Last 7 days"),
    "30d": (30 * 86400, "day", "Last 30 days"),
}
COUNTER_LABELS = {
    "triggered": "Triggered",
    "success": "Success",
    "error": "Error",
    "retried": "Retried",
    "filtered_consent": "Filtered by consent",
    "dropped": "Dropped",
}


def _api_context(ctx: session.PageContext) -> ProfileContext:
    return ProfileContext(ctx.services, ctx.principal, ctx.profile)


def _report(
    request: Request,
    ctx: session.PageContext,
    range_key: str,
    connector: dict[str, Any] | None,
    action: dict[str, Any] | None,
) -> Response:
    seconds, bucket, range_label = RANGES.get(range_key, RANGES["24h"])
    range_key = range_key if range_key in RANGES else "24h"
    end = time.time()
    start = end - seconds
    connector_id = connector["id"] if connector else None
    action_id = action["id"] if action else None
    everything = connectors.list_connectors(ctx.services, ctx.profile)
    with ctx.services.db.read() as conn:
        report = reports.report(
            conn,
            ctx.profile.id,
            start=start,
            end=end,
            bucket=bucket,
            connector=connector_id,
            action=action_id,
        )
        groups = error_log.groups(
            conn,
            ctx.profile.id,
            connector=connector_id,
            action=action_id,
            start=start,
            end=end,
            account=ctx.profile.account,
            profile=ctx.profile.profile,
        )
        by_action = reports.totals_by_action(conn, ctx.profile.id, start)
    rows = _breakdown(ctx, everything, by_action, connector, action)
    title = "All connectors"
    if connector is not None:
        title = connector["name"] + (f" › {action['name']}" if action else "")
    params = {"from": timeutil.iso(start), "to": timeutil.iso(end)}
    scope = {"connector": connector_id or "", "action": action_id or ""}
    return render(
        request,
        "reports.html",
        ctx,
        nav="reports",
        c=connector,
        action=action,
        title=title,
        range_key=range_key,
        ranges=RANGES,
        range_label=range_label,
        report=report,
        chart=trend_svg(report["buckets"], bucket, f"Successes and errors, {range_label.lower()}"),
        counters=COUNTER_LABELS,
        groups=groups,
        rows=rows,
        params=params,
        scope=scope,
        baseline=views.live_baseline(ctx.services, ctx.profile),
    )


def _breakdown(
    ctx: session.PageContext,
    everything: list[dict[str, Any]],
    by_action: dict[str, dict[str, int]],
    connector: dict[str, Any] | None,
    action: dict[str, Any] | None,
) -> list[dict[str, Any]]:
    """One row per connector (whole profile) or per action (one connector)."""
    if action is not None:
        return []
    rows = []
    if connector is None:
        for item in everything:
            totals = dict.fromkeys(COUNTERS, 0)
            for a in item["actions"]:
                for key, value in (by_action.get(a["id"]) or {}).items():
                    totals[key] += value
            rows.append(
                {
                    "name": item["name"],
                    "url": f"{ctx.base}/connectors/{item['id']}/reports",
                    "live_connector": item["id"],
                    "counts": totals,
                }
            )
        return rows
    for a in connector["actions"]:
        rows.append(
            {
                "name": a["name"],
                "url": f"{ctx.base}/connectors/{connector['id']}/actions/{a['id']}/reports",
                "live_action": a["id"],
                "counts": by_action.get(a["id"]) or dict.fromkeys(COUNTERS, 0),
            }
        )
    return rows


@router.get(P + "/reports")
def profile_reports(
    request: Request, account: str, profile: str, range: str = Query("24h")
) -> Response:
    ctx = session.profile_context(request, account, profile)
    return _report(request, ctx, range, None, None)


@router.get(P + "/connectors/{connector_id}/reports")
def connector_reports(
    request: Request, account: str, profile: str, connector_id: str, range: str = Query("24h")
) -> Response:
    ctx = session.profile_context(request, account, profile)
    found = connectors.get_connector(ctx.services, ctx.profile, connector_id)
    return _report(request, ctx, range, found, None)


@router.get(P + "/connectors/{connector_id}/actions/{action_id}/reports")
def action_reports(
    request: Request,
    account: str,
    profile: str,
    connector_id: str,
    action_id: str,
    range: str = Query("24h"),
) -> Response:
    ctx = session.profile_context(request, account, profile)
    found = connectors.get_connector(ctx.services, ctx.profile, connector_id)
    action = next((a for a in found["actions"] if a["id"] == action_id), None)
    if action is None:
        raise NotFound(f"no action {action_id} on the connector {found['name']}")
    return _report(request, ctx, range, found, action)


# --- downloads and the live stream: the API's own handlers, for the session's cookie ----
# A browser cannot add the CSRF header to a download link or an EventSource, and these
# only read, so they take the session alone (SameSite=Lax keeps other sites out).


@router.get(P + "/errors.csv")
def errors_csv(
    request: Request,
    account: str,
    profile: str,
    connector: str | None = None,
    action: str | None = None,
    start: str | None = Query(None, alias="from"),
    end: str | None = Query(None, alias="to"),
) -> Response:
    ctx = session.profile_context(request, account, profile)
    return errors_routes.errors_csv(
        _api_context(ctx), connector or None, action or None, start, end
    )


@router.get(P + "/reports.csv")
def reports_csv(
    request: Request,
    account: str,
    profile: str,
    connector: str | None = None,
    action: str | None = None,
    start: str | None = Query(None, alias="from"),
    end: str | None = Query(None, alias="to"),
    bucket: str = "hour",
) -> Response:
    ctx = session.profile_context(request, account, profile)
    return reports_routes.get_report_csv(
        _api_context(ctx), connector or None, action or None, start, end, bucket
    )


@router.get(P + "/live")
async def live(request: Request, account: str, profile: str) -> Response:
    ctx = await run_in_threadpool(session.profile_context, request, account, profile)
    return await reports_routes.live(request, _api_context(ctx))
