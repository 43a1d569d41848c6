"""Contract: Sluice against a strict stand-in for Segment's HTTP Tracking API, end to end.

The stand-in checks every call against the documented ``POST /v1/batch`` (basic auth with
the write key and an empty password, JSON, at most 500 KB and 2,500 messages a batch, 32 KB
a message, Track and Identify fields of the Segment Spec, unique ``messageId``s under 100
characters), records each deviation, and answers as Segment does: 200 ``{"success": true}``,
400 for a body it cannot take, 429 with ``Retry-After``. A test fails on any deviation.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import orjson
import pytest

from sluice.connectors.catalog.segment import CONNECTOR
from sluice.connectors.registry import Registry
from sluice.services import Services
from sluice.settings import Settings
from tests.conftest import Api
from tests.support.flows import FAST_RETRIES, add_connector, send, totals, wait_until
from tests.support.vendor import Recorded, Reply, VendorMock

KEY = "9eYtQ2xw7pZrKfA1bC3dE5gH7jK9mN0p"
OK = Reply(200, {"success": True})


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    """The real services, with Segment in the catalog whether or not it is registered yet."""
    opened = Services.open(settings)
    if CONNECTOR.id not in opened.registry:
        opened.registry = Registry([*opened.registry.all(), CONNECTOR])
    yield opened
    opened.db.dispose()


def _is_time(value: Any) -> bool:
    try:
        datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return False
    return True


class SegmentApi:
    """Segment's documented Tracking API, strictly; ``deviations`` lists what Sluice got wrong."""

    def __init__(self, vendor: VendorMock) -> None:
        self.deviations: list[str] = []
        self.message_ids: list[str] = []
        vendor.respond("/", self.unknown)
        vendor.respond("/v1/batch", self.batch)

    def unknown(self, r: Recorded) -> Reply:
        self.deviations.append(f"{r.method} {r.path}: not the batch endpoint")
        return Reply(404, {"code": "not_found", "message": "Not Found"})

    def batch(self, r: Recorded) -> Reply:
        if r.method != "POST" or r.path != "/v1/batch":
            self.deviations.append(f"{r.method} {r.path}: expected POST /v1/batch")
        if r.headers.get("content-type", "").split(";")[0] != "application/json":
            self.deviations.append("Content-Type must be application/json")
        expected = "Basic " + base64.b64encode(f"{KEY}:".encode()).decode()
        if r.headers.get("authorization") != expected:
            self.deviations.append("the write key must be the basic-auth user, with a colon")
        if len(r.body) > 500_000:
            self.deviations.append(f"the batch is {len(r.body)} bytes, over 500 KB")
            return Reply(400, {"code": "invalid_request", "message": "Request too large"})
        try:
            body = r.json()
        except ValueError:
            self.deviations.append("the body is not JSON")
            return Reply(400, {"code": "invalid_request", "message": "Invalid JSON"})
        messages = body.get("batch") if isinstance(body, dict) else None
        if not isinstance(messages, list) or not 1 <= len(messages) <= 2500:
            self.deviations.append("batch must be an array of 1 to 2,500 messages")
            return Reply(400, {"code": "invalid_request", "message": "Invalid batch"})
        for i, message in enumerate(messages):
            self.deviations.extend(self._message(i, message))
        return OK

    def _message(self, i: int, message: Any) -> list[str]:
        where = f"batch[{i}]"
        if not isinstance(message, dict):
            return [f"{where}: not an object"]
        problems = []
        if len(orjson.dumps(message)) > 32 << 10:
            problems.append(f"{where}: over 32 KB")
        kind = message.get("type")
        if kind not in ("track", "identify"):
            problems.append(f"{where}: type {kind!r} is not track or identify")
        ids = [message.get(k) for k in ("userId", "anonymousId") if k in message]
        if not ids or not all(isinstance(v, str) and v for v in ids):
            problems.append(f"{where}: needs a userId or an anonymousId (strings)")
        message_id = message.get("messageId")
        if not isinstance(message_id, str) or not 0 < len(message_id) < 100:
            problems.append(f"{where}: messageId must be text of fewer than 100 characters")
        self.message_ids.append(str(message_id))
        if kind == "track" and not (isinstance(message.get("event"), str) and message["event"]):
            problems.append(f"{where}: a Track call needs an event name")
        for key in ("properties", "traits", "context", "integrations"):
            if key in message and not isinstance(message[key], dict):
                problems.append(f"{where}: {key} must be an object")
        if "timestamp" in message and not _is_time(message["timestamp"]):
            problems.append(f"{where}: timestamp must be ISO 8601")
        allowed = {"type", "userId", "anonymousId", "messageId", "timestamp", "context"}
        allowed.add("integrations")
        allowed |= {"event", "properties"} if kind == "track" else {"traits"}
        if set(message) - allowed:
            problems.append(f"{where}: unexpected fields {sorted(set(message) - allowed)}")
        return problems


TRACK = {
    "name": "Track purchases",
    "type": "track",
    "mappings": [
        {"parameter": "event", "attribute": "tealium_event"},
        {"parameter": "user_id", "attribute": "customer_id"},
        {"parameter": "properties", "key": "order_id", "attribute": "order_id"},
        {"parameter": "properties", "key": "revenue", "attribute": "order_total"},
        {"parameter": "context", "key": "page.url", "attribute": "page_url"},
        {"parameter": "timestamp", "attribute": "ts"},
        {"parameter": "max_batch_age_seconds", "value": 0.2},
    ],
}


