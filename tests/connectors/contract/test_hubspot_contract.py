"""Contract: Sluice against a strict stand-in for HubSpot's contacts batch upsert, end to end.

The stand-in checks requests as documented: ``POST /crm/v3/objects/contacts/batch/upsert``
with a private app's Bearer token and a JSON body ``{"inputs": [...]}`` of 1 to 100 inputs,
each ``{"idProperty": "email", "id", "properties", "objectWriteTraceId"}`` with text values,
no email twice in one batch. It answers ``{"status": "COMPLETE", "results": [...]}``, 207 with
``errors`` naming the ``objectWriteTraceId`` of an input whose value it refused, 400
``VALIDATION_ERROR`` for an unknown property, 401 and 429 in HubSpot's error shape.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sluice.connectors.catalog.hubspot import CONNECTOR
from sluice.connectors.registry import Registry
from sluice.services import Services
from sluice.settings import Settings
from tests.conftest import Api
from tests.support.flows import FAST_RETRIES, add_connector, send, totals, wait_until
from tests.support.vendor import Recorded, Reply, VendorMock

TOKEN = "pat-na1-11111111-2222-3333-4444-555555555555"
PATH = "/crm/v3/objects/contacts/batch/upsert"
PROPERTIES = {"email", "firstname", "lastname", "phone", "lifecyclestage"}
STAGES = {"subscriber", "lead", "customer"}  # the options of the lifecyclestage dropdown


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    """The real services, with HubSpot in the catalog whether or not it is registered yet."""
    opened = Services.open(settings)
    if CONNECTOR.id not in opened.registry:
        opened.registry = Registry([*opened.registry.all(), CONNECTOR])
    yield opened
    opened.db.dispose()


def error(status: int, category: str, message: str, **extra: Any) -> Reply:
    body = {"status": "error", "message": message, "correlationId": "c0ffee", "category": category}
    return Reply(status, {**body, **extra})


class HubSpotApi:
    """HubSpot's batch upsert of contacts, strictly; ``deviations`` lists what Sluice got wrong."""

    def __init__(self, vendor: VendorMock) -> None:
        self.deviations: list[str] = []
        self.contacts: dict[str, dict[str, str]] = {}
        vendor.respond("/", self.answer)

    def answer(self, r: Recorded) -> Reply:
        if (r.method, r.path) != ("POST", PATH):
            self.deviations.append(f"{r.method} {r.path}: expected POST {PATH}")
            return error(404, "OBJECT_NOT_FOUND", "not found")
        if r.headers.get("authorization") != f"Bearer {TOKEN}":
            return error(401, "INVALID_AUTHENTICATION", "Authentication credentials not found.")
        if r.headers.get("content-type", "").split(";")[0] != "application/json":
            self.deviations.append("Content-Type must be application/json")
        inputs = r.json().get("inputs")
        if not isinstance(inputs, list) or not 1 <= len(inputs) <= 100:
            self.deviations.append("inputs must hold 1 to 100 contacts")
            return error(400, "VALIDATION_ERROR", "Invalid input JSON")
        ids = [i.get("id") for i in inputs]
        if len(set(ids)) != len(ids):
            self.deviations.append("an email appears twice in one batch")
            return error(400, "VALIDATION_ERROR", f"Duplicate IDs found in batch input: {ids}")
        unknown = {name for i in inputs for name in i.get("properties", {})} - PROPERTIES
        if unknown:
            detail: dict[str, Any] = {"message": "Property does not exist"}
            detail["code"] = "PROPERTY_DOESNT_EXIST"
            detail["context"] = {"propertyName": sorted(unknown)}
            return error(400, "VALIDATION_ERROR", "Property values were not valid", errors=[detail])
        results, failures = [], []
        for n, item in enumerate(inputs):
            failure = self.check(n, item)
            if failure:
                failures.append(failure)
                continue
            new = item["id"] not in self.contacts
            self.contacts.setdefault(item["id"], {}).update(item["properties"])
            trace = item["objectWriteTraceId"]
            results.append({"id": str(500 + n), "new": new, "objectWriteTraceId": trace})
        body = {"status": "COMPLETE", "results": results}
        if failures:
            return Reply(207, {**body, "numErrors": len(failures), "errors": failures})
        return Reply(200, body)

    def check(self, n: int, item: dict[str, Any]) -> dict[str, Any] | None:
        """HubSpot's multi-status error for an input whose value it refuses, if any."""
        properties = item.get("properties")
        if set(item) != {"idProperty", "id", "properties", "objectWriteTraceId"}:
            self.deviations.append(f"input {n}: keys {sorted(item)}")
        if item.get("idProperty") != "email" or not isinstance(properties, dict):
            self.deviations.append(f"input {n}: must be identified by email, with properties")
            return None
        if properties.get("email") != item.get("id") or item["id"] != item["id"].lower():
            self.deviations.append(f"input {n}: id must be the lower-case email property")
        if not all(isinstance(v, str) for v in properties.values()):
            self.deviations.append(f"input {n}: property values must be text")
        stage = properties.get("lifecyclestage")
        if stage is None or stage in STAGES:
            return None
        return {
            "status": "error",
            "category": "VALIDATION_ERROR",
            "message": f"{stage} was not one of the allowed options",
            "context": {
                "objectWriteTraceId": [item["objectWriteTraceId"]],
                "propertyName": ["lifecyclestage"],
            },
        }


