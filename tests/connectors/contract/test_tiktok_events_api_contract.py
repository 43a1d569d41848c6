"""Contract: Sluice against a strict stand-in for TikTok's Events API 2.0, end to end.

The stand-in checks ``POST /open_api/v1.3/event/track/`` as documented: the
``Access-Token`` header, a JSON body with ``event_source`` ``web``, the pixel code as
``event_source_id``, an optional ``test_event_code`` and ``data`` of 1 to 1,000 events, each
with ``event``, ``event_time`` in Unix seconds, ``event_id``, ``user`` (email, phone and
external_id as SHA-256 hex digests; IP and user agent in clear), ``properties`` and
``page``. Like TikTok it always answers HTTP 200 with a ``code``: 0 for success, 40105 for
a bad token, 40100 when throttled, 40002 for an invalid parameter, refusing the whole batch.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from sluice.connectors.catalog.tiktok_events_api import CONNECTOR
from sluice.connectors.registry import Registry
from sluice.services import Services
from sluice.settings import Settings
from tests.conftest import Api
from tests.support.flows import FAST_RETRIES, add_connector, send, totals, wait_until
from tests.support.vendor import Recorded, Reply, VendorMock

PIXEL = "CK1TESTPIXEL0001"
TOKEN = "tt-7f3a9c2e1b4d"
PATH = "/open_api/v1.3/event/track/"
HEX = re.compile(r"^[0-9a-f]{64}$")
USER_KEYS = {"email", "phone", "external_id", "ip", "user_agent", "ttclid", "ttp", "locale"}
PROPERTY_KEYS = {
    "contents",
    "content_type",
    "currency",
    "value",
    "query",
    "description",
    "order_id",
    "shop_id",
}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    """The real services, with TikTok in the catalog whether or not it is registered yet."""
    opened = Services.open(settings)
    if CONNECTOR.id not in opened.registry:
        opened.registry = Registry([*opened.registry.all(), CONNECTOR])
    yield opened
    opened.db.dispose()


def answer(code: int, message: str) -> Reply:
    return Reply(200, {"code": code, "message": message, "request_id": "202405011200", "data": {}})


class EventsApi:
    """TikTok's documented endpoint; ``deviations`` lists what Sluice got wrong."""

    def __init__(self, vendor: VendorMock) -> None:
        self.deviations: list[str] = []
        self.accepted: list[dict[str, Any]] = []
        vendor.respond("/", self.answer)

    def _event(self, i: int, event: Any) -> list[str]:
        keys = {"event", "event_time", "event_id", "user", "properties", "page", "limited_data_use"}
        if not isinstance(event, dict) or set(event) - keys:
            return [f"data[{i}]: unknown keys in {event!r}"]
        problems = []
        if not isinstance(event.get("event"), str) or not isinstance(event.get("event_time"), int):
            problems.append(f"data[{i}]: event and event_time (Unix seconds) are required")
        user = event.get("user")
        if not isinstance(user, dict) or set(user) - USER_KEYS:
            problems.append(f"data[{i}].user: must be an object of documented keys")
            return problems
        for key in ("email", "phone", "external_id"):
            if key in user and not HEX.match(str(user[key])):
                problems.append(f"data[{i}].user.{key}: must be a SHA-256 hex digest")
        for key in ("ip", "user_agent"):
            if key in user and HEX.match(str(user[key])):
                problems.append(f"data[{i}].user.{key}: must not be hashed")
        if set(event.get("properties", {})) - PROPERTY_KEYS:
            problems.append(f"data[{i}].properties: unknown keys")
        if set(event.get("page", {})) - {"url", "referrer"}:
            problems.append(f"data[{i}].page: unknown keys")
        return problems

    def answer(self, r: Recorded) -> Reply:
        if r.method != "POST" or r.path != PATH:
            self.deviations.append(f"{r.method} {r.path}: expected POST {PATH}")
            return Reply(404, "Not Found")
        if r.headers.get("access-token") != TOKEN:
            return answer(40105, "Access token is incorrect or has been revoked.")
        if r.headers.get("content-type", "").split(";")[0] != "application/json":
            self.deviations.append("Content-Type must be application/json")
        body = r.json()
        allowed = {"event_source", "event_source_id", "test_event_code", "partner_name", "data"}
        if not isinstance(body, dict) or set(body) - allowed:
            self.deviations.append(f"unexpected body: {str(body)[:200]}")
            return answer(40002, "Invalid request body")
        if body.get("event_source") != "web" or body.get("event_source_id") != PIXEL:
            self.deviations.append("event_source must be web and event_source_id the pixel code")
        data = body.get("data")
        if not isinstance(data, list) or not 1 <= len(data) <= 1000:
            self.deviations.append("data must hold 1 to 1,000 events")
            return answer(40002, "data: length must be between 1 and 1000")
        for i, event in enumerate(data):
            self.deviations.extend(self._event(i, event))
        for i, event in enumerate(data):
            currency = event.get("properties", {}).get("currency")
            if currency is not None and not re.fullmatch(r"[A-Z]{3}", str(currency)):
                return answer(40002, f"data[{i}].properties.currency: invalid ISO 4217 code")
        self.accepted.extend(data)
        return answer(0, "OK")