def add_segment(api: Api, profile: str, vendor: VendorMock, **action: Any) -> Any:
    return add_connector(
        api,
        profile,
        type="segment",
        name="Segment Prod",
        configuration={"write_key": KEY, "base_url": vendor.url, **FAST_RETRIES},
        actions=[{**TRACK, **action}],
    )


def errors(api: Api, profile: str) -> list[dict[str, Any]]:
    return list(api.get(f"{profile}/errors").json()["errors"])


def test_track_sends_the_documented_payload(api: Api, profile: str, vendor: VendorMock) -> None:
    segment = SegmentApi(vendor)
    connector = add_segment(api, profile, vendor)
    accepted = send(
        api,
        {
            "tealium_event": "Order Completed",
            "customer_id": "user-42",
            "order_id": "A-1001",
            "order_total": 42.5,
            "page_url": "https://shop.example/thanks",
            "ts": "2024-05-01T12:00:00.000Z",
        },
    )
    [request] = vendor.wait_for(1, "/v1/batch")
    event_id = accepted["event_ids"][0]
    assert request.json() == {
        "batch": [
            {
                "type": "track",
                "messageId": f"{event_id}:{connector['actions'][0]['id']}",
                "userId": "user-42",
                "event": "Order Completed",
                "properties": {"order_id": "A-1001", "revenue": 42.5},
                "context": {"page": {"url": "https://shop.example/thanks"}},
                "timestamp": "2024-05-01T12:00:00.000Z",
            }
        ]
    }
    wait_until(lambda: totals(api, profile)["success"] == 1)
    assert segment.deviations == []


def test_identify_uses_the_visitor_id_as_anonymous_id(
    api: Api, profile: str, vendor: VendorMock
) -> None:
    segment = SegmentApi(vendor)
    identify = {
        "name": "Identify",
        "type": "identify",
        "mappings": [
            {"parameter": "traits", "key": "email", "attribute": "email"},
            {"parameter": "max_batch_age_seconds", "value": 0.2},
        ],
    }
    add_segment(api, profile, vendor, **identify)
    send(api, {"tealium_visitor_id": "visitor-7", "email": "ada@example.com"})
    [request] = vendor.wait_for(1, "/v1/batch")
    [message] = request.json()["batch"]
    assert message["type"] == "identify"
    assert message["anonymousId"] == "visitor-7"
    assert message["traits"] == {"email": "ada@example.com"}
    assert _is_time(message["timestamp"])
    wait_until(lambda: totals(api, profile)["success"] == 1)
    assert segment.deviations == []


def test_a_batch_reports_each_event_on_its_own(api: Api, profile: str, vendor: VendorMock) -> None:
    segment = SegmentApi(vendor)
    add_segment(api, profile, vendor)
    events = [
        {"tealium_event": "Viewed", "customer_id": "u-1", "ts": "2024-05-01T12:00:00Z"},
        {"tealium_event": "Viewed", "customer_id": "u-2", "ts": "last tuesday"},
        {"tealium_event": "Viewed", "customer_id": "u-3", "ts": "2024-05-01T12:00:02Z"},
    ]
    reply = api.client.post(
        "/bulk-event", json={"shared": {"tealium_account": "acme"}, "events": events}
    )
    assert reply.status_code == 200, reply.text
    bad_event = reply.json()["event_ids"][1]
    [record] = wait_until(lambda: errors(api, profile))
    [request] = vendor.wait_for(1, "/v1/batch")  # one call carried the whole batch
    assert [m["userId"] for m in request.json()["batch"]] == ["u-1", "u-3"]
    assert record["event_id"] == bad_event
    assert record["category"] == "mapping"
    assert "timestamp" in record["message"]
    counts = wait_until(lambda: (t := totals(api, profile)) and t["success"] == 2 and t)
    assert counts["error"] == 1
    assert len(set(segment.message_ids)) == 2
    assert segment.deviations == []


def test_a_refused_batch_is_an_error_record(api: Api, profile: str, vendor: VendorMock) -> None:
    segment = SegmentApi(vendor)
    vendor.queue("/v1/batch", Reply(400, {"code": "invalid_request", "message": "Invalid JSON"}))
    add_segment(api, profile, vendor)
    send(api, {"tealium_event": "Viewed", "customer_id": "u-1"})
    [record] = wait_until(lambda: errors(api, profile))
    assert record["category"] == "http_4xx"
    assert record["status_code"] == 400
    assert "Invalid JSON" in record["message"]
    assert record["attempts"] == 1
    assert record["request"]["headers"]["Authorization"] == "Basic ********"
    assert KEY not in str(record)
    assert segment.deviations == []


def test_a_rate_limit_is_retried_with_the_same_message_id(
    api: Api, profile: str, vendor: VendorMock
) -> None:
    segment = SegmentApi(vendor)
    vendor.queue("/v1/batch", Reply(429, {"code": "rate_limited"}, {"Retry-After": "0"}))
    add_segment(api, profile, vendor)
    send(api, {"tealium_event": "Viewed", "customer_id": "u-1"})
    counts = wait_until(lambda: (t := totals(api, profile)) and t["success"] == 1 and t)
    assert counts["retried"] == 1
    first, second = (r.json()["batch"][0]["messageId"] for r in vendor.received("/v1/batch"))
    assert first == second  # Segment drops the duplicate if the first call got through
    assert segment.deviations == []
