"""Request dependencies: the services, the caller, and the profile a route works on."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from fastapi import Request

from sluice.auth import tokens, users
from sluice.auth.principals import Principal
from sluice.config import profiles
from sluice.config.profiles import Profile
from sluice.errors import Unauthorized
from sluice.services import Services

CSRF_HEADER = "x-csrf-token"


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def get_principal(request: Request) -> Principal:
    """A bearer token, or the web UI's session cookie with its CSRF header."""
    cached: Principal | None = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    services = get_services(request)
    header = request.headers.get("authorization", "")
    principal: Principal | None = None
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthorized("use Authorization: Bearer <token>")
        principal = tokens.authenticate(services.db, value.strip())
        if principal is None:
            raise Unauthorized("invalid or revoked token")
    else:
        session = request.scope.get("session") or {}
        user_id = session.get("user_id")
        if not user_id:
            raise Unauthorized("missing credentials: send Authorization: Bearer <token>")
        expected = session.get("csrf", "")
        given = request.headers.get(CSRF_HEADER, "")
        if not expected or not hmac.compare_digest(expected, given):
            raise Unauthorized("missing or invalid CSRF token header X-CSRF-Token")
        principal = users.principal_for(services.db, user_id)
        if principal is None:
            raise Unauthorized("your session has ended; log in again")
    request.state.principal = principal
    return principal


@dataclass(frozen=True)
class ProfileContext:
    services: Services
    principal: Principal
    profile: Profile


def _profile_context(request: Request, account: str, profile: str, needed: str) -> ProfileContext:
    principal = get_principal(request)
    principal.require_profile(account, profile, needed)
    services = get_services(request)
    return ProfileContext(services, principal, profiles.get(services.db, account, profile))


def viewer(request: Request, account: str, profile: str) -> ProfileContext:
    return _profile_context(request, account, profile, "viewer")


def editor(request: Request, account: str, profile: str) -> ProfileContext:
    return _profile_context(request, account, profile, "editor")


def admin(request: Request, account: str, profile: str) -> ProfileContext:
    return _profile_context(request, account, profile, "admin")


def require_admin(request: Request) -> Principal:
    principal = get_principal(request)
    principal.require("admin")
    return principal
