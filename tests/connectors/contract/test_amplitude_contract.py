"""Contract: Sluice against a strict stand-in for Amplitude's HTTP V2 API, end to end.

The stand-in checks ``POST /2/httpapi`` as documented: JSON content type, ``api_key``,
``events`` (fewer than 2,000, under 1 MB) whose fields are Amplitude's, each with
``event_type``, a user or device ID of at least ``min_id_length`` characters, ``time`` in
epoch milliseconds and an ``insert_id``. It answers 200, 400 with
``events_with_invalid_fields`` (rejecting the whole request, as Amplitude does), or 429.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sluice.connectors.catalog.amplitude import CONNECTOR
from sluice.connectors.registry import Registry
from sluice.services import Services
from sluice.settings import Settings
from tests.conftest import Api
from tests.support.flows import FAST_RETRIES, add_connector, send, totals, wait_until
from tests.support.vendor import Recorded, Reply, VendorMock

KEY = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
EVENT_FIELDS = {
    "user_id",
    "device_id",
    "event_type",
    "time",
    "event_properties",
    "user_properties",
    "groups",
    "app_version",
    "platform",
    "os_name",
    "os_version",
    "device_brand",
    "device_manufacturer",
    "device_model",
    "carrier",
    "country",
    "region",
    "city",
    "dma",
    "language",
    "price",
    "quantity",
    "revenue",
    "productId",
    "revenueType",
    "location_lat",
    "location_lng",
    "ip",
    "idfa",
    "idfv",
    "adid",
    "android_id",
    "event_id",
    "session_id",
    "insert_id",
    "plan",
    "partner_id",
}
RESERVED_TYPES = {"$identify", "$groupidentify", "revenue_amount"}


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    """The real services, with Amplitude in the catalog whether or not it is registered yet."""
    opened = Services.open(settings)
    if CONNECTOR.id not in opened.registry:
        opened.registry = Registry([*opened.registry.all(), CONNECTOR])
    yield opened
    opened.db.dispose()


class AmplitudeApi:
    """Amplitude's HTTP V2 API, strictly; ``deviations`` lists what Sluice got wrong."""

    def __init__(self, vendor: VendorMock) -> None:
        self.deviations: list[str] = []
        self.ingested: dict[str, dict[str, Any]] = {}  # by insert_id: duplicates are dropped
        vendor.respond("/", self.answer)

    def _event(self, i: int, event: Any, min_length: int) -> list[str]:
        if not isinstance(event, dict):
            return [f"events[{i}]: not an object"]
        problems = [f"events[{i}]: unknown field {k}" for k in set(event) - EVENT_FIELDS]
        if not isinstance(event.get("event_type"), str) or not event["event_type"]:
            problems.append(f"events[{i}]: event_type is required")
        ids = [event.get(k) for k in ("user_id", "device_id") if k in event]
        if not ids or not all(isinstance(v, str) and len(v) >= min_length for v in ids):
            problems.append(f"events[{i}]: a user_id or device_id of {min_length}+ characters")
        if not isinstance(event.get("time"), int) or event["time"] < 10**12:
            problems.append(f"events[{i}]: time must be epoch milliseconds")
        if not isinstance(event.get("insert_id"), str):
            problems.append(f"events[{i}]: insert_id is needed for safe retries")
        for name in ("event_properties", "user_properties"):
            if not isinstance(event.get(name, {}), dict):
                problems.append(f"events[{i}]: {name} must be an object")
        return problems

    def answer(self, r: Recorded) -> Reply:
        if r.method != "POST" or r.path != "/2/httpapi":
            self.deviations.append(f"{r.method} {r.path}: expected POST /2/httpapi")
            return Reply(404, {"code": 404, "error": "Not found"})
        if r.headers.get("content-type", "").split(";")[0] != "application/json":
            self.deviations.append("Content-Type must be application/json")
        if len(r.body) >= 1_000_000:
            self.deviations.append(f"the request is {len(r.body)} bytes, over 1 MB")
            return Reply(413, {"code": 413, "error": "Payload too large"})
        body = r.json()
        if not isinstance(body, dict) or set(body) - {"api_key", "events", "options"}:
            self.deviations.append(f"unexpected body: {str(body)[:200]}")
            return Reply(400, {"code": 400, "error": "Invalid JSON request body"})
        if body.get("api_key") != KEY:
            return Reply(400, {"code": 400, "error": f"Invalid API key: {body.get('api_key')}"})
        events = body.get("events")
        if not isinstance(events, list) or not 1 <= len(events) < 2000:
            self.deviations.append("events must hold 1 to 1,999 events")
            return Reply(400, {"code": 400, "error": "Request missing required field"})
        min_length = (body.get("options") or {}).get("min_id_length", 5)
        invalid: dict[str, list[int]] = {}
        for i, event in enumerate(events):
            self.deviations.extend(self._event(i, event, min_length))
            if event.get("event_type") in RESERVED_TYPES:
                invalid.setdefault("event_type", []).append(i)
        if invalid:
            # Amplitude refuses the whole request and names the events at fault.
            error = {"code": 400, "error": "Invalid field values on some events"}
            return Reply(400, {**error, "events_with_invalid_fields": invalid})
        for event in events:
            self.ingested.setdefault(event["insert_id"], event)
        return Reply(
            200, {"code": 200, "events_ingested": len(events), "payload_size_bytes": len(r.body)}
        )


