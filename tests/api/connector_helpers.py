"""Test helpers: connectors and actions made through the API."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api

SECRET = "tok-very-secret-4f9a"
CUSTOM_MAPPINGS: list[dict[str, Any]] = [
    {"parameter": "method", "value": "POST"},
    {"parameter": "url", "value": "https://example.com/hook"},
]


def add_webhook(api: Api, profile: str, name: str = "Webhook Prod", **body: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {"type": "webhook", "name": name, **body}
    response = api.post(f"{profile}/connectors", payload)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def add_slack(api: Api, profile: str, name: str = "Slack Alerts") -> dict[str, Any]:
    response = api.post(f"{profile}/connectors", {"type": "slack", "name": name})
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def add_action(
    api: Api, profile: str, connector_id: str, name: str = "Send order", **body: Any
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "name": name,
        "type": "send_custom_request",
        "mappings": CUSTOM_MAPPINGS,
        **body,
    }
    response = api.post(f"{profile}/connectors/{connector_id}/actions", payload)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def publish(api: Api, profile: str, connector_id: str, note: str | None = None) -> Any:
    body = {"note": note} if note is not None else None
    return api.post(f"{profile}/connectors/{connector_id}/publish", body)
