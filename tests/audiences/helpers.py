"""Steps the AudienceStream tests share: attributes, audiences, audience-sourced actions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.support.flows import add_connector, send, wait_until

PURCHASE = [[{"attribute": "tealium_event", "operator": "equals", "value": "purchase"}]]


def attribute(api: Any, profile: str, name: str, type_: str, rules: list[Any], **extra: Any) -> Any:
    body = {"name": name, "scope": "visitor", "type": type_, "rules": rules, **extra}
    response = api.post(f"{profile}/visitor-attributes", body)
    assert response.status_code == 201, response.text
    return response.json()


def purchase_counter(api: Any, profile: str) -> Any:
    rule = {"when": PURCHASE, "operation": "increment", "value": 1}
    return attribute(api, profile, "purchase_count", "number", [rule])


def audience(api: Any, profile: str, name: str, conditions: list[Any]) -> str:
    response = api.post(f"{profile}/audiences", {"name": name, "conditions": conditions})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def gte(name: str, value: float) -> list[Any]:
    return [[{"attribute": name, "operator": "gte", "value": value}]]


def visitor_action(
    url: str, audience_id: str, trigger: str, name: str | None = None, **source: Any
) -> dict[str, Any]:
    return {
        "name": name or f"{trigger} {audience_id}",
        "type": "send_event_data",
        "source": {"audience": audience_id, "trigger": trigger, **source},
        "mappings": [{"parameter": "url", "value": url}],
    }


def hook(api: Any, profile: str, actions: list[dict[str, Any]], name: str = "Hook") -> Any:
    return add_connector(api, profile, name=name, actions=actions)


def purchase(api: Any, visitor: str, **extra: Any) -> Any:
    return send(api, {"tealium_event": "purchase", "tealium_visitor_id": visitor, **extra})


def visitor(api: Any, profile: str, visitor_id: str) -> Any:
    response = api.get(f"{profile}/visitors/{visitor_id}")
    assert response.status_code == 200, response.text
    return response.json()


def visitor_once(api: Any, profile: str, visitor_id: str, check: Callable[[Any], Any]) -> Any:
    """The visitor's profile once ``check`` holds for it, waiting meanwhile, also while
    its first event is still being routed (the profile does not exist yet: 404)."""

    def current() -> Any:
        response = api.get(f"{profile}/visitors/{visitor_id}")
        if response.status_code == 404:
            return None
        assert response.status_code == 200, response.text
        shown = response.json()
        return shown if check(shown) else None

    return wait_until(current)
