"""The web interface in-process: login, every page, roles, CSRF, form posts, downloads."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sluice.auth import users
from sluice.services import Services
from sluice.ui.routes import ROUTERS
from tests.conftest import Api
from tests.support.flows import add_connector, event_data_action

P = "/p/acme/main"
PASSWORD = "correct horse battery"
CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')
CSRF_META = re.compile(r'name="csrf-token" content="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF_FIELD.search(html) or CSRF_META.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def log_in(client: TestClient, email: str, password: str = PASSWORD) -> Any:
    token = csrf_of(client.get("/login").text)
    return client.post(
        "/login",
        data={"email": email, "password": password, "csrf": token, "next": "/"},
        follow_redirects=False,
    )


def browser(client: TestClient, email: str) -> TestClient:
    """A second, logged-in browser on the same app (its own cookies)."""
    other = TestClient(client.app)
    assert log_in(other, email).status_code == 303
    return other


@dataclass
class World:
    connector: dict[str, Any]
    action: dict[str, Any]
    feed: dict[str, Any]
    source: dict[str, Any]


@pytest.fixture
def world(api: Api, profile: str, services: Services) -> World:
    """A profile with a published (twice) webhook connector, a feed and a data source."""
    feed = api.post(
        f"{profile}/event-feeds",
        {
            "name": "Purchases",
            "conditions": [
                [{"attribute": "tealium_event", "operator": "equals", "value": "purchase"}]
            ],
        },
    ).json()
    source = api.post(f"{profile}/data-sources", {"name": "Web shop", "platform": "web"}).json()
    connector = add_connector(
        api,
        profile,
        name="Orders (prod)",
        configuration={"auth_type": "bearer", "token": "s3cret-token-value"},
        actions=[event_data_action("http://127.0.0.1:9/orders", name="Send orders")],
    )
    cid = connector["id"]
    api.patch(f"{profile}/connectors/{cid}", {"name": "Orders (production)"})
    assert api.post(f"{profile}/connectors/{cid}/publish", {"note": "rename"}).status_code == 201
    for email, role in (("admin@acme.test", "admin"), ("viewer@acme.test", "viewer")):
        users.create_user(services.db, email, role, PASSWORD)
    fresh = api.get(f"{profile}/connectors/{cid}").json()
    return World(fresh, fresh["actions"][0], feed, source)


@pytest.fixture
def admin(client: TestClient, world: World) -> TestClient:
    assert log_in(client, "admin@acme.test").status_code == 303
    return client


@pytest.fixture
def viewer(client: TestClient, world: World) -> TestClient:
    return browser(client, "viewer@acme.test")


def test_pages_need_a_login(client: TestClient, world: World) -> None:
    response = client.get(f"{P}/connectors/{world.connector['id']}", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"/login?next={P}/connectors/{world.connector['id']}"
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"
    assert client.get("/catalog", follow_redirects=False).status_code == 303


def test_login_with_a_wrong_password_says_so(client: TestClient, world: World) -> None:
    response = log_in(client, "admin@acme.test", "wrong password!")
    assert response.status_code == 401
    assert "do not match" in response.text
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"


def test_login_goes_to_the_first_profile_and_logout_ends_it(admin: TestClient) -> None:
    assert admin.get("/", follow_redirects=False).headers["location"] == f"{P}/"
    page = admin.get(f"{P}/")
    token = csrf_of(page.text)
    assert admin.post("/logout", data={}, follow_redirects=False).status_code == 403
    response = admin.post("/logout", data={"csrf": token}, follow_redirects=False)
    assert response.headers["location"] == "/login"
    assert admin.get(f"{P}/", follow_redirects=False).status_code == 303


def test_login_form_needs_its_csrf_token(client: TestClient, world: World) -> None:
    client.get("/login")
    response = client.post(
        "/login", data={"email": "admin@acme.test", "password": PASSWORD}, follow_redirects=False
    )
    assert response.status_code == 403


def test_login_rotates_the_csrf_token(client: TestClient, world: World) -> None:
    before = csrf_of(client.get("/login").text)
    log_in(client, "admin@acme.test")
    assert csrf_of(client.get(f"{P}/").text) != before


def _pages(w: World) -> list[str]:
    c, a = w.connector["id"], w.action["id"]
    return [
        f"{P}/",
        f"{P}",
        "/catalog",
        "/catalog?q=web&data_type=event&sort=actions",
        "/catalog/webhook",
        "/catalog/slack",
        f"{P}/connectors/new",
        f"{P}/connectors/new?type=webhook",
        f"{P}/connectors/{c}",
        f"{P}/connectors/{c}/actions/new",
        f"{P}/connectors/{c}/actions/new?wizard=1",
        f"{P}/connectors/{c}/actions/{a}",
        f"{P}/connectors/{c}/versions",
        f"{P}/connectors/{c}/versions/1",
        f"{P}/connectors/{c}/versions/1/diff/2",
        f"{P}/connectors/{c}/reports",
        f"{P}/connectors/{c}/reports?range=1h",
        f"{P}/connectors/{c}/actions/{a}/reports?range=7d",
        f"{P}/reports",
        f"{P}/reports?range=30d",
        f"{P}/event-feeds",
        f"{P}/event-feeds/new",
        f"{P}/event-feeds/all_events",
        f"{P}/event-feeds/{w.feed['id']}",
        f"{P}/data-sources",
        f"{P}/attributes",
        f"{P}/settings",
        f"{P}/traces",
        f"{P}/traces?trace_id=nothing-here",
        f"{P}/audit",
        f"{P}/audiences",
        f"{P}/audiences/new",
        f"{P}/visitor-attributes",
        f"{P}/visitors",
    ]


PAGE_IDS = [
    "landing",
    "landing-no-slash",
    "catalog",
    "catalog-filtered",
    "catalog-webhook",
    "catalog-slack",
    "workflow-type",
    "workflow-configure",
    "connector",
    "action-new",
    "action-new-wizard",
    "action-edit",
    "versions",
    "version",
    "diff",
    "connector-reports",
    "connector-reports-1h",
    "action-reports",
    "profile-reports",
    "profile-reports-30d",
    "feeds",
    "feed-new",
    "feed-builtin",
    "feed-edit",
    "data-sources",
    "attributes",
    "settings",
    "traces",
    "trace-missing",
    "audit",
    "audiences",
    "audience-new",
    "visitor-attributes",
    "visitors",
]


@pytest.mark.parametrize("index", range(len(PAGE_IDS)), ids=PAGE_IDS)
def test_every_page_renders_for_an_admin(admin: TestClient, world: World, index: int) -> None:
    url = _pages(world)[index]
    response = admin.get(url)
    assert response.status_code == 200, response.text[:2000]
    assert response.headers["content-type"].startswith("text/html")
    assert "<title>" in response.text
    assert "Sluice" in response.text


def test_the_landing_page_shows_the_connector_snapshot(admin: TestClient, world: World) -> None:
    html = admin.get(f"{P}/").text
    assert "Orders (production)" in html
    assert "Send orders" in html
    assert "All Events" in html
    assert "Up to date · v2" in html
    assert "COMPLETED" in html
    assert "Bearer token: set" in html
    assert "s3cret-token-value" not in html
    assert 'id="live-baseline"' in html


def test_secrets_are_never_shown(admin: TestClient, world: World) -> None:
    c = world.connector["id"]
    for url in (f"{P}/connectors/{c}", f"{P}/connectors/{c}/versions/1/diff/2", f"{P}/"):
        assert "s3cret-token-value" not in admin.get(url).text
    html = admin.get(f"{P}/connectors/{c}").text
    assert '<span class="pill ok">set</span>' in html


def test_a_viewer_sees_no_edit_controls(viewer: TestClient, world: World) -> None:
    c = world.connector["id"]
    landing = viewer.get(f"{P}/").text
    assert "Add connector" not in landing
    assert "/toggle" not in landing
    assert 'id="bulk-connectors"' not in landing
    page = viewer.get(f"{P}/connectors/{c}").text
    for marker in (
        "/toggle",
        "/delete",
        "/duplicate",
        "/publish",
        "data-connector-form",
        "Add action",
    ):
        assert marker not in page, marker
    versions = viewer.get(f"{P}/connectors/{c}/versions").text
    assert "/rollback" not in versions
    settings = viewer.get(f"{P}/settings").text
    assert "Save settings" not in settings
    editor = viewer.get(f"{P}/connectors/{c}/actions/{world.action['id']}").text
    assert '"can_edit": false' in editor


@pytest.mark.parametrize(
    ("suffix", "fields"),
    [
        ("/connectors/{c}/toggle", {"enabled": "false"}),
        ("/connectors/{c}/publish", {"note": "x"}),
        ("/connectors/{c}/delete", {}),
        ("/connectors/{c}/actions/{a}/toggle", {"enabled": "false"}),
        ("/connectors/{c}/rollback", {"version": "1"}),
        ("/data-sources", {"name": "Sneaky", "platform": "web"}),
        ("/settings", {"consent_enforcement": "on"}),
    ],
    ids=["toggle", "publish", "delete", "action-toggle", "rollback", "data-source", "settings"],
)
def test_a_viewers_form_post_is_refused(
    viewer: TestClient, api: Api, world: World, suffix: str, fields: dict[str, str]
) -> None:
    c, a = world.connector["id"], world.action["id"]
    token = csrf_of(viewer.get(f"{P}/").text)
    url = P + suffix.format(c=c, a=a)
    response = viewer.post(url, data={"csrf": token, **fields}, follow_redirects=False)
    assert response.status_code == 403
    assert "You cannot do that" in response.text
    after = api.get(f"/profiles/acme/main/connectors/{c}").json()
    assert after["enabled"] is True
    assert after["published_version"] == 2
    assert after["actions"][0]["enabled"] is True


def test_a_form_post_without_its_csrf_token_is_refused(admin: TestClient, world: World) -> None:
    url = f"{P}/connectors/{world.connector['id']}/toggle"
    assert admin.post(url, data={"enabled": "false"}, follow_redirects=False).status_code == 403
    wrong = admin.post(url, data={"enabled": "false", "csrf": "forged"}, follow_redirects=False)
    assert wrong.status_code == 403


def test_the_api_takes_the_session_with_its_csrf_header(admin: TestClient) -> None:
    token = csrf_of(admin.get(f"{P}/").text)
    assert admin.get("/api/v1/profiles").status_code == 401
    response = admin.get("/api/v1/profiles", headers={"X-CSRF-Token": token})
    assert response.status_code == 200
    assert response.json()["profiles"][0]["account"] == "acme"


def test_a_viewers_api_write_is_refused(viewer: TestClient, world: World) -> None:
    token = csrf_of(viewer.get(f"{P}/").text)
    response = viewer.patch(
        f"/api/v1/profiles/acme/main/connectors/{world.connector['id']}",
        json={"enabled": False},
        headers={"X-CSRF-Token": token},
    )
    assert response.status_code == 403


def test_toggle_publish_and_rollback_through_forms(
    admin: TestClient, api: Api, world: World
) -> None:
    c, a = world.connector["id"], world.action["id"]
    page = f"{P}/connectors/{c}"
    token = csrf_of(admin.get(page).text)
    response = admin.post(
        f"{page}/actions/{a}/toggle",
        data={"csrf": token, "enabled": "false", "next": page},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == page
    html = admin.get(page).text
    assert "switched off; publish to apply" in html
    assert "Unpublished changes" in html
    admin.post(f"{page}/publish", data={"csrf": token, "note": "pause orders", "next": page})
    versions = api.get(f"/profiles/acme/main/connectors/{c}/versions").json()["versions"]
    assert versions[0]["version"] == 3
    assert versions[0]["note"] == "pause orders"
    assert versions[0]["author"] == "admin@acme.test"
    rolled = admin.post(f"{page}/rollback", data={"csrf": token, "version": "2", "next": page})
    after = api.get(f"/profiles/acme/main/connectors/{c}").json()
    assert after["published_version"] == 4
    assert after["actions"][0]["enabled"] is True
    assert "Rolled back to version 2: published as version 4." in rolled.text


def test_a_refused_change_comes_back_as_a_message(
    admin: TestClient, api: Api, world: World
) -> None:
    c = world.connector["id"]
    made = api.post(
        f"/profiles/acme/main/connectors/{c}/actions",
        {"name": "Custom", "type": "send_custom_request"},
    ).json()
    page = f"{P}/connectors/{c}"
    token = csrf_of(admin.get(page).text)
    html = admin.post(
        f"{page}/actions/{made['id']}/toggle",
        data={"csrf": token, "enabled": "true", "next": page},
    ).text
    assert "INCOMPLETE" in html
    assert "map method, url first" in html


def test_delete_and_duplicate_a_connector(admin: TestClient, api: Api, world: World) -> None:
    c = world.connector["id"]
    token = csrf_of(admin.get(f"{P}/").text)
    response = admin.post(
        f"{P}/connectors/{c}/duplicate",
        data={"csrf": token, "name": "Orders (sandbox)"},
        follow_redirects=False,
    )
    copy_url = response.headers["location"]
    assert copy_url.startswith(f"{P}/connectors/con_")
    assert "Orders (sandbox)" in admin.get(copy_url).text
    admin.post(f"{P}/connectors/{c}/delete", data={"csrf": token})
    names = [x["name"] for x in api.get("/profiles/acme/main/connectors").json()["connectors"]]
    assert names == ["Orders (sandbox)"]
    assert admin.get(f"{P}/connectors/{c}").status_code == 404


def test_data_sources_and_settings_forms(admin: TestClient, api: Api, world: World) -> None:
    token = csrf_of(admin.get(f"{P}/data-sources").text)
    html = admin.post(
        f"{P}/data-sources", data={"csrf": token, "name": "iOS app", "platform": "mobile"}
    ).text
    assert "iOS app" in html
    assert "Mobile app" in html
    admin.post(
        f"{P}/settings",
        data={
            "csrf": token,
            "consent_enforcement": "on",
            "consent_missing": "deny",
            "visit_timeout_minutes": "45",
            "rate_limit_per_second": "",
        },
    )
    settings = api.get("/profiles/acme/main").json()
    assert settings["consent"] == {"enforcement": True, "missing": "deny"}
    assert settings["visit_timeout_minutes"] == 45
    assert settings["rate_limit_per_second"] is None
    refused = admin.post(f"{P}/settings", data={"csrf": token, "visit_timeout_minutes": "0"})
    assert "visit_timeout_minutes: must be a whole number of minutes" in refused.text


def test_downloads_take_the_session(admin: TestClient, viewer: TestClient) -> None:
    for client in (admin, viewer):
        errors = client.get(f"{P}/errors.csv")
        assert errors.status_code == 200
        assert errors.text.startswith("timestamp,account,profile,connector_id")
        metrics = client.get(f"{P}/reports.csv?bucket=day")
        assert metrics.text.startswith("start,connector_id,connector_name")


def test_template_preview_needs_the_csrf_header(admin: TestClient) -> None:
    token = csrf_of(admin.get(f"{P}/").text)
    body = {"template": "Order {{ order_id | upcase }}", "event": {"order_id": "a1"}}
    url = f"{P}/preview-template"
    assert admin.post(url, json=body).status_code == 403
    response = admin.post(url, json=body, headers={"X-CSRF-Token": token})
    assert response.json() == {"output": "Order A1", "error": None}
    broken = admin.post(
        url, json={"template": "{{ x | nope }}", "event": {}}, headers={"X-CSRF-Token": token}
    )
    assert "unknown filter" in broken.json()["error"]


def test_unknown_pages_get_the_html_error_page(admin: TestClient) -> None:
    response = admin.get(f"{P}/connectors/con_missing", headers={"accept": "text/html"})
    assert response.status_code == 404
    assert "Page not found" in response.text
    assert "no connector con_missing" in response.text
    other = admin.get("/no/such/page", headers={"accept": "text/html"})
    assert other.status_code == 404
    assert "Page not found" in other.text
    api_404 = admin.get("/api/v1/nothing")
    assert api_404.json()["error"] == "not found"


def test_a_profile_outside_the_users_list_is_forbidden(
    client: TestClient, api: Api, world: World, services: Services
) -> None:
    api.post("/profiles", {"account": "other", "profile": "main"})
    users.create_user(services.db, "scoped@acme.test", "editor", PASSWORD, ["acme/main"])
    scoped = browser(client, "scoped@acme.test")
    assert scoped.get("/p/other/main/").status_code == 403
    switcher = scoped.get(f"{P}/").text
    assert "other / main" not in switcher


def test_switching_profiles_and_catalog_shortcuts(admin: TestClient, api: Api) -> None:
    api.post("/profiles", {"account": "zeta", "profile": "dev"})
    assert admin.get("/switch?to=zeta/dev", follow_redirects=False).headers["location"] == (
        "/p/zeta/dev/"
    )
    admin.get("/p/zeta/dev/")
    shortcut = admin.get("/connectors/new?type=slack", follow_redirects=False)
    assert shortcut.headers["location"] == "/p/zeta/dev/connectors/new?type=slack"


def test_an_admin_without_profiles_can_create_the_first(
    client: TestClient, services: Services
) -> None:
    users.create_user(services.db, "first@acme.test", "admin", PASSWORD)
    log_in(client, "first@acme.test")
    page = client.get("/")
    assert "No profile yet" in page.text
    response = client.post(
        "/profiles/new",
        data={"csrf": csrf_of(page.text), "account": "newco", "profile": "main"},
        follow_redirects=False,
    )
    assert response.headers["location"] == "/p/newco/main/"
    assert "No connectors yet" in client.get("/p/newco/main/").text


def test_static_files_are_served(client: TestClient) -> None:
    for name in ("sluice.css", "sluice.js", "action_editor.js", "feed_builder.js", "forms.js"):
        assert client.get(f"/static/{name}").status_code == 200


def test_every_page_is_documented() -> None:
    guide = (Path(__file__).resolve().parents[2] / "docs" / "ui.md").read_text(encoding="utf-8")
    missing = []
    for router in ROUTERS:
        for route in router.routes:
            path = getattr(route, "path", "")
            if "GET" not in getattr(route, "methods", set()) or path == "/p/{account}/{profile}":
                continue
            shown = path.replace("/p/{account}/{profile}", "P")
            if f"`{shown}" not in guide:
                missing.append(shown)
    assert not missing, f"docs/ui.md does not mention {missing}"


def test_the_action_editor_offers_audiences(admin: TestClient, api: Api, world: World) -> None:
    made = api.post(
        "/profiles/acme/main/audiences",
        {"name": "Repeat buyers", "conditions": []},
    )
    if made.status_code == 404:
        pytest.skip("AudienceStream is not installed")
    assert made.status_code == 201, made.text
    html = admin.get(f"{P}/connectors/{world.connector['id']}/actions/new").text
    assert 'name="source_kind" value="audience"' in html
    assert "Repeat buyers" in html