ACTION = {
    "name": "TikTok events",
    "type": "send_event",
    "mappings": [
        {"parameter": "event", "attribute": "tealium_event"},
        {"parameter": "event_time", "attribute": "ts"},
        {"parameter": "email", "attribute": "customer_email"},
        {"parameter": "phone", "attribute": "customer_phone"},
        {"parameter": "external_id", "attribute": "customer_id"},
        {"parameter": "ip", "attribute": "ip"},
        {"parameter": "user_agent", "attribute": "ua"},
        {"parameter": "value", "attribute": "order_total"},
        {"parameter": "currency", "attribute": "currency"},
        {"parameter": "order_id", "attribute": "order_id"},
        {"parameter": "page_url", "attribute": "page_url"},
        {"parameter": "max_batch_age_seconds", "value": 0.3},
    ],
}


def add_tiktok(api: Api, profile: str, vendor: VendorMock, token: str = TOKEN) -> Any:
    configuration = {
        "pixel_code": PIXEL,
        "access_token": token,
        "base_url": vendor.url,
        **FAST_RETRIES,
    }
    return add_connector(
        api,
        profile,
        type="tiktok_events_api",
        name="TikTok",
        configuration=configuration,
        actions=[ACTION],
    )


def errors(api: Api, profile: str) -> list[dict[str, Any]]:
    return list(api.get(f"{profile}/errors").json()["errors"])


def test_a_payment_is_sent_as_documented(api: Api, profile: str, vendor: VendorMock) -> None:
    tiktok = EventsApi(vendor)
    connector = add_tiktok(api, profile, vendor)
    ts = int(time.time()) - 30
    event = {
        "tealium_event": "CompletePayment",
        "ts": ts,
        "customer_email": "Ada@Example.com",
        "customer_phone": "+49 151 23456789",
        "customer_id": "cust-42",
        "ip": "203.0.113.7",
        "ua": "Mozilla/5.0",
        "order_total": 42.5,
        "currency": "EUR",
        "order_id": "A-1001",
        "page_url": "https://shop.example.com/done",
    }
    event_id = send(api, event)["event_ids"][0]
    [request] = vendor.wait_for(1, PATH)
    assert request.headers["access-token"] == TOKEN
    assert request.json() == {
        "event_source": "web",
        "event_source_id": PIXEL,
        "data": [
            {
                "event": "CompletePayment",
                "event_time": ts,
                "event_id": f"{event_id}:{connector['actions'][0]['id']}",
                "user": {
                    "email": sha("ada@example.com"),
                    "phone": sha("+4915123456789"),
                    "external_id": sha("cust-42"),
                    "ip": "203.0.113.7",
                    "user_agent": "Mozilla/5.0",
                },
                "properties": {"value": 42.5, "currency": "EUR", "order_id": "A-1001"},
                "page": {"url": "https://shop.example.com/done"},
            }
        ],
    }
    wait_until(lambda: totals(api, profile)["success"] == 1)
    assert tiktok.deviations == []


def test_one_invalid_event_fails_and_its_batch_goes_again(
    api: Api, profile: str, vendor: VendorMock
) -> None:
    tiktok = EventsApi(vendor)
    add_tiktok(api, profile, vendor)
    events = [
        {"tealium_event": "AddToCart", "customer_id": f"c-{n}", "currency": "EUR"} for n in range(3)
    ]
    events[2]["currency"] = "Euro"
    reply = api.client.post(
        "/bulk-event", json={"shared": {"tealium_account": "acme"}, "events": events}
    )
    assert reply.status_code == 200, reply.text
    ids = reply.json()["event_ids"]
    [record] = wait_until(lambda: errors(api, profile))
    assert record["event_id"] == ids[2]
    assert record["category"] == "http_4xx"
    assert "TikTok 40002" in record["message"]
    assert record["request"]["headers"]["Access-Token"] == "********"
    wait_until(lambda: totals(api, profile)["success"] == 2)
    counts = totals(api, profile)
    assert counts["retried"] == 2
    assert len(tiktok.accepted) == 2
    assert tiktok.deviations == []


def test_a_revoked_token_is_an_auth_error(api: Api, profile: str, vendor: VendorMock) -> None:
    tiktok = EventsApi(vendor)
    add_tiktok(api, profile, vendor, token="tt-revoked-0000")
    send(api, {"tealium_event": "ViewContent", "customer_id": "c-1"})
    [record] = wait_until(lambda: errors(api, profile))
    assert record["category"] == "auth"
    assert record["attempts"] == 1
    assert "40105" in record["message"]
    assert tiktok.deviations == []


def test_throttling_is_retried(api: Api, profile: str, vendor: VendorMock) -> None:
    tiktok = EventsApi(vendor)
    vendor.queue(PATH, answer(40100, "Too many requests. Please retry in some time."))
    add_tiktok(api, profile, vendor)
    send(api, {"tealium_event": "ViewContent", "customer_id": "c-1"})
    wait_until(lambda: totals(api, profile)["success"] == 1)
    counts = totals(api, profile)
    assert counts["retried"] == 1
    assert tiktok.deviations == []
