from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import insert, select

from sluice import timeutil
from sluice.config.published import load_published
from sluice.services import Services
from sluice.storage.tables import audiences, profiles
from tests.api.connector_helpers import CUSTOM_MAPPINGS, add_action, add_slack, add_webhook
from tests.conftest import Api


def _audience(services: Services, name: str = "Repeat buyers") -> str:
    now = timeutil.now()
    with services.db.begin() as conn:
        profile_id = conn.execute(select(profiles.c.id)).scalar()
        conn.execute(
            insert(audiences).values(
                id="aud_1", profile_id=profile_id, name=name, conditions="[]",
                created_at=now, updated_at=now,
            )
        )  # fmt: skip
    return "aud_1"


def test_create_action_defaults_and_status(api: Api, profile: str) -> None:
    connector = add_webhook(api, profile)
    response = api.post(
        f"{profile}/connectors/{connector['id']}/actions",
        {"name": "Custom", "type": "send_custom_request"},
    )
    assert response.status_code == 201, response.text
    action = response.json()
    assert action["id"].startswith("act_")
    assert action == {
        "id": action["id"],
        "connector_id": connector["id"],
        "name": "Custom",
        "type": "send_custom_request",
        "enabled": False,
        "source": {"event_feed": "all_events", "data_source": None},
        "mappings": [],
        "consent_categories": [],
        "status": action["status"],
    }
    assert action["status"]["state"] == "INCOMPLETE"
    assert sorted(action["status"]["missing"]) == ["method", "url"]
    assert set(action["status"]["groups"].values()) == {"INCOMPLETE"}
    got = api.get(f"{profile}/connectors/{connector['id']}/actions/{action['id']}")
    assert got.json() == action
    listed = api.get(f"{profile}/connectors/{connector['id']}/actions").json()
    assert listed == {"actions": [action]}
    assert (
        api.get(f"{profile}/connectors/{connector['id']}").json()["actions"][0]["id"]
        == action["id"]
    )


def test_incomplete_action_cannot_be_switched_on(api: Api, profile: str) -> None:
    connector = add_webhook(api, profile)
    url = f"{profile}/connectors/{connector['id']}/actions"
    refused = api.post(
        url,
        {
            "name": "Half",
            "type": "send_custom_request",
            "enabled": True,
            "mappings": [{"parameter": "method", "value": "GET"}],
        },
    )
    assert refused.status_code == 422
    assert refused.json()["details"][0]["missing"] == ["url"]
    assert "url" in refused.json()["error"]
    action = add_action(
        api, profile, connector["id"], mappings=[{"parameter": "method", "value": "GET"}]
    )
    assert api.patch(f"{url}/{action['id']}", {"enabled": True}).status_code == 422
    completed = api.patch(f"{url}/{action['id']}", {"mappings": CUSTOM_MAPPINGS, "enabled": True})
    assert completed.status_code == 200, completed.text
    assert completed.json()["status"] == {
        "state": "COMPLETED",
        "groups": completed.json()["status"]["groups"],
        "missing": [],
    }
    # An action switched on cannot lose a required mapping.
    emptied = api.patch(f"{url}/{action['id']}", {"mappings": []})
    assert emptied.status_code == 422


def test_patch_replaces_fields_whole(api: Api, profile: str) -> None:
    connector = add_webhook(api, profile)
    action = add_action(api, profile, connector["id"])
    url = f"{profile}/connectors/{connector['id']}/actions/{action['id']}"
    new_mappings = [
        {"parameter": "method", "value": "PUT"},
        {"parameter": "url", "value": "https://example.com/other"},
    ]
    patched = api.patch(url, {"mappings": new_mappings, "name": "Renamed"}).json()
    assert [m["value"] for m in patched["mappings"]] == ["PUT", "https://example.com/other"]
    assert patched["name"] == "Renamed"
    assert api.patch(url, {"type": "send_event_data"}).status_code == 422
    assert api.patch(url, {"colour": "red"}).status_code == 422
    assert api.delete(url).status_code == 204
    assert api.get(url).status_code == 404


@pytest.mark.parametrize(
    ("source", "field"),
    [
        ({"event_feed": "feed_nope"}, "source.event_feed"),
        ({"event_feed": "all_events", "data_source": "ds_nope"}, "source.data_source"),
        ({"event_feed": "all_events", "colour": 1}, "source.colour"),
        ({"audience": "aud_nope", "trigger": "joined"}, "source.audience"),
        ({"audience": "aud_1", "trigger": "sometimes"}, "source.trigger"),
        ({"audience": "aud_1", "trigger": "joined", "delay_hours": 2}, "source.delay_hours"),
        (
            {"audience": "aud_1", "trigger": "in_at_end_of_visit", "delay_hours": 9000},
            "source.delay_hours",
        ),
        (
            {"audience": "aud_1", "trigger": "joined", "frequency_cap": {"priority": "high"}},
            "source.frequency_cap.priority",
        ),
        ("all_events", "source"),
        ({}, "source"),
    ],
    ids=[
        "feed",
        "data-source",
        "unknown-key",
        "audience",
        "trigger",
        "delay-trigger",
        "delay-range",
        "cap",
        "not-object",
        "empty",
    ],
)
def test_source_validation(
    api: Api, profile: str, services: Services, source: Any, field: str
) -> None:
    _audience(services)
    connector = add_webhook(api, profile)
    response = api.post(
        f"{profile}/connectors/{connector['id']}/actions",
        {"name": "A", "type": "send_event_data", "source": source},
    )
    assert response.status_code == 422, response.text
    assert response.json()["details"][0]["field"] == field


