"""Contract: Sluice against a strict stand-in for Klaviyo's events and profile import, end to end.

The stand-in checks requests as documented: ``Authorization: Klaviyo-API-Key <private key>``,
a ``revision`` header, JSON:API bodies (``application/vnd.api+json``); ``POST /api/events``
with an event's ``properties``, ``metric`` and ``profile`` (at least one identifier, phone
numbers in E.164), an optional ISO 8601 ``time`` and ``unique_id``, which Klaviyo records once
per profile and metric (202); ``POST /api/profile-import`` (201 created, 200 updated, 409
for identifiers of two profiles). Errors are JSON:API ``errors`` with ``source.pointer``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from sluice.connectors.catalog.klaviyo import CONNECTOR
from sluice.connectors.registry import Registry
from sluice.services import Services
from sluice.settings import Settings
from tests.conftest import Api
from tests.support.flows import FAST_RETRIES, add_connector, send, totals, wait_until
from tests.support.vendor import Recorded, Reply, VendorMock

KEY = "pk_0123456789abcdef0123456789abcdef01"
JSON_API = "application/vnd.api+json"
REVISION = re.compile(r"^\d{4}-\d{2}-\d{2}(\.[a-z]+)?$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
IDENTIFIERS = ("email", "phone_number", "external_id")
PROFILE_POINTER = "/data/attributes/profile/data/attributes"


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    """The real services, with Klaviyo in the catalog whether or not it is registered yet."""
    opened = Services.open(settings)
    if CONNECTOR.id not in opened.registry:
        opened.registry = Registry([*opened.registry.all(), CONNECTOR])
    yield opened
    opened.db.dispose()


def error(status: int, code: str, title: str, detail: str, pointer: str | None = None) -> Reply:
    entry: dict[str, Any] = {"id": "5c3c", "status": status, "code": code, "title": title}
    entry["detail"] = detail
    if pointer:
        entry["source"] = {"pointer": pointer}
    return Reply(status, {"errors": [entry]}, {"Content-Type": JSON_API})


class KlaviyoApi:
    """Klaviyo's /api/events and /api/profile-import, strictly; ``deviations`` lists mistakes."""

    def __init__(self, vendor: VendorMock, fail_first_event: bool = False) -> None:
        self.deviations: list[str] = []
        self.events: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.profiles: list[dict[str, Any]] = []
        self.fail_first_event = fail_first_event
        vendor.respond("/", self.answer)

    def answer(self, r: Recorded) -> Reply:
        if r.headers.get("authorization") != f"Klaviyo-API-Key {KEY}":
            return error(401, "not_authenticated", "Authentication failed.", "Invalid API key.")
        if not REVISION.match(r.headers.get("revision", "")):
            return error(400, "invalid", "Invalid input.", "A revision header is required.")
        if r.headers.get("content-type", "").split(";")[0] != JSON_API:
            self.deviations.append(f"{r.path}: Content-Type must be {JSON_API}")
        data = r.json().get("data")
        if (r.method, r.path) == ("POST", "/api/events"):
            return self.event(data)
        if (r.method, r.path) == ("POST", "/api/profile-import"):
            if len(r.body) > 100_000:
                self.deviations.append("/api/profile-import: more than 100 KB")
            return self.profile(data)
        self.deviations.append(f"{r.method} {r.path}: no such endpoint")
        return error(404, "not_found", "Not found.", "Not found.")

    def identity(self, attributes: Any, pointer: str) -> tuple[str, Reply | None]:
        """The profile's first identifier, or Klaviyo's error for its attributes."""
        if not isinstance(attributes, dict) or not any(attributes.get(k) for k in IDENTIFIERS):
            return "", error(
                400, "invalid", "Invalid input.", "An identifier is required.", pointer
            )
        email = attributes.get("email")
        if email is not None and not EMAIL.match(email):
            detail = f"Invalid email address: {email}"
            return "", error(400, "invalid", "Invalid input.", detail, f"{pointer}/email")
        phone = attributes.get("phone_number")
        if phone is not None and not E164.match(phone):
            return "", error(
                400, "invalid", "Invalid input.", "Invalid phone number", f"{pointer}/phone_number"
            )
        return next(str(attributes[k]) for k in IDENTIFIERS if attributes.get(k)), None

    def event(self, data: Any) -> Reply:
        attributes = data.get("attributes", {}) if isinstance(data, dict) else {}
        if data.get("type") != "event" or not {"properties", "metric", "profile"} <= set(
            attributes
        ):
            self.deviations.append("an event needs type event, properties, metric and profile")
            return error(400, "invalid", "Invalid input.", "Malformed event.", "/data")
        metric = attributes["metric"].get("data", {})
        name = metric.get("attributes", {}).get("name", "")
        if metric.get("type") != "metric" or not 0 < len(name) < 128:
            self.deviations.append("the metric needs type metric and a name under 128 characters")
        profile = attributes["profile"].get("data", {})
        if profile.get("type") != "profile":
            self.deviations.append("the profile needs type profile")
        who, refusal = self.identity(profile.get("attributes"), PROFILE_POINTER)
        if refusal:
            return refusal
        if "time" in attributes:
            datetime.fromisoformat(attributes["time"])  # a ValueError fails the test loudly
        key = (who, name, str(attributes.get("unique_id")))
        self.events.setdefault(key, attributes)  # a repeated unique_id is recorded once
        if self.fail_first_event:
            self.fail_first_event = False
            return error(503, "service_unavailable", "Service unavailable.", "Try again.")
        return Reply(202, b"")

    def profile(self, data: Any) -> Reply:
        attributes = data.get("attributes") if isinstance(data, dict) else None
        if data.get("type") != "profile":
            self.deviations.append("a profile import needs type profile")
        _, refusal = self.identity(attributes, "/data/attributes")
        if refusal or not isinstance(attributes, dict):
            return refusal or error(400, "invalid", "Invalid input.", "Malformed profile.")
        matches = [
            n
            for n, known in enumerate(self.profiles)
            if any(attributes.get(k) and known.get(k) == attributes.get(k) for k in IDENTIFIERS)
        ]
        if len(matches) > 1:
            detail = "A profile already exists with one of these identifiers."
            return error(409, "duplicate_profile", "Conflict.", detail)
        if matches:
            self.profiles[matches[0]].update(attributes)
            status, n = 200, matches[0]
        else:
            self.profiles.append(dict(attributes))
            status, n = 201, len(self.profiles) - 1
        body = {"data": {"type": "profile", "id": f"01HPROFILE{n}", "attributes": self.profiles[n]}}
        return Reply(status, body, {"Content-Type": JSON_API})


