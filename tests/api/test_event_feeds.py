from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from sluice.config import event_feeds
from sluice.services import Services
from sluice.storage.tables import profiles
from tests.api.usage import add_connector_using
from tests.conftest import Api

PURCHASES = {
    "name": "Purchases",
    "conditions": [[{"attribute": "tealium_event", "operator": "equals", "value": "purchase"}]],
}


def test_builtin_all_events(api: Api, profile: str) -> None:
    listed = api.get(f"{profile}/event-feeds").json()["event_feeds"]
    assert listed == [
        {
            "id": "all_events",
            "name": "All Events",
            "conditions": [],
            "builtin": True,
            "created_at": None,
            "updated_at": None,
        }
    ]
    assert api.get(f"{profile}/event-feeds/all_events").json() == listed[0]
    patched = api.patch(f"{profile}/event-feeds/all_events", {"name": "Everything"})
    assert patched.status_code == 409
    assert "built-in" in patched.json()["error"]
    deleted = api.delete(f"{profile}/event-feeds/all_events")
    assert deleted.status_code == 409
    assert "built-in" in deleted.json()["error"]
    assert api.post(f"{profile}/event-feeds", {"name": "all events"}).status_code == 409


def test_create_list_get_patch_delete(api: Api, profile: str) -> None:
    created = api.post(f"{profile}/event-feeds", PURCHASES)
    assert created.status_code == 201, created.text
    feed = created.json()
    assert feed["id"].startswith("feed_")
    assert feed["name"] == "Purchases"
    assert feed["builtin"] is False
    assert feed["conditions"][0][0]["attribute"] == "tealium_event"
    assert feed["created_at"].endswith("Z")
    listed = api.get(f"{profile}/event-feeds").json()["event_feeds"]
    assert [f["id"] for f in listed] == ["all_events", feed["id"]]
    assert api.get(f"{profile}/event-feeds/{feed['id']}").json() == feed
    new_conditions = [[{"attribute": "order_total", "operator": "gt", "value": 100}]]
    patched = api.patch(f"{profile}/event-feeds/{feed['id']}", {"conditions": new_conditions})
    assert patched.status_code == 200
    assert patched.json()["name"] == "Purchases"
    assert patched.json()["conditions"][0][0]["operator"] == "gt"
    assert api.delete(f"{profile}/event-feeds/{feed['id']}").status_code == 204
    assert api.get(f"{profile}/event-feeds/{feed['id']}").status_code == 404


def test_empty_conditions_match_everything(api: Api, profile: str) -> None:
    created = api.post(f"{profile}/event-feeds", {"name": "Everything else"})
    assert created.status_code == 201
    assert created.json()["conditions"] == []


@pytest.mark.parametrize(
    "conditions",
    [
        [[{"attribute": "a", "operator": "resembles", "value": 1}]],
        [{"attribute": "a", "operator": "equals", "value": 1}],
        "tealium_event = purchase",
    ],
    ids=["unknown-operator", "not-nested", "not-a-list"],
)
def test_invalid_conditions_are_422(api: Api, profile: str, conditions: Any) -> None:
    response = api.post(f"{profile}/event-feeds", {"name": "Bad", "conditions": conditions})
    assert response.status_code == 422, response.text
    assert response.json()["details"][0]["field"].startswith("conditions")


def test_duplicate_name_is_409(api: Api, profile: str) -> None:
    assert api.post(f"{profile}/event-feeds", PURCHASES).status_code == 201
    assert api.post(f"{profile}/event-feeds", {**PURCHASES, "name": "PURCHASES"}).status_code == 409


@pytest.mark.parametrize("published", [False, True], ids=["draft", "published"])
def test_delete_in_use_is_409_naming_the_connector(
    api: Api, profile: str, services: Services, published: bool
) -> None:
    feed = api.post(f"{profile}/event-feeds", PURCHASES).json()
    add_connector_using(
        services,
        "acme",
        "main",
        {"event_feed": feed["id"], "data_source": None},
        name="ClickSend Prod",
        published=published,
    )
    response = api.delete(f"{profile}/event-feeds/{feed['id']}")
    assert response.status_code == 409
    assert "ClickSend Prod" in response.json()["error"]
    assert api.get(f"{profile}/event-feeds/{feed['id']}").status_code == 200


def test_load_feeds(api: Api, profile: str, services: Services) -> None:
    feed = api.post(f"{profile}/event-feeds", PURCHASES).json()
    with services.db.read() as conn:
        profile_id = conn.execute(select(profiles.c.id)).scalar_one()
        loaded = event_feeds.load_feeds(conn, profile_id)
    assert [f.id for f in loaded] == ["all_events", feed["id"]]
    assert loaded[0].builtin
    assert loaded[1].conditions == feed["conditions"]


def test_a_number_too_large_to_store_is_422(api: Api, profile: str) -> None:
    # Found by probing beside the management API fuzz: orjson refused it, a 500.
    condition = {"attribute": "order_total", "operator": "equals", "value": 10**30}
    response = api.post(f"{profile}/event-feeds", {"name": "Big", "conditions": [[condition]]})
    assert response.status_code == 422, response.text
    assert response.json()["details"] == [{"field": "body", "message": "number too large"}]
    assert "too large" in response.json()["error"]
