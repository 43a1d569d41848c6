from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import insert, select

from sluice import timeutil
from sluice.config import revision
from sluice.services import Services
from sluice.storage.tables import connector_health, connectors, counters
from tests.api.connector_helpers import SECRET, add_action, add_webhook, publish
from tests.conftest import Api, make_token


def _secrets(services: Services, connector_id: str) -> dict[str, Any]:
    with services.db.read() as conn:
        blob = conn.execute(
            select(connectors.c.secrets).where(connectors.c.id == connector_id)
        ).scalar()
    return services.box.decrypt(blob)


def test_create_shows_the_connector_with_secrets_masked(api: Api, profile: str) -> None:
    created = add_webhook(api, profile, configuration={"auth_type": "bearer", "token": SECRET})
    assert created["id"].startswith("con_")
    assert created == {
        "id": created["id"],
        "type": "webhook",
        "name": "Webhook Prod",
        "configuration": {"auth_type": "bearer", "token": "********"},
        "enabled": False,
        "published_version": None,
        "has_unpublished_changes": True,
        "health": {"state": "ok", "since": None, "reason": None},
        "actions": [],
        "counts": {
            "triggered": 0,
            "success": 0,
            "error": 0,
            "retried": 0,
            "filtered_consent": 0,
            "dropped": 0,
        },
    }
    assert api.get(f"{profile}/connectors/{created['id']}").json() == created


def test_secrets_are_encrypted_at_rest(api: Api, profile: str, services: Services) -> None:
    created = add_webhook(api, profile, configuration={"auth_type": "basic", "password": SECRET})
    with services.db.read() as conn:
        row = conn.execute(select(connectors).where(connectors.c.id == created["id"])).one()
    assert SECRET.encode() not in row.secrets
    assert SECRET not in row.configuration
    assert _secrets(services, created["id"]) == {"password": SECRET}


@pytest.mark.parametrize(
    "value", [1e308, 10**30, -(2**53)], ids=["huge-float", "huge-int", "huge-negative"]
)
def test_a_whole_number_too_big_to_store_is_refused(api: Api, profile: str, value: Any) -> None:
    # Found by probing beside the management API fuzz: orjson refused it, a 500.
    created = add_webhook(api, profile)
    url = f"{profile}/connectors/{created['id']}"
    response = api.patch(url, {"configuration": {"max_attempts": value}})
    assert response.status_code == 422, response.text
    assert response.json()["details"] == [
        {
            "field": "configuration.max_attempts",
            "message": "must be a whole number of at most 9007199254740991",
        }
    ]


def test_patch_merges_configuration_key_by_key(api: Api, profile: str, services: Services) -> None:
    created = add_webhook(
        api, profile, configuration={"auth_type": "basic", "username": "u", "password": SECRET}
    )
    url = f"{profile}/connectors/{created['id']}"
    # An omitted secret is kept; so is one sent back masked.
    patched = api.patch(url, {"configuration": {"username": "v", "password": "********"}})
    assert patched.status_code == 200, patched.text
    assert patched.json()["configuration"] == {
        "auth_type": "basic",
        "username": "v",
        "password": "********",
    }
    assert _secrets(services, created["id"]) == {"password": SECRET}
    # null clears a secret, and a non-secret value (back to its default).
    cleared = api.patch(url, {"configuration": {"password": None, "username": None}}).json()
    assert cleared["configuration"] == {"auth_type": "basic"}
    assert _secrets(services, created["id"]) == {}
    renamed = api.patch(url, {"name": "Webhook Sandbox", "enabled": True}).json()
    assert (renamed["name"], renamed["enabled"]) == ("Webhook Sandbox", True)
    # The object sent back whole is fine; its type cannot change.
    assert api.patch(url, renamed).status_code == 200
    assert api.patch(url, {"type": "slack"}).json()["details"][0]["field"] == "type"
    assert api.patch(url, {"colour": "red"}).status_code == 422


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {"type": "webhook", "name": "W", "configuration": {"colour": "red"}},
            "configuration.colour",
        ),
        (
            {"type": "webhook", "name": "W", "configuration": {"auth_type": "digest"}},
            "configuration.auth_type",
        ),
        (
            {"type": "webhook", "name": "W", "configuration": {"timeout_seconds": "ten"}},
            "configuration.timeout_seconds",
        ),
        (
            {"type": "webhook", "name": "W", "configuration": {"max_attempts": 2.5}},
            "configuration.max_attempts",
        ),
        (
            {"type": "webhook", "name": "W", "configuration": {"password": 42}},
            "configuration.password",
        ),
        ({"type": "webhook", "name": ""}, "name"),
        ({"type": "webhook", "name": "W", "enabled": "yes"}, "enabled"),
        ({"type": "webhook", "name": "W", "colour": "red"}, "colour"),
        ({"type": "nope", "name": "W"}, "type"),
    ],
    ids=[
        "unknown-key",
        "enum",
        "number",
        "integer",
        "secret-type",
        "name",
        "enabled",
        "body-key",
        "type",
    ],
)
def test_create_validates(api: Api, profile: str, body: dict[str, Any], field: str) -> None:
    response = api.post(f"{profile}/connectors", body)
    assert response.status_code == 422, response.text
    assert response.json()["details"][0]["field"] == field