def test_sources_that_exist(api: Api, profile: str, services: Services) -> None:
    audience = _audience(services)
    feed = api.post(f"{profile}/event-feeds", {"name": "Purchases", "conditions": []}).json()
    source = api.post(f"{profile}/data-sources", {"name": "Web", "platform": "web"}).json()
    connector = add_webhook(api, profile)
    url = f"{profile}/connectors/{connector['id']}/actions"
    by_feed = api.post(
        url,
        {
            "name": "Feed",
            "type": "send_event_data",
            "source": {"event_feed": feed["id"], "data_source": source["id"]},
        },
    )
    assert by_feed.status_code == 201, by_feed.text
    assert by_feed.json()["source"] == {"event_feed": feed["id"], "data_source": source["id"]}
    visitor_source = {
        "audience": audience,
        "trigger": "in_at_end_of_visit",
        "delay_hours": 24,
        "frequency_cap": {"priority": 1, "cooldown_group": "promo"},
    }
    by_audience = api.post(
        url, {"name": "Aud", "type": "send_event_data", "source": visitor_source}
    )
    assert by_audience.status_code == 201, by_audience.text
    assert by_audience.json()["source"] == visitor_source


def test_consent_categories(api: Api, profile: str) -> None:
    webhook = add_webhook(api, profile)
    chosen = add_action(
        api, profile, webhook["id"], consent_categories=["Display_Ads", "email", "EMAIL"]
    )
    assert chosen["consent_categories"] == ["display ads", "email"]
    bad = api.post(
        f"{profile}/connectors/{webhook['id']}/actions",
        {"name": "X", "type": "send_event_data", "consent_categories": ["telepathy"]},
    )
    assert bad.status_code == 422
    assert bad.json()["details"][0]["field"] == "consent_categories[0]"
    slack = add_slack(api, profile)
    url = f"{profile}/connectors/{slack['id']}/actions"
    fixed = api.post(url, {"name": "Alert", "type": "post_channel_message"}).json()
    assert fixed["consent_categories"] == ["monitoring"]
    same = api.post(
        url, {"name": "Alert", "type": "post_channel_message", "consent_categories": ["Monitoring"]}
    )
    assert same.status_code == 201
    other = api.post(
        url, {"name": "Alert", "type": "post_channel_message", "consent_categories": ["email"]}
    )
    assert other.status_code == 422
    assert api.patch(f"{url}/{fixed['id']}", {"consent_categories": []}).status_code == 422


def test_unknown_action_type_lists_the_valid_ones(api: Api, profile: str) -> None:
    connector = add_webhook(api, profile)
    response = api.post(
        f"{profile}/connectors/{connector['id']}/actions", {"name": "X", "type": "send_sms"}
    )
    assert response.status_code == 422
    assert response.json()["details"][0]["valid"] == [
        "send_custom_request",
        "send_event_data",
        "send_batched_data",
    ]


def test_invalid_mapping_names_the_field(api: Api, profile: str) -> None:
    connector = add_webhook(api, profile)
    response = api.post(
        f"{profile}/connectors/{connector['id']}/actions",
        {
            "name": "X",
            "type": "send_event_data",
            "mappings": [{"parameter": "url", "attribute": "u", "transforms": ["shout"]}],
        },
    )
    assert response.status_code == 422
    assert response.json()["details"][0]["field"].startswith("mappings[0]")


def test_bulk_toggle_actions(api: Api, profile: str) -> None:
    connector = add_webhook(api, profile)
    ready = [add_action(api, profile, connector["id"], name=f"A{i}")["id"] for i in range(2)]
    half = add_action(api, profile, connector["id"], name="Half", mappings=[])["id"]
    url = f"{profile}/connectors/{connector['id']}/actions/bulk"
    response = api.post(url, {"ids": ready, "enabled": True})
    assert response.status_code == 200, response.text
    assert [a["enabled"] for a in response.json()["actions"]] == [True, True]
    refused = api.post(url, {"ids": [*ready, half], "enabled": True})
    assert refused.status_code == 422
    assert "Half" in refused.json()["error"]
    off = api.post(url, {"ids": ready, "enabled": False}).json()["actions"]
    assert [a["enabled"] for a in off] == [False, False]
    assert api.post(url, {"ids": ["act_nope"], "enabled": False}).status_code == 404


