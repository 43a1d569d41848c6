from __future__ import annotations

from sqlalchemy import insert, select

from sluice import timeutil
from sluice.services import Services
from sluice.storage.tables import audiences, profiles
from tests.api.connector_helpers import add_action, add_slack, add_webhook
from tests.conftest import Api, make_token

Q = {"account": "acme", "profile": "main"}


def _search(api: Api, q: str, **params: str) -> list[dict[str, object]]:
    response = api.get("/search", params={"q": q, **params})
    assert response.status_code == 200, response.text
    results: list[dict[str, object]] = response.json()["results"]
    return results


def test_catalog_only_without_a_profile(api: Api, profile: str) -> None:
    add_slack(api, profile, name="Slack Alerts")
    results = _search(api, "sla")
    assert {r["kind"] for r in results} == {"connector_type"}  # no profile: catalog only
    assert results[:1] == [
        {
            "kind": "connector_type",
            "id": "slack",
            "title": "Slack",
            "subtitle": results[0]["subtitle"],
            "url": "/catalog/slack",
            "options": [{"title": "Add connector", "url": "/connectors/new?type=slack"}],
        }
    ]


def test_profile_objects_with_urls_and_options(api: Api, profile: str) -> None:
    connector = add_webhook(api, profile, name="Orders Webhook")
    action = add_action(api, profile, connector["id"], name="Order shipped")
    feed = api.post(f"{profile}/event-feeds", {"name": "Orders feed", "conditions": []}).json()
    results = {r["id"]: r for r in _search(api, "order", **Q)}
    base = f"/p/acme/main/connectors/{connector['id']}"
    assert results[connector["id"]]["kind"] == "connector"
    assert results[connector["id"]]["url"] == base
    assert results[connector["id"]]["options"] == [
        {"title": "Add action", "url": f"{base}/actions/new"},
        {"title": "Configuration", "url": f"{base}#configuration"},
        {"title": "Reporting", "url": f"{base}/reports"},
        {"title": "Versions", "url": f"{base}/versions"},
    ]
    assert results[action["id"]]["kind"] == "action"
    assert results[action["id"]]["url"] == f"{base}/actions/{action['id']}"
    assert results[feed["id"]]["url"] == f"/p/acme/main/event-feeds/{feed['id']}"
    assert _search(api, "all ev", **Q)[0]["id"] == "all_events"


def test_audiences_are_found(api: Api, profile: str, services: Services) -> None:
    now = timeutil.now()
    with services.db.begin() as conn:
        profile_id = conn.execute(select(profiles.c.id)).scalar()
        conn.execute(
            insert(audiences).values(
                id="aud_7", profile_id=profile_id, name="Repeat buyers", conditions="[]",
                created_at=now, updated_at=now,
            )
        )  # fmt: skip
    [found] = _search(api, "repeat", **Q)
    assert (found["kind"], found["url"]) == ("audience", "/p/acme/main/audiences/aud_7")


def test_prefix_before_substring_before_fuzzy(api: Api, profile: str) -> None:
    for name in ("Xylophone fuzzy", "Crm Sync", "Sync Crm", "Async jobs"):
        add_webhook(api, profile, name=name)
    titles = [r["title"] for r in _search(api, "sync", **Q)]
    assert titles[:3] == ["Sync Crm", "Crm Sync", "Async jobs"]
    fuzzy = [r["title"] for r in _search(api, "xylfz", **Q)]
    assert fuzzy == ["Xylophone fuzzy"]
    typo = [r["title"] for r in _search(api, "snyc", **Q)]
    assert typo[:2] in (["Crm Sync", "Sync Crm"], ["Sync Crm", "Crm Sync"])


def test_index_follows_edits(api: Api, profile: str) -> None:
    connector = add_webhook(api, profile, name="Alpha")

    def mine(q: str) -> list[dict[str, object]]:  # leave out catalog types ("beta" ~ "Meta")
        return [r for r in _search(api, q, **Q) if r["kind"] != "connector_type"]

    assert [r["title"] for r in mine("alph")] == ["Alpha"]
    api.patch(f"{profile}/connectors/{connector['id']}", {"name": "Beta"})
    assert mine("alph") == []
    assert [r["title"] for r in mine("beta")] == ["Beta"]
    action = add_action(api, profile, connector["id"], name="Gamma ray")
    assert [r["id"] for r in mine("gamma")] == [action["id"]]
    api.delete(f"{profile}/connectors/{connector['id']}/actions/{action['id']}")
    assert mine("gamma") == []


def test_at_most_twenty(api: Api, profile: str) -> None:
    connector = add_webhook(api, profile, name="Many")
    for i in range(25):
        add_action(api, profile, connector["id"], name=f"Item {i}")
    assert len(_search(api, "item", **Q)) == 20
    assert _search(api, "", **Q) == []


def test_needs_viewer_access_to_the_profile(api: Api, profile: str, services: Services) -> None:
    other = Api(api.client, make_token(services, "viewer", ["acme/other"]))
    assert other.get("/search", params={"q": "a", **Q}).status_code == 403
    assert other.get("/search", params={"q": "slack"}).status_code == 200
    assert api.get("/search", params={"q": "a", "account": "nope"}).status_code == 404
    assert api.client.get("/api/v1/search?q=a").status_code == 401
