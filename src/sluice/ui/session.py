"""The web interface's session: who is logged in, the CSRF token, flash messages.

The session cookie (``sluice_session``, set up in :func:`sluice.app.create_app`) holds
``user_id`` and a random ``csrf`` token. Forms send the token in a hidden field named
``csrf``; the page's JavaScript sends it in the ``X-CSRF-Token`` header, which is also
what the management API checks for session callers.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from starlette.datastructures import FormData
from starlette.requests import Request

from sluice.api.deps import CSRF_HEADER, get_services
from sluice.auth import users
from sluice.auth.principals import Principal
from sluice.config import profiles
from sluice.config.profiles import Profile
from sluice.errors import Forbidden
from sluice.services import Services


class LoginRequired(Exception):
    """Raised by a page that needs a logged-in user; answered with a redirect to /login."""

    def __init__(self, next_url: str = "/") -> None:
        super().__init__(next_url)
        self.next_url = next_url

    @property
    def location(self) -> str:
        if self.next_url in ("", "/"):
            return "/login"
        return "/login?next=" + quote(self.next_url, safe="/")


def csrf_token(request: Request) -> str:
    """The session's CSRF token, created on first use."""
    token = request.session.get("csrf")
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def rotate_csrf(request: Request) -> str:
    """A fresh token (after logging in), so a token seen before login is worthless."""
    request.session["csrf"] = secrets.token_urlsafe(32)
    return str(request.session["csrf"])


def _token_ok(request: Request, given: Any) -> bool:
    expected = request.session.get("csrf")
    if not isinstance(expected, str) or not expected or not isinstance(given, str):
        return False
    return hmac.compare_digest(expected, given)


def check_form_csrf(request: Request, form: FormData) -> None:
    if not _token_ok(request, form.get("csrf")):
        raise Forbidden("the form has expired or did not come from this site; reload and retry")


def check_header_csrf(request: Request) -> None:
    if not _token_ok(request, request.headers.get(CSRF_HEADER)):
        raise Forbidden("missing or invalid CSRF token header X-CSRF-Token")


def current_principal(request: Request) -> Principal | None:
    user_id = request.session.get("user_id")
    if not isinstance(user_id, str) or not user_id:
        return None
    principal = users.principal_for(get_services(request).db, user_id)
    if principal is None:
        request.session.pop("user_id", None)
    return principal


def require_user(request: Request) -> Principal:
    principal = current_principal(request)
    if principal is None:
        target = request.url.path
        if request.url.query:
            target += "?" + request.url.query
        raise LoginRequired(target if request.method == "GET" else "/")
    return principal


@dataclass(frozen=True)
class PageContext:
    """What every profile page works with."""

    request: Request
    services: Services
    principal: Principal
    profile: Profile

    @property
    def base(self) -> str:
        return f"/p/{self.profile.account}/{self.profile.profile}"

    @property
    def api(self) -> str:
        return f"/api/v1/profiles/{self.profile.account}/{self.profile.profile}"

    def require(self, role: str) -> None:
        self.principal.require(role)


def profile_context(request: Request, account: str, profile: str) -> PageContext:
    principal = require_user(request)
    principal.require_profile(account, profile, "viewer")
    services = get_services(request)
    found = profiles.get(services.db, account, profile)
    request.session["profile"] = f"{account}/{profile}"
    return PageContext(request, services, principal, found)


def remembered_profile(request: Request, principal: Principal) -> Profile | None:
    """The profile the user worked in last, else their first one."""
    services = get_services(request)
    visible = profiles.list_all(services.db, principal)
    last = request.session.get("profile")
    for found in visible:
        if f"{found.account}/{found.profile}" == last:
            return found
    return visible[0] if visible else None


def flash(request: Request, message: str, kind: str = "success") -> None:
    queued = list(request.session.get("flash") or [])
    queued.append({"kind": kind, "message": message})
    request.session["flash"] = queued[-5:]


def take_flashes(request: Request) -> list[dict[str, str]]:
    queued = request.session.pop("flash", None) or []
    return [m for m in queued if isinstance(m, dict)]


def safe_next(value: Any, default: str) -> str:
    """A local path to go back to after a form; anything else falls back to ``default``."""
    if not isinstance(value, str) or not value.startswith("/") or value.startswith("//"):
        return default
    if any(c in value for c in "\\\r\n"):
        return default
    return value
