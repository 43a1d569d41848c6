"""Every /api/v1 route needs credentials and checks role and profile.

The routes are read from the app itself, so a route added without the right dependency
fails here. Requests send ``{}`` as the body of non-GET routes: credentials must be
checked before the body is validated (a 422 instead of the 401/403 is a failure too).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from sluice.services import Services
from tests.conftest import make_token

PUBLIC = {"/api/v1/openapi.json"}
PROFILE_PREFIX = "/api/v1/profiles/{account}/{profile}"
_PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")
_DUMMY = {"account": "acme", "profile": "main"}


def _is_admin_only(method: str, template: str) -> bool:
    if template.startswith(("/api/v1/tokens", "/api/v1/users")):
        return True
    if template == "/api/v1/profiles" and method == "POST":
        return True
    return template == PROFILE_PREFIX and method in ("PATCH", "DELETE")


def _routes(client: TestClient) -> list[tuple[str, str, str]]:
    """(method, path template, concrete path) of every protected /api/v1 route."""
    app: FastAPI = client.app  # type: ignore[assignment]
    found = []
    # FastAPI includes routers lazily; iter_route_contexts flattens them with their prefixes.
    for route in iter_route_contexts(app.routes):
        path = route.path or ""
        if not path.startswith("/api/v1") or path in PUBLIC:
            continue
        assert route.methods, f"cannot walk {path} (a mount?): list its routes here"
        concrete = _PARAM.sub(lambda m: _DUMMY.get(m.group(1), "1"), path)
        for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
            found.append((method, path, concrete))
    return found


def _call(client: TestClient, method: str, path: str, token: str | None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = None if method == "GET" else {}
    return client.request(method, path, headers=headers, json=body)


def _check_all(
    client: TestClient, routes: list[tuple[str, str, str]], token: str | None, status: int
) -> None:
    wrong = []
    for method, template, path in routes:
        response = _call(client, method, path, token)
        if response.status_code != status:
            wrong.append(f"{method} {template}: {response.status_code} {response.text[:120]}")
        elif set(response.json()) != {"error", "details"}:
            wrong.append(f"{method} {template}: error body {response.text[:120]}")
    assert not wrong, f"expected {status} from:\n" + "\n".join(wrong)


@pytest.fixture
def routes(client: TestClient) -> list[tuple[str, str, str]]:
    found = _routes(client)
    # The walk must see the collections of SPEC §4, or it proves nothing.
    templates = {template for _, template, _ in found}
    assert {"/api/v1/profiles", "/api/v1/tokens", f"{PROFILE_PREFIX}/data-sources"} <= templates
    return found


def test_no_credentials_is_401(client: TestClient, routes: list[tuple[str, str, str]]) -> None:
    _check_all(client, routes, None, 401)


def test_bad_token_is_401(client: TestClient, routes: list[tuple[str, str, str]]) -> None:
    _check_all(client, routes, "slu_not-a-real-token", 401)


def test_malformed_authorization_is_401(client: TestClient) -> None:
    response = client.get("/api/v1/profiles", headers={"Authorization": "Basic YTpi"})
    assert response.status_code == 401


def test_another_profile_is_403(
    client: TestClient, services: Services, routes: list[tuple[str, str, str]]
) -> None:
    token = make_token(services, "admin", ["other/main"])
    in_profile = [r for r in routes if r[1].startswith(PROFILE_PREFIX)]
    assert in_profile
    _check_all(client, in_profile, token, 403)


def test_viewer_cannot_change_anything(
    client: TestClient, services: Services, routes: list[tuple[str, str, str]]
) -> None:
    token = make_token(services, "viewer")
    changing = [r for r in routes if r[0] != "GET" or _is_admin_only(r[0], r[1])]
    _check_all(client, changing, token, 403)


def test_editor_cannot_use_admin_routes(
    client: TestClient, services: Services, routes: list[tuple[str, str, str]]
) -> None:
    token = make_token(services, "editor")
    admin_only = [r for r in routes if _is_admin_only(r[0], r[1])]
    assert len(admin_only) >= 8
    _check_all(client, admin_only, token, 403)


def test_viewer_can_read(client: TestClient, services: Services) -> None:
    admin = {"Authorization": f"Bearer {make_token(services, 'admin')}"}
    assert (
        client.post("/api/v1/profiles", json={"account": "acme"}, headers=admin).status_code == 201
    )
    viewer = {"Authorization": f"Bearer {make_token(services, 'viewer', ['acme/main'])}"}
    for path in ("data-sources", "attributes", "event-feeds", "audit"):
        response = client.get(f"{PROFILE_PREFIX.format(**_DUMMY)}/{path}", headers=viewer)
        assert response.status_code == 200, path


@pytest.mark.parametrize(
    ("role", "method", "path", "body", "status"),
    [
        (None, "GET", "/api/v1/profiles", None, 401),
        ("viewer", "POST", "/api/v1/profiles/acme/main/data-sources", {}, 403),
        ("admin", "GET", "/api/v1/profiles/acme/nope", None, 404),
        ("admin", "GET", "/api/v1/no-such-route", None, 404),
        ("admin", "POST", "/api/v1/profiles/acme/main/data-sources", {"name": 1}, 422),
        ("admin", "POST", "/api/v1/tokens", [1, 2], 422),
        ("admin", "PUT", "/api/v1/tokens", {}, 405),
    ],
    ids=["401", "403", "404-object", "404-route", "422-field", "422-not-object", "405"],
)
def test_error_body_shape(
    client: TestClient,
    services: Services,
    role: str | None,
    method: str,
    path: str,
    body: Any,
    status: int,
) -> None:
    admin = {"Authorization": f"Bearer {make_token(services, 'admin')}"}
    client.post("/api/v1/profiles", json={"account": "acme"}, headers=admin)
    headers = {"Authorization": f"Bearer {make_token(services, role)}"} if role else {}
    response = client.request(method, path, headers=headers, json=body)
    assert response.status_code == status
    payload = response.json()
    assert set(payload) == {"error", "details"}
    assert isinstance(payload["error"], str)
    assert payload["error"]
    assert isinstance(payload["details"], list)
    if status == 422:
        assert all(isinstance(d.get("field"), str) for d in payload["details"])


def test_the_walk_catches_a_route_without_auth(client: TestClient) -> None:
    app: FastAPI = client.app  # type: ignore[assignment]

    def leaky(account: str, profile: str) -> dict[str, str]:
        return {"account": account, "profile": profile}

    app.add_api_route("/api/v1/profiles/{account}/{profile}/leaky", leaky, methods=["GET"])
    leaky_routes = [r for r in _routes(client) if r[1].endswith("/leaky")]
    assert leaky_routes == [("GET", f"{PROFILE_PREFIX}/leaky", "/api/v1/profiles/acme/main/leaky")]
    with pytest.raises(AssertionError, match="leaky"):
        _check_all(client, leaky_routes, None, 401)