EVENT = {
    "name": "Placed Order",
    "type": "create_event",
    "mappings": [
        {"parameter": "metric_name", "value": "Placed Order"},
        {"parameter": "identifier", "attribute": "customer_email"},
        {"parameter": "phone_number", "attribute": "customer_phone"},
        {"parameter": "value", "attribute": "order_total"},
        {"parameter": "value_currency", "attribute": "currency"},
        {"parameter": "properties", "key": "OrderId", "attribute": "order_id"},
    ],
}
PROFILE = {
    "name": "Profiles",
    "type": "create_or_update_profile",
    "mappings": [
        {"parameter": "identifier_type", "value": "external_id"},
        {"parameter": "identifier", "attribute": "customer_id"},
        {"parameter": "email", "attribute": "customer_email"},
        {"parameter": "first_name", "attribute": "first_name"},
        {"parameter": "city", "attribute": "city"},
        {"parameter": "properties", "key": "plan", "attribute": "plan"},
    ],
}


def add_klaviyo(
    api: Api, profile: str, vendor: VendorMock, action: dict[str, Any], key: str = KEY
) -> Any:
    configuration = {"api_key": key, "base_url": vendor.url, **FAST_RETRIES}
    return add_connector(
        api, profile, type="klaviyo", name="Klaviyo", configuration=configuration, actions=[action]
    )


def errors(api: Api, profile: str) -> list[dict[str, Any]]:
    return list(api.get(f"{profile}/errors").json()["errors"])


ORDER = {
    "order_id": "A-1001",
    "order_total": 42.5,
    "currency": "eur",
    "customer_email": "Ada@Example.com",
    "customer_phone": "+44 7700 900123",
}


def test_an_event_is_created_as_documented(api: Api, profile: str, vendor: VendorMock) -> None:
    klaviyo = KlaviyoApi(vendor)
    connector = add_klaviyo(api, profile, vendor, EVENT)
    action_id = connector["actions"][0]["id"]
    event_id = send(api, ORDER)["event_ids"][0]
    [request] = vendor.wait_for(1, "/api/events")
    body = request.json()
    time = body["data"]["attributes"].pop("time")  # when Sluice received the event
    assert body == {
        "data": {
            "type": "event",
            "attributes": {
                "properties": {"OrderId": "A-1001"},
                "metric": {"data": {"type": "metric", "attributes": {"name": "Placed Order"}}},
                "profile": {
                    "data": {
                        "type": "profile",
                        "attributes": {"email": "ada@example.com", "phone_number": "+447700900123"},
                    }
                },
                "unique_id": f"{event_id}:{action_id}",
                "value": 42.5,
                "value_currency": "EUR",
            },
        }
    }
    assert time.endswith("+00:00")
    wait_until(lambda: totals(api, profile)["success"] == 1)
    assert request.headers["accept"] == JSON_API
    assert klaviyo.deviations == []