ACTION = {
    "name": "Events",
    "type": "send_events",
    "mappings": [
        {"parameter": "event_type", "attribute": "tealium_event"},
        {"parameter": "user_id", "attribute": "customer_id"},
        {"parameter": "time", "attribute": "ts"},
        {"parameter": "event_properties", "key": "order_id", "attribute": "order_id"},
        {"parameter": "revenue", "attribute": "order_total"},
        {"parameter": "max_batch_age_seconds", "value": 0.3},
    ],
}


def add_amplitude(api: Api, profile: str, vendor: VendorMock, key: str = KEY) -> Any:
    configuration = {"api_key": key, "base_url": vendor.url, **FAST_RETRIES}
    return add_connector(
        api,
        profile,
        type="amplitude",
        name="Amplitude",
        configuration=configuration,
        actions=[ACTION],
    )


def errors(api: Api, profile: str) -> list[dict[str, Any]]:
    return list(api.get(f"{profile}/errors").json()["errors"])


def test_an_event_is_sent_as_documented(api: Api, profile: str, vendor: VendorMock) -> None:
    amplitude = AmplitudeApi(vendor)
    connector = add_amplitude(api, profile, vendor)
    action_id = connector["actions"][0]["id"]
    event = {"tealium_event": "purchase", "customer_id": "user-0042", "ts": "1714564800000"}
    event_id = send(api, {**event, "order_id": "A-1001", "order_total": 42.5})["event_ids"][0]
    [request] = vendor.wait_for(1, "/2/httpapi")
    assert request.json() == {
        "api_key": KEY,
        "events": [
            {
                "event_type": "purchase",
                "user_id": "user-0042",
                "time": 1714564800000,
                "insert_id": f"{event_id}:{action_id}",
                "event_properties": {"order_id": "A-1001"},
                "revenue": 42.5,
            }
        ],
    }
    wait_until(lambda: totals(api, profile)["success"] == 1)
    assert amplitude.deviations == []


def test_a_refused_event_fails_and_the_rest_go_again(
    api: Api, profile: str, vendor: VendorMock
) -> None:
    amplitude = AmplitudeApi(vendor)
    add_amplitude(api, profile, vendor)
    kinds = ["viewed", "$identify", "viewed"]
    events = [{"tealium_event": k, "customer_id": f"user-000{i}"} for i, k in enumerate(kinds)]
    reply = api.client.post(
        "/bulk-event", json={"shared": {"tealium_account": "acme"}, "events": events}
    )
    assert reply.status_code == 200, reply.text
    refused = reply.json()["event_ids"][1]
    [record] = wait_until(lambda: errors(api, profile))
    assert record["event_id"] == refused
    assert record["category"] == "http_4xx"
    assert "event_type invalid" in record["message"]
    counts = wait_until(lambda: (t := totals(api, profile)) and t["success"] == 2 and t)
    assert counts["error"] == 1
    assert counts["retried"] == 2
    first, *again = vendor.received("/2/httpapi")
    assert len(first.json()["events"]) == 3
    resent = sorted(e["user_id"] for r in again for e in r.json()["events"])
    assert resent == ["user-0000", "user-0002"]  # the refused event was not sent again
    assert len(amplitude.ingested) == 2
    assert amplitude.deviations == []


def test_throttling_is_retried(api: Api, profile: str, vendor: VendorMock) -> None:
    amplitude = AmplitudeApi(vendor)
    throttled = {
        "code": 429,
        "error": "Too many requests for some devices and users",
        "eps_threshold": 30,
        "throttled_users": {"user-0001": 31},
        "throttled_events": [0],
    }
    vendor.queue("/2/httpapi", Reply(429, throttled, {"Retry-After": "0"}))
    add_amplitude(api, profile, vendor)
    send(api, {"tealium_event": "viewed", "customer_id": "user-0001"})
    counts = wait_until(lambda: (t := totals(api, profile)) and t["success"] == 1 and t)
    assert counts["retried"] == 1
    assert amplitude.deviations == []


def test_an_invalid_api_key_is_an_auth_error(api: Api, profile: str, vendor: VendorMock) -> None:
    amplitude = AmplitudeApi(vendor)
    add_amplitude(api, profile, vendor, key="not-the-key-1234")
    send(api, {"tealium_event": "viewed", "customer_id": "user-0001"})
    [record] = wait_until(lambda: errors(api, profile))
    assert record["category"] == "auth"
    assert record["attempts"] == 1
    assert "not-the-key-1234" not in record["request"]["body"]
    assert amplitude.deviations == []
