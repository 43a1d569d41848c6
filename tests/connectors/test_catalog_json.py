"""The catalog JSON (SPEC §4): exact keys, consent, batching and icons."""

from __future__ import annotations

import base64
import dataclasses

from sluice.connectors.catalog import slack, webhook
from sluice.connectors.catalog_json import detail_json, summary_json
from sluice.connectors.definition import DELIVERY_FIELDS
from tests.connectors import plugin_example

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


def svg_of(icon: str) -> str:
    prefix = "data:image/svg+xml;base64,"
    assert icon.startswith(prefix)
    return base64.b64decode(icon[len(prefix) :]).decode()


def test_summary_shape() -> None:
    summary = summary_json(webhook.CONNECTOR)
    assert summary == {
        "id": "webhook",
        "name": "Webhook",
        "description": webhook.CONNECTOR.description,
        "icon": summary["icon"],
        "data_types": ["event", "visitor"],
        "action_count": 3,
    }
    assert svg_of(summary["icon"]) == webhook.ICON_SVG.strip()


def test_detail_shape() -> None:
    detail = detail_json(slack.CONNECTOR)
    assert set(detail) == {
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
    assert all(set(r) == {"title", "url", "internal"} for r in detail["resources"])
    for action in detail["actions"]:
        assert set(action) == ACTION_KEYS
        assert action["consent_categories"] == ["monitoring"]
        assert action["batching"] is None
        assert all(set(p) == FIELD_KEYS for p in action["parameters"])
    # Slack has no configuration of its own: only the delivery settings every connector has.
    assert [f["name"] for f in detail["configuration"]] == [f.name for f in DELIVERY_FIELDS]


def test_webhook_detail() -> None:
    detail = detail_json(webhook.CONNECTOR)
    names = [f["name"] for f in detail["configuration"]]
    assert names[:5] == ["auth_type", "username", "password", "token", "timeout_seconds"]
    assert names.count("timeout_seconds") == 1
    auth = detail["configuration"][0]
    assert auth["enum"] == ["none", "basic", "bearer"]
    assert auth["default"] == "none"
    assert [f["secret"] for f in detail["configuration"][:4]] == [False, False, True, True]
    actions = {a["id"]: a for a in detail["actions"]}
    assert list(actions) == ["send_custom_request", "send_event_data", "send_batched_data"]
    assert all(a["consent_categories"] == [] for a in actions.values())
    assert actions["send_batched_data"]["batching"] == {
        "max_count": 1000,
        "max_bytes": 5_000_000,
        "max_age_seconds": 300,
    }
    method = actions["send_custom_request"]["parameters"][0]
    assert method["name"] == "method"
    assert method["required"] is True
    assert method["enum"] == ["GET", "POST", "PUT", "PATCH", "DELETE"]


def test_base_url_field_is_added_for_types_with_an_api_root() -> None:
    detail = detail_json(plugin_example.CONNECTOR)
    base = next(f for f in detail["configuration"] if f["name"] == "base_url")
    assert base["default"] == "https://api.echo.example"
    assert base["group"] == "Advanced"


def test_types_without_an_icon_get_a_generated_one() -> None:
    plain = dataclasses.replace(plugin_example.CONNECTOR, name="<Echo & Co>")
    svg = svg_of(summary_json(plain)["icon"])
    assert svg.startswith("<svg")
    assert ">&lt;</text>" in svg  # the initial, escaped
    assert summary_json(plain)["icon"] == summary_json(plain)["icon"]  # stable colour