def test_a_retried_event_is_recorded_once(api: Api, profile: str, vendor: VendorMock) -> None:
    # Klaviyo took the first attempt but answered 503: the retry carries the same unique_id.
    klaviyo = KlaviyoApi(vendor, fail_first_event=True)
    add_klaviyo(api, profile, vendor, EVENT)
    send(api, ORDER)
    counts = wait_until(lambda: (t := totals(api, profile)) and t["success"] == 1 and t)
    assert counts["retried"] == 1
    first, second = vendor.received("/api/events")
    assert first.json() == second.json()
    assert len(klaviyo.events) == 1
    assert klaviyo.deviations == []


def test_an_invalid_email_names_the_field(api: Api, profile: str, vendor: VendorMock) -> None:
    klaviyo = KlaviyoApi(vendor)
    add_klaviyo(api, profile, vendor, EVENT)
    send(api, {**ORDER, "customer_email": "ada@example"})
    [record] = wait_until(lambda: errors(api, profile))
    assert (record["category"], record["status_code"]) == ("http_4xx", 400)
    assert "field 'email'" in record["message"]
    assert "Invalid email address" in record["message"]
    assert klaviyo.deviations == []


def test_profiles_are_created_then_updated(api: Api, profile: str, vendor: VendorMock) -> None:
    klaviyo = KlaviyoApi(vendor)
    add_klaviyo(api, profile, vendor, PROFILE)
    send(api, {"customer_id": "cust-42", "customer_email": "ada@example.com", "first_name": "Ada"})
    [created] = vendor.wait_for(1, "/api/profile-import")
    assert created.json() == {
        "data": {
            "type": "profile",
            "attributes": {
                "external_id": "cust-42",
                "email": "ada@example.com",
                "first_name": "Ada",
            },
        }
    }
    wait_until(lambda: totals(api, profile)["success"] == 1)
    send(api, {"customer_id": "cust-42", "city": "London", "plan": "gold"})
    updated = vendor.wait_for(2, "/api/profile-import")[1]
    assert updated.json()["data"]["attributes"] == {
        "external_id": "cust-42",
        "location": {"city": "London"},
        "properties": {"plan": "gold"},
    }
    wait_until(lambda: totals(api, profile)["success"] == 2)
    [stored] = klaviyo.profiles
    assert stored["first_name"] == "Ada"
    assert stored["location"] == {"city": "London"}
    assert klaviyo.deviations == []


def test_identifiers_of_two_profiles_conflict(api: Api, profile: str, vendor: VendorMock) -> None:
    klaviyo = KlaviyoApi(vendor)
    klaviyo.profiles = [{"external_id": "cust-1"}, {"email": "ada@example.com"}]
    add_klaviyo(api, profile, vendor, PROFILE)
    send(api, {"customer_id": "cust-1", "customer_email": "ada@example.com"})
    [record] = wait_until(lambda: errors(api, profile))
    assert (record["category"], record["status_code"]) == ("http_4xx", 409)
    assert "already exists" in record["message"]
    assert klaviyo.deviations == []


def test_a_wrong_key_is_an_auth_error(api: Api, profile: str, vendor: VendorMock) -> None:
    klaviyo = KlaviyoApi(vendor)
    add_klaviyo(api, profile, vendor, EVENT, key="pk_revoked")
    send(api, ORDER)
    [record] = wait_until(lambda: errors(api, profile))
    assert (record["category"], record["status_code"]) == ("auth", 401)
    shown = record["request"]["headers"]["Authorization"]
    assert "pk_revoked" not in shown
    assert "********" in shown
    assert klaviyo.deviations == []


def test_throttling_waits_for_retry_after(api: Api, profile: str, vendor: VendorMock) -> None:
    klaviyo = KlaviyoApi(vendor)
    throttled = error(429, "throttled", "Request was throttled.", "Expected available in 1 second.")
    throttled.headers["Retry-After"] = "1"
    vendor.queue("/api/events", throttled)
    add_klaviyo(api, profile, vendor, EVENT)
    send(api, ORDER)
    counts = wait_until(lambda: (t := totals(api, profile)) and t["success"] == 1 and t)
    assert counts["retried"] == 1
    first, second = vendor.received("/api/events")
    assert second.at - first.at >= 1.0
    assert len(klaviyo.events) == 1
    assert klaviyo.deviations == []