ACTION = {
    "name": "Contacts",
    "type": "create_or_update_contact",
    "mappings": [
        {"parameter": "email", "attribute": "customer_email"},
        {"parameter": "properties", "key": "firstname", "attribute": "first_name"},
        {"parameter": "properties", "key": "lifecyclestage", "attribute": "stage"},
        {"parameter": "max_batch_age_seconds", "value": 0.3},
    ],
}


def add_hubspot(
    api: Api, profile: str, vendor: VendorMock, token: str = TOKEN, action: dict[str, Any] = ACTION
) -> Any:
    configuration = {"access_token": token, "base_url": vendor.url, **FAST_RETRIES}
    return add_connector(
        api, profile, type="hubspot", name="HubSpot", configuration=configuration, actions=[action]
    )


def errors(api: Api, profile: str) -> list[dict[str, Any]]:
    return list(api.get(f"{profile}/errors").json()["errors"])


def test_a_contact_is_upserted_as_documented(api: Api, profile: str, vendor: VendorMock) -> None:
    hubspot = HubSpotApi(vendor)
    connector = add_hubspot(api, profile, vendor)
    action_id = connector["actions"][0]["id"]
    event = {"customer_email": " Ada@Example.com", "first_name": "Ada", "stage": "lead"}
    event_id = send(api, event)["event_ids"][0]
    [request] = vendor.wait_for(1, PATH)
    assert request.json() == {
        "inputs": [
            {
                "idProperty": "email",
                "id": "ada@example.com",
                "properties": {
                    "firstname": "Ada",
                    "lifecyclestage": "lead",
                    "email": "ada@example.com",
                },
                "objectWriteTraceId": f"{event_id}:{action_id}",
            }
        ]
    }
    wait_until(lambda: totals(api, profile)["success"] == 1)
    assert hubspot.contacts == {"ada@example.com": request.json()["inputs"][0]["properties"]}
    assert hubspot.deviations == []


def test_a_batch_reports_each_contact(api: Api, profile: str, vendor: VendorMock) -> None:
    hubspot = HubSpotApi(vendor)
    add_hubspot(api, profile, vendor)
    events = [
        {"customer_email": "ada@example.com", "first_name": "Ada", "stage": "lead"},
        {"customer_email": "not-an-email", "first_name": "Nobody"},
        {"customer_email": "grace@example.com", "stage": "champion"},  # not an option
        {"customer_email": "ADA@example.com", "stage": "customer"},  # merged with the first
    ]
    body = {"shared": {"tealium_account": "acme"}, "events": events}
    reply = api.client.post("/bulk-event", json=body)
    assert reply.status_code == 200, reply.text
    ids = reply.json()["event_ids"]
    records = wait_until(lambda: (e := errors(api, profile)) and len(e) == 2 and e)
    by_event = {r["event_id"]: r for r in records}
    assert by_event[ids[1]]["category"] == "mapping"
    assert by_event[ids[2]]["category"] == "http_4xx"
    assert by_event[ids[2]]["status_code"] == 207
    assert "champion was not one of the allowed options" in by_event[ids[2]]["message"]
    assert "(property lifecyclestage)" in by_event[ids[2]]["message"]
    counts = wait_until(lambda: (t := totals(api, profile)) and t["success"] == 2 and t)
    assert counts["error"] == 2
    assert counts["retried"] == 0
    assert len(vendor.received(PATH)) == 1
    assert hubspot.contacts == {
        "ada@example.com": {
            "firstname": "Ada",
            "lifecyclestage": "customer",
            "email": "ada@example.com",
        }
    }
    assert hubspot.deviations == []


def test_an_unknown_property_fails_the_batch(api: Api, profile: str, vendor: VendorMock) -> None:
    hubspot = HubSpotApi(vendor)
    mappings = [*ACTION["mappings"], {"parameter": "properties", "key": "plan", "value": "gold"}]
    add_hubspot(api, profile, vendor, action={**ACTION, "mappings": mappings})
    send(api, {"customer_email": "ada@example.com"})
    [record] = wait_until(lambda: errors(api, profile))
    assert (record["category"], record["status_code"]) == ("http_4xx", 400)
    assert "(property plan)" in record["message"]
    assert "correlationId c0ffee" in record["message"]
    assert hubspot.deviations == []


def test_a_wrong_token_is_an_auth_error(api: Api, profile: str, vendor: VendorMock) -> None:
    hubspot = HubSpotApi(vendor)
    add_hubspot(api, profile, vendor, token="pat-na1-revoked")
    send(api, {"customer_email": "ada@example.com"})
    [record] = wait_until(lambda: errors(api, profile))
    assert (record["category"], record["status_code"]) == ("auth", 401)
    assert record["request"]["headers"]["Authorization"] == "Bearer ********"
    assert hubspot.deviations == []


def test_rate_limits_wait_for_the_window(api: Api, profile: str, vendor: VendorMock) -> None:
    hubspot = HubSpotApi(vendor)
    headers = {
        "X-HubSpot-RateLimit-Interval-Milliseconds": "200",
        "X-HubSpot-RateLimit-Max": "100",
        "X-HubSpot-RateLimit-Remaining": "0",
    }
    limited = error(429, "RATE_LIMITS", "You have reached your ten_secondly_rolling limit.")
    limited.headers.update(headers)
    vendor.queue(PATH, limited)
    add_hubspot(api, profile, vendor)
    send(api, {"customer_email": "ada@example.com"})
    counts = wait_until(lambda: (t := totals(api, profile)) and t["success"] == 1 and t)
    assert counts["retried"] == 1
    assert list(hubspot.contacts) == ["ada@example.com"]
    first, second = vendor.received(PATH)
    assert second.at - first.at >= 0.2
    assert hubspot.deviations == []
