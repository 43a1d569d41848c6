"""Rendering pages: the Jinja2 environment, its filters, the common context, the error page."""

from __future__ import annotations

import importlib.util
import json
import logging
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from sluice import __version__, timeutil
from sluice.api.deps import get_services
from sluice.config import profiles
from sluice.errors import ApiError
from sluice.ui import session
from sluice.ui.session import LoginRequired, PageContext

log = logging.getLogger("sluice.ui")
TEMPLATES = Path(__file__).parent / "templates"
templates = Jinja2Templates(directory=str(TEMPLATES))
env = templates.env
env.trim_blocks = True
env.lstrip_blocks = True

ERROR_TITLES = {
    400: "That request was not understood",
    401: "Please log in",
    403: "You cannot do that",
    404: "Page not found",
    405: "Not allowed here",
    409: "That conflicts with the current state",
    422: "Some values are not valid",
    500: "Something went wrong",
}


def _parse(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), UTC)
    try:
        return datetime.fromtimestamp(timeutil.parse_iso(str(value)), UTC)
    except ValueError:
        return None


def when(value: Any) -> str:
    """A timestamp as ``2025-01-31 12:00 UTC``."""
    parsed = _parse(value)
    return parsed.strftime("%Y-%m-%d %H:%M UTC") if parsed else "—"


def when_seconds(value: Any) -> str:
    parsed = _parse(value)
    return parsed.strftime("%Y-%m-%d %H:%M:%S UTC") if parsed else "—"


def ago(value: Any) -> str:
    """A timestamp relative to now: ``5 min ago``."""
    parsed = _parse(value)
    if parsed is None:
        return "never"
    seconds = max(0.0, timeutil.now() - parsed.timestamp())
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return "just now"


def number(value: Any) -> str:
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return str(value)


def pretty(value: Any) -> str:
    """A JSON value for reading: indented, or plain text when it is text."""
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


def http_pretty(value: Any) -> str:
    """A recorded request or response for reading: a JSON body shown as JSON, not as text."""
    if isinstance(value, dict) and isinstance(value.get("body"), str):
        try:
            value = {**value, "body": json.loads(value["body"])}
        except ValueError:
            pass
    return pretty(value)


def shown(value: Any) -> str:
    """A short, one-line view of a configuration or mapping value."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def in_groups(fields: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Fields by their ``group``, groups in the order they first appear."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for f in fields:
        groups.setdefault(f.get("group") or "Settings", []).append(f)
    return list(groups.items())


env.filters["in_groups"] = in_groups
env.filters["when"] = when
env.filters["when_seconds"] = when_seconds
env.filters["ago"] = ago
env.filters["number"] = number
env.filters["pretty"] = pretty
env.filters["http_pretty"] = http_pretty
env.filters["shown"] = shown
env.globals["version"] = __version__


def audiences_available() -> bool:
    """Hook for AudienceStream: its pages appear once its API module is installed."""
    return importlib.util.find_spec("sluice.api.routes.audiences") is not None


def render(
    request: Request,
    template: str,
    ctx: PageContext | None = None,
    *,
    status_code: int = 200,
    **values: Any,
) -> Response:
    """A page with the common context: user, CSRF token, profiles, current profile."""
    principal = ctx.principal if ctx is not None else session.current_principal(request)
    profile = ctx.profile if ctx is not None else None
    visible = []
    if principal is not None:
        visible = profiles.list_all(get_services(request).db, principal)
        if profile is None:
            profile = session.remembered_profile(request, principal)
    base = f"/p/{profile.account}/{profile.profile}" if profile is not None else None
    context: dict[str, Any] = {
        "user": principal,
        "can_edit": principal is not None and principal.has_role("editor"),
        "can_admin": principal is not None and principal.has_role("admin"),
        "csrf": session.csrf_token(request),
        "profiles": visible,
        "profile": profile,
        "base": base,
        "api": f"/api/v1/profiles/{profile.account}/{profile.profile}" if profile else None,
        "flashes": session.take_flashes(request),
        "audiences_enabled": audiences_available(),
        "path": request.url.path,
        **values,
    }
    return templates.TemplateResponse(request, template, context, status_code=status_code)


def error_page(request: Request, status: int, message: str) -> Response:
    """The one error page of the interface."""
    title = ERROR_TITLES.get(status, "Something went wrong")
    return render(
        request, "error.html", status_code=status, status=status, title=title, message=message
    )


def wants_html(request: Request) -> bool:
    """Is this a browser asking for a page (rather than an API or collect client)?"""
    path = request.url.path
    if path.startswith(("/api/", "/event", "/bulk-event", "/static/")):
        return False
    return "text/html" in request.headers.get("accept", "")


Endpoint = Callable[[Request], Coroutine[Any, Any, Response]]


class UIRoute(APIRoute):
    """A page route: errors become the error page, a missing login a redirect."""

    def get_route_handler(self) -> Endpoint:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await original(request)
            except LoginRequired as exc:
                return RedirectResponse(exc.location, status_code=303)
            except ApiError as exc:
                return error_page(request, exc.status_code, exc.message)
            except RequestValidationError as exc:
                details = "; ".join(str(e.get("msg", "")) for e in exc.errors())
                return error_page(request, 400, details or "invalid request")
            except StarletteHTTPException as exc:
                return error_page(request, exc.status_code, str(exc.detail))
            except Exception:
                log.exception("unexpected error on %s %s", request.method, request.url.path)
                return error_page(
                    request, 500, "Sluice hit an unexpected error; it is in the server's log."
                )

        return handler
