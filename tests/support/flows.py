"""Small steps many tests share: add a connector with one action, publish, wait."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

FAST_RETRIES = {"first_retry_seconds": 0.05, "max_attempts": 3}


def wait_until(check: Callable[[], T], timeout: float = 10.0, interval: float = 0.02) -> T:
    deadline = time.monotonic() + timeout
    last: T = check()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last: {last!r})")
        time.sleep(interval)
        last = check()
    return last


def add_connector(
    api: Any,
    profile: str,
    *,
    type: str = "webhook",
    name: str = "Hook",
    configuration: dict[str, Any] | None = None,
    actions: list[dict[str, Any]],
    publish: bool = True,
) -> dict[str, Any]:
    """Create a connector (switched on) with actions (switched on), optionally published."""
    created = api.post(
        f"{profile}/connectors",
        {"type": type, "name": name, "configuration": configuration or {}, "enabled": True},
    )
    assert created.status_code == 201, created.text
    connector = created.json()
    for action in actions:
        body = {"enabled": True, "source": {"event_feed": "all_events"}, **action}
        made = api.post(f"{profile}/connectors/{connector['id']}/actions", body)
        assert made.status_code == 201, made.text
    if publish:
        published = api.post(f"{profile}/connectors/{connector['id']}/publish", {"note": "test"})
        assert published.status_code == 201, published.text
    return dict(api.get(f"{profile}/connectors/{connector['id']}").json())


def event_data_action(url: str, name: str = "Send events", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "type": "send_event_data",
        "mappings": [{"parameter": "url", "value": url}],
        **extra,
    }


def send(api: Any, event: dict[str, Any]) -> Any:
    body = {"tealium_account": "acme", "tealium_profile": "main", **event}
    response = api.client.post("/event", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def reload_config(api: Any) -> None:
    """Make the app's pipeline load the newest configuration now. A change takes effect
    within 2 seconds; a test that posts an event right after changing a setting the collect
    API reads (rate limit, collect token) calls this first."""
    pipeline = api.client.app.state.services.pipeline
    api.client.portal.call(pipeline.reload_config)


def totals(api: Any, profile: str, **params: str) -> dict[str, int]:
    response = api.get(f"{profile}/reports", params=params)
    assert response.status_code == 200, response.text
    return dict(response.json()["totals"])