def test_unknown_type_lists_the_valid_ones(api: Api, profile: str) -> None:
    response = api.post(f"{profile}/connectors", {"type": "nope", "name": "X"})
    assert "webhook" in response.json()["error"]
    assert "slack" in response.json()["details"][0]["valid"]


def test_landing_list_has_counts_and_health(api: Api, profile: str, services: Services) -> None:
    first = add_webhook(api, profile, name="B hook")
    second = add_webhook(api, profile, name="A hook")
    action = add_action(api, profile, first["id"])
    now = timeutil.now()
    minute = int(now // 60)
    with services.db.begin() as conn:
        profile_id = conn.execute(
            select(connectors.c.profile_id).where(connectors.c.id == first["id"])
        ).scalar()
        base = {
            "profile_id": profile_id,
            "connector_id": first["id"],
            "action_id": action["id"],
            **dict.fromkeys(("triggered", "success", "error", "retried"), 0),
            **dict.fromkeys(("filtered_consent", "dropped"), 0),
        }
        conn.execute(
            insert(counters),
            [
                {**base, "minute": minute, "triggered": 5, "success": 3, "error": 1, "dropped": 1},
                {**base, "minute": minute - 10, "triggered": 2, "success": 2, "retried": 4},
                {**base, "minute": minute - 60 * 25, "triggered": 100, "success": 100},
            ],
        )
        conn.execute(
            insert(connector_health).values(
                connector_id=second["id"], state="paused", since=now, reason="40% failed",
                pauses=1, updated_at=now,
            )
        )  # fmt: skip
    listed = api.get(f"{profile}/connectors").json()["connectors"]
    assert [c["name"] for c in listed] == ["A hook", "B hook"]
    by_name = {c["name"]: c for c in listed}
    assert by_name["B hook"]["counts"] == {
        "triggered": 7,
        "success": 5,
        "error": 1,
        "retried": 4,
        "filtered_consent": 0,
        "dropped": 1,
    }
    assert by_name["B hook"]["actions"][0]["id"] == action["id"]
    assert by_name["B hook"]["actions"][0]["counts"]["success"] == 5
    assert by_name["A hook"]["health"]["state"] == "paused"
    assert by_name["A hook"]["health"]["reason"] == "40% failed"
    assert by_name["A hook"]["health"]["since"].endswith("Z")


def test_resume_resets_health(api: Api, profile: str, services: Services) -> None:
    created = add_webhook(api, profile)
    now = timeutil.now()
    with services.db.begin() as conn:
        conn.execute(
            insert(connector_health).values(
                connector_id=created["id"], state="unhealthy", since=now, reason="failing",
                pauses=5, updated_at=now,
            )
        )  # fmt: skip
    response = api.post(f"{profile}/connectors/{created['id']}/resume")
    assert response.status_code == 200, response.text
    assert response.json()["health"]["state"] == "ok"
    assert api.post(f"{profile}/connectors/con_nope/resume").status_code == 404


def test_delete_takes_effect_at_once(api: Api, profile: str, services: Services) -> None:
    created = add_webhook(api, profile)
    add_action(api, profile, created["id"])
    assert publish(api, profile, created["id"]).status_code == 201
    with services.db.read() as conn:
        before = revision.current(conn)
    assert api.delete(f"{profile}/connectors/{created['id']}").status_code == 204
    with services.db.read() as conn:
        assert revision.current(conn) > before
    missing = api.get(f"{profile}/connectors/{created['id']}")
    assert missing.status_code == 404
    assert missing.json() == {"error": f"no connector {created['id']}", "details": []}
    assert api.get(f"{profile}/connectors").json() == {"connectors": []}


def test_duplicate_copies_actions_switched_off_without_secrets(
    api: Api, profile: str, services: Services
) -> None:
    original = add_webhook(
        api, profile, configuration={"auth_type": "bearer", "token": SECRET}, enabled=True
    )
    action = add_action(api, profile, original["id"], enabled=True)
    response = api.post(f"{profile}/connectors/{original['id']}/duplicate", {"name": "Copy"})
    assert response.status_code == 201, response.text
    copy = response.json()
    assert copy["id"] != original["id"]
    assert (copy["name"], copy["enabled"], copy["published_version"]) == ("Copy", False, None)
    assert copy["configuration"] == {"auth_type": "bearer"}
    assert _secrets(services, copy["id"]) == {}
    [copied] = copy["actions"]
    assert copied["id"] != action["id"]
    assert copied["enabled"] is False
    assert (copied["name"], copied["mappings"]) == (action["name"], action["mappings"])
    assert copied["connector_id"] == copy["id"]
    missing_name = api.post(f"{profile}/connectors/{original['id']}/duplicate", {})
    assert missing_name.status_code == 422


def test_bulk_toggle(api: Api, profile: str) -> None:
    ids = [add_webhook(api, profile, name=f"Hook {i}")["id"] for i in range(3)]
    response = api.post(f"{profile}/connectors/bulk", {"ids": ids[:2], "enabled": True})
    assert response.status_code == 200, response.text
    assert [c["enabled"] for c in response.json()["connectors"]] == [True, True]
    listed = {c["id"]: c["enabled"] for c in api.get(f"{profile}/connectors").json()["connectors"]}
    assert listed == {ids[0]: True, ids[1]: True, ids[2]: False}
    unknown = api.post(
        f"{profile}/connectors/bulk", {"ids": [ids[0], "con_nope"], "enabled": False}
    )
    assert unknown.status_code == 404
    assert api.get(f"{profile}/connectors/{ids[0]}").json()["enabled"] is True
    bad = api.post(f"{profile}/connectors/bulk", {"ids": ids, "enabled": "no"})
    assert bad.status_code == 422


def test_viewer_reads_but_cannot_change(api: Api, profile: str, services: Services) -> None:
    created = add_webhook(api, profile)
    viewer = Api(api.client, make_token(services, "viewer"))
    assert viewer.get(f"{profile}/connectors").status_code == 200
    assert viewer.get(f"{profile}/connectors/{created['id']}").status_code == 200
    assert viewer.patch(f"{profile}/connectors/{created['id']}", {"name": "X"}).status_code == 403
    assert viewer.post(f"{profile}/connectors", {"type": "webhook", "name": "X"}).status_code == 403
    other = Api(api.client, make_token(services, "editor", ["acme/other"]))
    assert other.get(f"{profile}/connectors").status_code == 403


def test_connectors_of_another_profile_are_not_found(api: Api, profile: str) -> None:
    created = add_webhook(api, profile)
    assert api.post("/profiles", {"account": "acme", "profile": "dev"}).status_code == 201
    response = api.get(f"/profiles/acme/dev/connectors/{created['id']}")
    assert response.status_code == 404
