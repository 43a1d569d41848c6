from __future__ import annotations

from tests.conftest import Api

SUMMARY_KEYS = {"id", "name", "description", "icon", "data_types", "action_count"}
DETAIL_KEYS = {
    "id",
    "name",
    "description",
    "what_you_need",
    "data_types",
    "resources",
    "icon",
    "configuration",
    "actions",
}
FIELD_KEYS = {"name", "title", "type", "required", "secret", "group", "help", "default", "enum"}
ACTION_KEYS = {
    "id",
    "name",
    "description",
    "consent_categories",
    "data_types",
    "batching",
    "idempotent",
    "parameters",
}


def test_list_has_webhook_and_slack(api: Api) -> None:
    response = api.get("/catalog")
    assert response.status_code == 200
    types = {t["id"]: t for t in response.json()["types"]}
    assert {"webhook", "slack"} <= set(types)
    for entry in types.values():
        assert set(entry) == SUMMARY_KEYS
    assert types["webhook"]["name"] == "Webhook"
    assert types["webhook"]["action_count"] == 3
    assert types["slack"]["icon"].startswith("data:image/svg+xml")


def test_list_filters(api: Api) -> None:
    found = [t["id"] for t in api.get("/catalog", params={"q": "slac"}).json()["types"]]
    assert found[0] == "slack"
    assert "webhook" not in found
    by_type = api.get("/catalog", params={"data_type": "event"}).json()["types"]
    assert {"webhook", "slack"} <= {t["id"] for t in by_type}
    assert api.get("/catalog", params={"data_type": "fax"}).status_code == 422


def test_detail(api: Api) -> None:
    webhook = api.get("/catalog/webhook").json()
    assert set(webhook) == DETAIL_KEYS
    fields = {f["name"]: f for f in webhook["configuration"]}
    assert set(fields["token"]) == FIELD_KEYS
    assert fields["token"]["secret"] is True
    assert fields["auth_type"]["enum"] == ["none", "basic", "bearer"]
    actions = {a["id"]: a for a in webhook["actions"]}
    assert set(actions) == {"send_custom_request", "send_event_data", "send_batched_data"}
    assert set(actions["send_custom_request"]) == ACTION_KEYS
    required = {p["name"] for p in actions["send_custom_request"]["parameters"] if p["required"]}
    assert required == {"method", "url"}
    assert actions["send_batched_data"]["batching"] is not None
    slack = api.get("/catalog/slack").json()
    [post] = [a for a in slack["actions"] if a["id"] == "post_channel_message"]
    assert post["consent_categories"] == ["monitoring"]
    missing = api.get("/catalog/fax")
    assert missing.status_code == 404
    assert set(missing.json()) == {"error", "details"}


def test_catalog_needs_credentials(api: Api) -> None:
    assert api.client.get("/api/v1/catalog").status_code == 401
    assert api.client.get("/api/v1/catalog/webhook").status_code == 401
