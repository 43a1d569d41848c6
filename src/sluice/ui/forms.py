"""Form posts of the interface: CSRF and role checks, then a redirect with a message.

Every form carries the session's CSRF token in a hidden ``csrf`` field and a ``next``
path to return to. A refused change (a validation error, a conflict) comes back as a
message on the page the user was on; a missing object or role is the error page.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from sluice.errors import Conflict, ValidationFailed
from sluice.ui import session
from sluice.ui.session import PageContext


async def posted(
    request: Request, account: str, profile: str, role: str
) -> tuple[PageContext, FormData]:
    """The page context of a form post, after checking its CSRF token and the user's role."""
    ctx = await run_in_threadpool(session.profile_context, request, account, profile)
    form = await request.form()
    session.check_form_csrf(request, form)
    ctx.require(role)
    return ctx, form


def redirect(url: str) -> Response:
    return RedirectResponse(url, status_code=303)


def back(form: FormData, default: str) -> str:
    return session.safe_next(form.get("next"), default)


async def act(
    request: Request,
    form: FormData,
    work: Callable[[], Any],
    *,
    done: str | Callable[[Any], str],
    default: str,
    success_url: Callable[[Any], str] | None = None,
) -> Response:
    """Run ``work``; flash ``done`` (or its refusal) and go back to the form's page."""
    target = back(form, default)
    try:
        result = await run_in_threadpool(work)
    except (ValidationFailed, Conflict) as exc:
        session.flash(request, _readable(exc), "error")
        return redirect(target)
    session.flash(request, done(result) if callable(done) else done)
    return redirect(success_url(result) if success_url is not None else target)


def _readable(exc: ValidationFailed | Conflict) -> str:
    details = [d for d in exc.details if isinstance(d, dict) and d.get("missing")]
    if details:
        missing = ", ".join(str(m) for m in details[0]["missing"])
        return f"{exc.message.split(';')[0].removeprefix('enabled: ')}: map {missing} first."
    return exc.message


def checked(form: FormData, name: str) -> bool:
    return form.get(name) in ("on", "true", "1", "yes")


def ids(form: FormData, name: str = "ids") -> list[str]:
    return [str(v) for v in form.getlist(name) if isinstance(v, str) and v]