def test_reassign_moves_to_a_connector_of_the_same_type(api: Api, profile: str) -> None:
    dev = add_webhook(api, profile, name="Dev")
    prod = add_webhook(api, profile, name="Prod")
    slack = add_slack(api, profile)
    for connector in (dev, prod):
        api.post(f"{profile}/connectors/{connector['id']}/publish")
    action = add_action(api, profile, dev["id"], enabled=True)
    api.post(f"{profile}/connectors/{dev['id']}/publish")
    url = f"{profile}/connectors/{dev['id']}/actions/{action['id']}/reassign"
    wrong = api.post(url, {"connector_id": slack["id"]})
    assert wrong.status_code == 422
    assert wrong.json()["details"][0]["field"] == "connector_id"
    moved = api.post(url, {"connector_id": prod["id"]})
    assert moved.status_code == 200, moved.text
    assert moved.json()["connector_id"] == prod["id"]
    assert moved.json()["mappings"] == action["mappings"]
    after = {c["id"]: c for c in api.get(f"{profile}/connectors").json()["connectors"]}
    assert after[dev["id"]]["actions"] == []
    assert [a["id"] for a in after[prod["id"]]["actions"]] == [action["id"]]
    assert after[dev["id"]]["has_unpublished_changes"] is True
    assert after[prod["id"]]["has_unpublished_changes"] is True
    assert api.get(f"{profile}/connectors/{dev['id']}/actions/{action['id']}").status_code == 404


def _mapped(action: dict[str, Any]) -> dict[str, Any]:
    return {m["parameter"]: m.get("value") for m in action["mappings"]}


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("keep", {"method": "GET", "url": "https://example.com/hook", "body": "b"}),
        ("overwrite", {"method": "POST", "url": "https://example.com/hook", "body": "b"}),
    ],
    ids=["keep", "overwrite"],
)
def test_copy_mappings(api: Api, profile: str, mode: str, expected: dict[str, Any]) -> None:
    connector = add_webhook(api, profile)
    source = add_action(api, profile, connector["id"], name="From")
    target = add_action(
        api,
        profile,
        connector["id"],
        name="To",
        mappings=[{"parameter": "method", "value": "GET"}, {"parameter": "body", "value": "b"}],
    )
    response = api.post(
        f"{profile}/connectors/{connector['id']}/actions/{source['id']}/copy-mappings",
        {"to_action_id": target["id"], "mode": mode},
    )
    assert response.status_code == 200, response.text
    assert response.json()["id"] == target["id"]
    assert _mapped(response.json()) == expected


def test_copy_mappings_keeps_only_parameters_of_the_target_type(api: Api, profile: str) -> None:
    connector = add_webhook(api, profile)
    source = add_action(api, profile, connector["id"], name="From")
    target = api.post(
        f"{profile}/connectors/{connector['id']}/actions",
        {"name": "Events", "type": "send_event_data"},
    ).json()
    base = f"{profile}/connectors/{connector['id']}/actions/{source['id']}/copy-mappings"
    copied = api.post(base, {"to_action_id": target["id"], "mode": "overwrite"}).json()
    assert _mapped(copied) == {"url": "https://example.com/hook"}
    assert api.post(base, {"to_action_id": target["id"], "mode": "merge"}).status_code == 422
    assert api.post(base, {"to_action_id": "act_nope"}).status_code == 422


@pytest.mark.parametrize(
    ("to_action_id", "message"),
    [
        ({}, "must be an action id (a string)"),
        (["act_1"], "must be an action id (a string)"),
        (7, "must be an action id (a string)"),
        (None, "is required"),
        ("", "is required"),
    ],
    ids=["object", "list", "number", "null", "empty"],
)
def test_copy_mappings_refuses_a_target_that_is_not_an_id(
    api: Api, profile: str, to_action_id: Any, message: str
) -> None:
    # Found by the management API fuzz: an object here was bound into SQL and answered 500.
    connector = add_webhook(api, profile)
    source = add_action(api, profile, connector["id"], name="From")
    response = api.post(
        f"{profile}/connectors/{connector['id']}/actions/{source['id']}/copy-mappings",
        {"to_action_id": to_action_id, "mode": "keep"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["details"] == [{"field": "to_action_id", "message": message}]


def test_actions_are_drafts_until_published(api: Api, profile: str, services: Services) -> None:
    connector = add_webhook(api, profile)
    api.post(f"{profile}/connectors/{connector['id']}/publish")
    action = add_action(api, profile, connector["id"])
    assert api.get(f"{profile}/connectors/{connector['id']}").json()["has_unpublished_changes"]
    with services.db.read() as conn:
        [live] = load_published(conn, services.box)
    assert live.actions == []
    assert api.post(f"{profile}/connectors/{connector['id']}/publish").status_code == 201
    with services.db.read() as conn:
        [live] = load_published(conn, services.box)
    assert [a["id"] for a in live.actions] == [action["id"]]


def test_a_mapping_value_too_large_to_store_is_422(api: Api, profile: str) -> None:
    # Found by probing beside the management API fuzz: orjson refused it, a 500.
    connector = add_webhook(api, profile)
    response = api.post(
        f"{profile}/connectors/{connector['id']}/actions",
        {
            "name": "Big",
            "type": "send_event_data",
            "mappings": [{"parameter": "url", "value": 10**30}],
        },
    )
    assert response.status_code == 422, response.text
    assert response.json()["details"] == [{"field": "body", "message": "number too large"}]
