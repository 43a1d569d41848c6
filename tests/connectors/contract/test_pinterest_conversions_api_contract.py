"""Contract: Sluice against a strict stand-in for Pinterest's Conversions API, end to end.

The stand-in checks ``POST /v5/ad_accounts/{id}/events`` as documented: a Bearer
conversion token, an optional ``test`` query parameter, a JSON body of ``data`` (1 to 1,000
events), each with ``event_name``, ``action_source`` (web, app_android, app_ios, offline),
``event_time`` in Unix seconds, ``event_id`` and ``user_data`` whose contact details are
lists of SHA-256 hex digests, ``custom_data.value`` as text. It answers as Pinterest does:
200 with ``num_events_received``, ``num_events_processed`` and a ``status`` per event (an
event without an email, a mobile ad ID, or both IP and user agent fails), 401 for a bad
token, 429 when throttled.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from sluice.connectors.catalog.pinterest_conversions_api import ACTION_SOURCES, CONNECTOR
from sluice.connectors.registry import Registry
from sluice.services import Services
from sluice.settings import Settings
from tests.conftest import Api
from tests.support.flows import FAST_RETRIES, add_connector, send, totals, wait_until
from tests.support.vendor import Recorded, Reply, VendorMock

ACCOUNT = "549755885175"
TOKEN = "pina_AMA_test_token"
PATH = f"/v5/ad_accounts/{ACCOUNT}/events"
HEX = re.compile(r"^[0-9a-f]{64}$")
HASHED = {
    "em",
    "ph",
    "ge",
    "db",
    "ln",
    "fn",
    "ct",
    "st",
    "zp",
    "country",
    "external_id",
    "hashed_maids",
}
EVENT_KEYS = {
    "event_name",
    "action_source",
    "event_time",
    "event_id",
    "event_source_url",
    "opt_out",
    "partner_name",
    "user_data",
    "custom_data",
    "app_id",
    "app_name",
    "app_version",
    "device_brand",
    "device_carrier",
    "device_model",
    "device_type",
    "os_version",
    "wifi",
    "language",
}
CUSTOM_KEYS = {
    "currency",
    "value",
    "content_ids",
    "content_name",
    "content_category",
    "content_brand",
    "contents",
    "num_items",
    "order_id",
    "search_string",
    "opt_out_type",
    "np",
}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    """The real services, with Pinterest in the catalog whether or not it is registered yet."""
    opened = Services.open(settings)
    if CONNECTOR.id not in opened.registry:
        opened.registry = Registry([*opened.registry.all(), CONNECTOR])
    yield opened
    opened.db.dispose()


class ConversionsApi:
    """Pinterest's documented endpoint; ``deviations`` lists what Sluice got wrong."""

    def __init__(self, vendor: VendorMock) -> None:
        self.deviations: list[str] = []
        self.processed: list[dict[str, Any]] = []
        vendor.respond("/", self.answer)

    def _check(self, i: int, event: Any) -> list[str]:
        if not isinstance(event, dict) or set(event) - EVENT_KEYS:
            return [f"data[{i}]: unknown keys in {event!r}"]
        problems = []
        for key, kind in (("event_name", str), ("event_time", int), ("event_id", str)):
            if not isinstance(event.get(key), kind):
                problems.append(f"data[{i}].{key}: required, {kind.__name__}")
        if event.get("action_source") not in ACTION_SOURCES:
            problems.append(f"data[{i}].action_source: {event.get('action_source')!r}")
        user = event.get("user_data")
        if not isinstance(user, dict) or set(user) - HASHED - {
            "client_ip_address",
            "client_user_agent",
        }:
            return [*problems, f"data[{i}].user_data: must be an object of documented keys"]
        for key in HASHED & set(user):
            if not isinstance(user[key], list) or not all(HEX.match(str(v)) for v in user[key]):
                problems.append(f"data[{i}].user_data.{key}: must be a list of SHA-256 digests")
        custom = event.get("custom_data", {})
        if set(custom) - CUSTOM_KEYS or not isinstance(custom.get("value", ""), str):
            problems.append(f"data[{i}].custom_data: documented keys, value as text")
        return problems

    def _status(self, event: dict[str, Any]) -> dict[str, Any]:
        user = event.get("user_data", {})
        if (
            user.get("em")
            or user.get("hashed_maids")
            or (user.get("client_ip_address") and user.get("client_user_agent"))
        ):
            self.processed.append(event)
            return {"status": "processed", "error_message": "", "warning_message": ""}
        why = "user_data requires em, hashed_maids, or client_ip_address and client_user_agent."
        return {"status": "failed", "error_message": why, "warning_message": ""}

    def answer(self, r: Recorded) -> Reply:
        if r.method != "POST" or r.path != PATH:
            self.deviations.append(f"{r.method} {r.path}: expected POST {PATH}")
            return Reply(404, {"code": 404, "message": "Not found"})
        if r.headers.get("authorization") != f"Bearer {TOKEN}":
            return Reply(401, {"code": 2, "message": "Authentication failed."})
        if set(r.query) - {"test"} or r.query.get("test", "true") not in ("true", "false"):
            self.deviations.append(f"query {r.query!r}: only test=true|false is documented")
        if r.headers.get("content-type", "").split(";")[0] != "application/json":
            self.deviations.append("Content-Type must be application/json")
        body = r.json()
        data = body.get("data") if isinstance(body, dict) else None
        if set(body) != {"data"} or not isinstance(data, list) or not 1 <= len(data) <= 1000:
            self.deviations.append("the body must be {data: [1 to 1,000 events]}")
            return Reply(400, {"code": 1, "message": "Invalid request body"})
        for i, event in enumerate(data):
            self.deviations.extend(self._check(i, event))
        statuses = [self._status(event) for event in data]
        processed = sum(s["status"] == "processed" for s in statuses)
        return Reply(
            200,
            {
                "num_events_received": len(data),
                "num_events_processed": processed,
                "events": statuses,
            },
        )


