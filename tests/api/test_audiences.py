"""The AudienceStream configuration API: visitor attributes and audiences (SPEC §8)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api
from tests.support.flows import add_connector, send, wait_until

COUNTER: dict[str, Any] = {
    "name": "purchase_count",
    "scope": "visitor",
    "type": "number",
    "rules": [
        {
            "when": [[{"attribute": "tealium_event", "operator": "equals", "value": "purchase"}]],
            "operation": "increment",
            "value": 1,
        }
    ],
}
BUYERS = {
    "name": "Repeat buyers",
    "conditions": [[{"attribute": "purchase_count", "operator": "gte", "value": 2}]],
}


def test_visitor_attribute_crud(api: Api, profile: str) -> None:
    created = api.post(f"{profile}/visitor-attributes", COUNTER)
    assert created.status_code == 201, created.text
    attribute = created.json()
    assert attribute["id"].startswith("vattr_")
    assert attribute["rules"][0]["when"][0][0]["ignore_case"] is False
    assert attribute["created_at"].endswith("Z")
    listed = api.get(f"{profile}/visitor-attributes").json()
    assert listed == {"visitor_attributes": [attribute]}
    url = f"{profile}/visitor-attributes/{attribute['id']}"
    assert api.get(url).json() == attribute
    patched = api.patch(url, {"rules": [{"operation": "increment", "value": 2}]})
    assert patched.status_code == 200, patched.text
    assert patched.json()["rules"] == [{"when": [], "operation": "increment", "value": 2}]
    unchanged = api.patch(url, {"name": "purchase_count", "type": "number"})
    assert unchanged.status_code == 200
    renamed = api.patch(url, {"name": "orders"})
    assert renamed.status_code == 422
    assert renamed.json()["details"][0]["field"] == "name"
    assert api.delete(url).status_code == 204
    assert api.get(url).status_code == 404
    audit = api.get(f"{profile}/audit").json()["entries"]
    assert {"visitor_attribute.create", "visitor_attribute.delete"} <= {e["action"] for e in audit}


@pytest.mark.parametrize(
    ("body", "field", "status"),
    [
        ({**COUNTER, "scope": "session"}, "scope", 422),
        ({**COUNTER, "type": "integer"}, "type", 422),
        ({**COUNTER, "name": "a.b"}, "name", 422),
        ({**COUNTER, "name": "badges"}, "name", 422),
        ({**COUNTER, "type": "badge", "scope": "visit", "rules": []}, "scope", 422),
        ({**COUNTER, "rules": [{"operation": "add"}]}, "rules[0].operation", 422),
        ({**COUNTER, "rules": [{"operation": "increment", "when": "x"}]}, "rules[0].when", 422),
        ({**COUNTER, "colour": "red"}, "colour", 422),
        ({**COUNTER, "name": "PURCHASE_COUNT"}, None, 409),
    ],
    ids=[
        "scope",
        "type",
        "dotted-name",
        "reserved-name",
        "visit-badge",
        "operation",
        "when",
        "unknown-key",
        "duplicate",
    ],
)
def test_visitor_attribute_validation(
    api: Api, profile: str, body: dict[str, Any], field: str | None, status: int
) -> None:
    assert api.post(f"{profile}/visitor-attributes", COUNTER).status_code == 201
    response = api.post(f"{profile}/visitor-attributes", body)
    assert response.status_code == status, response.text
    if field is not None:
        assert response.json()["details"][0]["field"] == field


def test_audience_crud_with_a_live_member_count(api: Api, profile: str) -> None:
    api.post(f"{profile}/visitor-attributes", COUNTER)
    created = api.post(f"{profile}/audiences", BUYERS)
    assert created.status_code == 201, created.text
    audience = created.json()
    assert audience["id"].startswith("aud_")
    assert audience["member_count"] == 0
    url = f"{profile}/audiences/{audience['id']}"
    for visitor in ("v1", "v1", "v2", "v2", "v3"):
        send(api, {"tealium_event": "purchase", "tealium_visitor_id": visitor})
    wait_until(lambda: api.get(url).json()["member_count"] == 2)
    assert api.get(f"{profile}/audiences").json()["audiences"][0]["member_count"] == 2
    patched = api.patch(
        url,
        {
            "name": "Buyers",
            "conditions": [[{"attribute": "purchase_count", "operator": "gte", "value": 1}]],
        },
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["name"] == "Buyers"
    send(api, {"tealium_event": "view", "tealium_visitor_id": "v3"})  # re-evaluated on events
    wait_until(lambda: api.get(url).json()["member_count"] == 3)
    assert api.post(f"{profile}/audiences", {"name": "buyers"}).status_code == 409
    assert api.delete(url).status_code == 204
    assert api.get(url).status_code == 404


@pytest.mark.parametrize(
    ("conditions", "field"),
    [
        (
            [[{"attribute": "purchase_cnt", "operator": "gte", "value": 2}]],
            "conditions[0][0].attribute",
        ),
        (
            [[{"attribute": "purchase_count", "operator": ">=", "value": 2}]],
            "conditions[0][0].operator",
        ),
        ("everyone", "conditions"),
    ],
    ids=["unknown-attribute", "operator", "not-a-list"],
)
def test_audience_validation(api: Api, profile: str, conditions: Any, field: str) -> None:
    api.post(f"{profile}/visitor-attributes", COUNTER)
    response = api.post(f"{profile}/audiences", {"name": "X", "conditions": conditions})
    assert response.status_code == 422, response.text
    assert response.json()["details"][0]["field"] == field
    if field.endswith("attribute"):
        assert "purchase_count" in response.json()["error"]  # did you mean ...?


def test_builtin_names_need_no_attribute(api: Api, profile: str) -> None:
    for name in ("badges", "audiences", "current_visit.event_count"):
        body = {"name": name, "conditions": [[{"attribute": name, "operator": "exists"}]]}
        assert api.post(f"{profile}/audiences", body).status_code == 201


def test_what_is_in_use_cannot_be_deleted(api: Api, profile: str) -> None:
    attribute = api.post(f"{profile}/visitor-attributes", COUNTER).json()
    audience = api.post(f"{profile}/audiences", BUYERS).json()
    refused = api.delete(f"{profile}/visitor-attributes/{attribute['id']}")
    assert refused.status_code == 409
    assert "Repeat buyers" in refused.json()["error"]
    action = {
        "name": "Joined",
        "type": "send_event_data",
        "source": {"audience": audience["id"], "trigger": "joined"},
        "mappings": [{"parameter": "url", "value": "https://example.com/in"}],
    }
    add_connector(api, profile, name="Hook", actions=[action])
    refused = api.delete(f"{profile}/audiences/{audience['id']}")
    assert refused.status_code == 409
    assert "Hook" in refused.json()["error"]


def test_a_rule_value_too_large_to_store_is_422(api: Api, profile: str) -> None:
    # Found by probing beside the management API fuzz: orjson refused it, a 500.
    body = {**COUNTER, "rules": [{"operation": "increment", "value": 10**30}]}
    response = api.post(f"{profile}/visitor-attributes", body)
    assert response.status_code == 422, response.text
    assert response.json()["details"] == [{"field": "body", "message": "number too large"}]
