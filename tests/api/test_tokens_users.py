from __future__ import annotations

from typing import Any

import pytest

from sluice.services import Services
from tests.conftest import Api, make_token


def test_token_lifecycle(api: Api) -> None:
    created = api.post("/tokens", {"name": "CI", "role": "editor", "profiles": ["acme/main"]})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["token"].startswith("slu_")
    assert body["role"] == "editor"
    assert body["profiles"] == ["acme/main"]
    listed = api.get("/tokens").json()["tokens"]
    assert body["id"] in [t["id"] for t in listed]
    assert all("token" not in t and "token_hash" not in t for t in listed)

    headers = {"Authorization": f"Bearer {body['token']}"}
    assert api.client.get("/api/v1/profiles", headers=headers).status_code == 200
    assert api.delete(f"/tokens/{body['id']}").status_code == 204
    assert api.client.get("/api/v1/profiles", headers=headers).status_code == 401
    assert api.delete(f"/tokens/{body['id']}").status_code == 404
    assert body["id"] not in [t["id"] for t in api.get("/tokens").json()["tokens"]]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"role": "admin"}, "name"),
        ({"name": "x", "role": "owner"}, "role"),
        ({"name": "x", "role": "viewer", "profiles": ["acme"]}, "profiles"),
        ({"name": "x", "role": "viewer", "scope": "all"}, "scope"),
    ],
    ids=["no-name", "bad-role", "bad-profile-ref", "unknown-key"],
)
def test_token_validation(api: Api, body: dict[str, Any], field: str) -> None:
    response = api.post("/tokens", body)
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == field


def test_user_lifecycle(api: Api) -> None:
    created = api.post("/users", {"email": "Ana@Example.com", "role": "viewer"})
    assert created.status_code == 201, created.text
    user = created.json()
    assert user["email"] == "ana@example.com"
    assert len(user["password"]) >= 12
    assert "password_hash" not in user

    given = api.post(
        "/users", {"email": "bo@example.com", "role": "editor", "password": "s3cret-pass"}
    )
    assert given.status_code == 201
    assert "password" not in given.json()
    assert api.post("/users", {"email": "bo@example.com", "role": "editor"}).status_code == 409

    patched = api.patch(
        f"/users/{user['id']}", {"role": "editor", "profiles": ["acme/main"], "disabled": True}
    )
    assert patched.status_code == 200
    assert patched.json()["role"] == "editor"
    assert patched.json()["profiles"] == ["acme/main"]
    assert patched.json()["disabled"] is True
    cleared = api.patch(f"/users/{user['id']}", {"profiles": None})
    assert cleared.json()["profiles"] is None
    assert cleared.json()["role"] == "editor"

    emails = [u["email"] for u in api.get("/users").json()["users"]]
    assert emails == ["ana@example.com", "bo@example.com"]
    assert api.delete(f"/users/{user['id']}").status_code == 204
    assert api.delete(f"/users/{user['id']}").status_code == 404
    assert api.patch(f"/users/{user['id']}", {"role": "viewer"}).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "nobody", "role": "viewer"}, "email"),
        ({"email": "a@b.c", "role": "root"}, "role"),
        ({"email": "a@b.c", "role": "viewer", "password": "short"}, "password"),
    ],
    ids=["bad-email", "bad-role", "short-password"],
)
def test_user_validation(api: Api, body: dict[str, Any], field: str) -> None:
    response = api.post("/users", body)
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == field


def test_only_admins(api: Api, services: Services) -> None:
    editor = {"Authorization": f"Bearer {make_token(services, 'editor')}"}
    for method, path in [
        ("GET", "/api/v1/tokens"),
        ("POST", "/api/v1/tokens"),
        ("GET", "/api/v1/users"),
        ("POST", "/api/v1/users"),
    ]:
        response = api.client.request(method, path, headers=editor, json={})
        assert response.status_code == 403, (method, path)


def test_token_and_user_changes_are_audited(api: Api, services: Services) -> None:
    from sqlalchemy import select

    from sluice.storage.tables import audit_log

    token = api.post("/tokens", {"name": "CI", "role": "viewer"}).json()
    api.delete(f"/tokens/{token['id']}")
    user = api.post("/users", {"email": "c@example.com", "role": "viewer"}).json()
    api.patch(f"/users/{user['id']}", {"password": "another-secret"})
    api.delete(f"/users/{user['id']}")
    with services.db.read() as conn:
        rows = conn.execute(select(audit_log).order_by(audit_log.c.seq)).all()
    assert [r.action for r in rows] == [
        "token.create",
        "token.revoke",
        "user.create",
        "user.update",
        "user.delete",
    ]
    assert all(r.actor == "token:test-admin" for r in rows)
    assert "another-secret" not in "".join(r.details for r in rows)