ACTION = {
    "name": "Pinterest conversions",
    "type": "send_event",
    "mappings": [
        {"parameter": "event_name", "attribute": "tealium_event"},
        {"parameter": "event_time", "attribute": "ts"},
        {"parameter": "event_source_url", "attribute": "page_url"},
        {"parameter": "email", "attribute": "customer_email"},
        {"parameter": "client_ip_address", "attribute": "ip"},
        {"parameter": "client_user_agent", "attribute": "ua"},
        {"parameter": "value", "attribute": "order_total"},
        {"parameter": "currency", "attribute": "currency"},
        {"parameter": "order_id", "attribute": "order_id"},
        {"parameter": "max_batch_age_seconds", "value": 0.3},
    ],
}


def add_pinterest(
    api: Api, profile: str, vendor: VendorMock, token: str = TOKEN, **config: Any
) -> Any:
    configuration = {
        "ad_account_id": ACCOUNT,
        "access_token": token,
        "base_url": vendor.url,
        **FAST_RETRIES,
        **config,
    }
    return add_connector(
        api,
        profile,
        type="pinterest_conversions_api",
        name="Pinterest",
        configuration=configuration,
        actions=[ACTION],
    )


def errors(api: Api, profile: str) -> list[dict[str, Any]]:
    return list(api.get(f"{profile}/errors").json()["errors"])


def test_a_checkout_is_sent_as_documented(api: Api, profile: str, vendor: VendorMock) -> None:
    pinterest = ConversionsApi(vendor)
    connector = add_pinterest(api, profile, vendor, test_mode=True)
    ts = int(time.time()) - 30
    event = {
        "tealium_event": "checkout",
        "ts": ts,
        "page_url": "https://shop.example.com/done",
        "customer_email": "Ada@Example.com ",
        "ip": "203.0.113.7",
        "ua": "Mozilla/5.0",
        "order_total": 42.5,
        "currency": "usd",
        "order_id": "A-1001",
    }
    event_id = send(api, event)["event_ids"][0]
    [request] = vendor.wait_for(1, PATH)
    assert request.query == {"test": "true"}
    assert request.json() == {
        "data": [
            {
                "event_name": "checkout",
                "action_source": "web",
                "event_time": ts,
                "event_id": f"{event_id}:{connector['actions'][0]['id']}",
                "event_source_url": "https://shop.example.com/done",
                "user_data": {
                    "em": [sha("ada@example.com")],
                    "client_ip_address": "203.0.113.7",
                    "client_user_agent": "Mozilla/5.0",
                },
                "custom_data": {"value": "42.5", "currency": "USD", "order_id": "A-1001"},
            }
        ]
    }
    wait_until(lambda: totals(api, profile)["success"] == 1)
    assert pinterest.deviations == []


def test_each_event_of_a_batch_gets_its_own_outcome(
    api: Api, profile: str, vendor: VendorMock
) -> None:
    pinterest = ConversionsApi(vendor)
    add_pinterest(api, profile, vendor)
    events = [{"tealium_event": "lead", "customer_email": f"u{n}@example.com"} for n in range(3)]
    del events[1]["customer_email"]  # nothing to match this one on
    reply = api.client.post(
        "/bulk-event", json={"shared": {"tealium_account": "acme"}, "events": events}
    )
    assert reply.status_code == 200, reply.text
    ids = reply.json()["event_ids"]
    [record] = wait_until(lambda: errors(api, profile))
    assert record["event_id"] == ids[1]
    assert record["category"] == "http_4xx"
    assert "user_data requires em" in record["message"]
    assert record["request"]["headers"]["Authorization"] == "Bearer ********"
    wait_until(lambda: totals(api, profile)["success"] == 2)
    counts = totals(api, profile)
    assert counts["retried"] == 0  # Pinterest judged each event: nothing to send again
    assert len(vendor.received(PATH)) == 1
    assert len(pinterest.processed) == 2
    assert pinterest.deviations == []


def test_a_bad_token_is_an_auth_error(api: Api, profile: str, vendor: VendorMock) -> None:
    pinterest = ConversionsApi(vendor)
    add_pinterest(api, profile, vendor, token="pina_revoked")
    send(api, {"tealium_event": "lead", "customer_email": "ada@example.com"})
    [record] = wait_until(lambda: errors(api, profile))
    assert record["category"] == "auth"
    assert record["status_code"] == 401
    assert record["attempts"] == 1
    assert pinterest.deviations == []


def test_throttling_is_retried(api: Api, profile: str, vendor: VendorMock) -> None:
    pinterest = ConversionsApi(vendor)
    throttled = Reply(429, {"code": 8, "message": "Rate limit exceeded"}, {"Retry-After": "0"})
    vendor.queue(PATH, throttled)
    add_pinterest(api, profile, vendor)
    send(api, {"tealium_event": "lead", "customer_email": "ada@example.com"})
    wait_until(lambda: totals(api, profile)["success"] == 1)
    counts = totals(api, profile)
    assert counts["retried"] == 1
    assert pinterest.deviations == []
