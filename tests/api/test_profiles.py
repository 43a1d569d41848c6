from __future__ import annotations

from tests.conftest import Api


def test_create_get_patch_delete_profile(api: Api) -> None:
    created = api.post("/profiles", {"account": "acme", "profile": "web"})
    assert created.status_code == 201
    assert created.json() == {
        "account": "acme",
        "profile": "web",
        "consent": {"enforcement": False, "missing": "allow"},
        "visit_timeout_minutes": 30,
        "rate_limit_per_second": None,
        "collect_token_required": False,
    }
    assert api.post("/profiles", {"account": "acme", "profile": "web"}).status_code == 409
    patched = api.patch("/profiles/acme/web", {"consent": {"enforcement": True}})
    assert patched.status_code == 200
    assert patched.json()["consent"] == {"enforcement": True, "missing": "allow"}
    unknown = api.patch("/profiles/acme/web", {"colour": "red"})
    assert unknown.status_code == 422
    assert unknown.json()["details"][0]["field"] == "colour"
    listed = api.get("/profiles").json()["profiles"]
    assert [p["profile"] for p in listed] == ["web"]
    assert api.delete("/profiles/acme/web").status_code == 204
    missing = api.get("/profiles/acme/web")
    assert missing.status_code == 404
    assert missing.json() == {"error": "no profile acme/web", "details": []}


def test_health_needs_no_credentials(api: Api) -> None:
    assert api.client.get("/healthz").status_code == 200
    assert api.client.get("/readyz").status_code == 200
    assert api.client.get("/api/v1/openapi.json").status_code == 200
    assert api.client.get("/api/v1/profiles").status_code == 401
