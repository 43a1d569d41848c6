"""Pages: logging in and out, the start page, switching profiles, creating the first one."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from sluice.api.deps import get_services
from sluice.auth import users
from sluice.config import profiles
from sluice.errors import Conflict, ValidationFailed
from sluice.ui import session
from sluice.ui.forms import redirect
from sluice.ui.render import UIRoute, render

router = APIRouter(route_class=UIRoute)


@router.get("/login")
def login_page(request: Request, next: str = "/") -> Response:
    if session.current_principal(request) is not None:
        return redirect(session.safe_next(next, "/"))
    return render(request, "login.html", next=session.safe_next(next, "/"), email="")


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    session.check_form_csrf(request, form)
    email = str(form.get("email") or "")
    password = str(form.get("password") or "")
    target = session.safe_next(form.get("next"), "/")
    principal = await run_in_threadpool(
        users.verify_login, get_services(request).db, email, password
    )
    if principal is None:
        return render(
            request,
            "login.html",
            status_code=401,
            next=target,
            email=email,
            error="That email and password do not match an active user.",
        )
    request.session.clear()
    request.session["user_id"] = principal.id
    session.rotate_csrf(request)
    return redirect(target)


@router.post("/logout")
async def logout(request: Request) -> Response:
    form = await request.form()
    session.check_form_csrf(request, form)
    request.session.clear()
    session.flash(request, "You are logged out.")
    return redirect("/login")


@router.get("/")
def start(request: Request) -> Response:
    principal = session.require_user(request)
    found = session.remembered_profile(request, principal)
    if found is None:
        return render(request, "no_profile.html")
    return redirect(f"/p/{found.account}/{found.profile}/")


@router.get("/switch")
def switch(request: Request, to: str = Query("")) -> Response:
    session.require_user(request)
    account, _, name = to.partition("/")
    if not account or not name:
        return redirect("/")
    return redirect(f"/p/{quote(account)}/{quote(name)}/")


@router.get("/connectors/new")
def add_connector_anywhere(request: Request, type: str = "") -> Response:
    """Spotlight's "Add connector" for a catalog type: the workflow in the current profile."""
    principal = session.require_user(request)
    found = session.remembered_profile(request, principal)
    if found is None:
        return redirect("/")
    suffix = f"?type={quote(type)}" if type else ""
    return redirect(f"/p/{found.account}/{found.profile}/connectors/new{suffix}")


@router.post("/profiles/new")
async def create_profile(request: Request) -> Response:
    principal = session.require_user(request)
    form = await request.form()
    session.check_form_csrf(request, form)
    principal.require("admin")
    account = str(form.get("account") or "").strip()
    name = str(form.get("profile") or "").strip() or "main"
    try:
        made = await run_in_threadpool(
            profiles.create, get_services(request).db, principal, account, name
        )
    except (ValidationFailed, Conflict) as exc:
        return render(
            request,
            "no_profile.html",
            status_code=exc.status_code,
            error=exc.message,
            account=account,
            profile_name=name,
        )
    session.flash(request, f"Profile {made.account}/{made.profile} created.")
    return redirect(f"/p/{made.account}/{made.profile}/")
