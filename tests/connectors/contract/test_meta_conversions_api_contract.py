"""Contract: Sluice against a strict stand-in for Meta's Conversions API, end to end.

The stand-in checks ``POST /{version}/{pixel_id}/events`` as documented: the access token in
the query, a JSON body of ``data`` (1 to 1,000 events) and an optional ``test_event_code``;
each event with ``event_name``, ``event_time`` (Unix seconds, at most 7 days old),
``action_source`` from Meta's list, ``user_data`` whose contact details are lowercase SHA-256
hex digests while IP, user agent, ``fbc`` and ``fbp`` are in clear, and website events with
``event_source_url`` and ``client_user_agent``. It answers as Meta does: 200 with
``events_received``; a Graph error object with code 190 for a bad token, 17 when throttled,
and 100 for an invalid parameter, refusing the whole batch and naming ``data[N]``.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from sluice.connectors.catalog.meta_conversions_api import ACTION_SOURCES, CONNECTOR
from sluice.connectors.registry import Registry
from sluice.services import Services
from sluice.settings import Settings
from tests.conftest import Api
from tests.support.flows import FAST_RETRIES, add_connector, send, totals, wait_until
from tests.support.vendor import Recorded, Reply, VendorMock

PIXEL = "987654321012345"
TOKEN = "EAAGm0PX4ZCpsBAtest"
PATH = f"/v23.0/{PIXEL}/events"
HEX = re.compile(r"^[0-9a-f]{64}$")
HASHED = {"em", "ph", "fn", "ln", "ge", "db", "ct", "st", "zp", "country", "external_id"}
PLAIN = {"client_ip_address", "client_user_agent", "fbc", "fbp"}
EVENT_KEYS = {
    "event_name",
    "event_time",
    "user_data",
    "custom_data",
    "event_source_url",
    "opt_out",
    "event_id",
    "action_source",
    "data_processing_options",
    "data_processing_options_country",
    "data_processing_options_state",
    "referrer_url",
}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    """The real services, with Meta in the catalog whether or not it is registered yet."""
    opened = Services.open(settings)
    if CONNECTOR.id not in opened.registry:
        opened.registry = Registry([*opened.registry.all(), CONNECTOR])
    yield opened
    opened.db.dispose()


def graph_error(code: int, message: str, **extra: Any) -> dict[str, Any]:
    error = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AzX1"}
    return {"error": {**error, **extra}}


class ConversionsApi:
    """Meta's documented endpoint; ``deviations`` lists what Sluice got wrong."""

    def __init__(self, vendor: VendorMock) -> None:
        self.deviations: list[str] = []
        self.event_ids: list[str] = []
        vendor.respond("/", self.answer)

    def _user_data(self, i: int, user: Any) -> list[str]:
        if not isinstance(user, dict) or set(user) - HASHED - PLAIN:
            return [f"data[{i}][user_data]: unknown keys {sorted(set(user) - HASHED - PLAIN)}"]
        problems = []
        for key in HASHED & set(user):
            values = user[key] if isinstance(user[key], list) else [user[key]]
            if not values or not all(isinstance(v, str) and HEX.match(v) for v in values):
                problems.append(f"data[{i}][user_data][{key}]: must be SHA-256 hex digests")
        for key in PLAIN & set(user):
            if not isinstance(user[key], str) or HEX.match(user[key]):
                problems.append(f"data[{i}][user_data][{key}]: must be sent in clear")
        return problems

    def _invalid(self, i: int, event: dict[str, Any]) -> str | None:
        """What Meta refuses with code 100 (not Sluice's deviation: the data's)."""
        if event.get("event_time", 0) < time.time() - 7 * 86400:
            return f"(#100) param data[{i}][event_time] must be within the last 7 days."
        return None

    def answer(self, r: Recorded) -> Reply:
        if r.method != "POST" or r.path != PATH:
            self.deviations.append(f"{r.method} {r.path}: expected POST {PATH}")
            return Reply(400, graph_error(803, "Unknown path components"))
        if r.query.get("access_token") != TOKEN:
            return Reply(
                400, graph_error(190, "Invalid OAuth access token - Cannot parse access token")
            )
        if r.headers.get("content-type", "").split(";")[0] != "application/json":
            self.deviations.append("Content-Type must be application/json")
        body = r.json()
        if not isinstance(body, dict) or set(body) - {"data", "test_event_code", "partner_agent"}:
            self.deviations.append(f"unexpected body: {str(body)[:200]}")
            return Reply(400, graph_error(100, "Invalid parameter"))
        data = body.get("data")
        if not isinstance(data, list) or not 1 <= len(data) <= 1000:
            self.deviations.append("data must hold 1 to 1,000 events")
            return Reply(400, graph_error(100, "(#100) param data must be an array."))
        refused = []
        for i, event in enumerate(data):
            if not isinstance(event, dict) or set(event) - EVENT_KEYS:
                self.deviations.append(f"data[{i}]: unknown keys in {event!r}")
                continue
            if not isinstance(event.get("event_name"), str) or not isinstance(
                event.get("event_time"), int
            ):
                self.deviations.append(f"data[{i}]: event_name and event_time (int) are required")
            if event.get("action_source") not in ACTION_SOURCES:
                self.deviations.append(f"data[{i}]: action_source {event.get('action_source')!r}")
            if event.get("action_source") == "website":
                user = event.get("user_data") or {}
                if not event.get("event_source_url") or not user.get("client_user_agent"):
                    self.deviations.append(f"data[{i}]: website events need the URL and user agent")
            self.deviations.extend(self._user_data(i, event.get("user_data")))
            refusal = self._invalid(i, event)
            if refusal:
                refused.append(refusal)
        if refused:  # one invalid event and Meta refuses the whole batch
            return Reply(400, graph_error(100, refused[0], error_subcode=2804003))
        self.event_ids.extend(str(e.get("event_id")) for e in data)
        return Reply(200, {"events_received": len(data), "messages": [], "fbtrace_id": "AzX1"})


ACTION = {
    "name": "Conversions",
    "type": "send_event",
    "mappings": [
        {"parameter": "event_name", "attribute": "tealium_event"},
        {"parameter": "event_time", "attribute": "ts"},
        {"parameter": "event_id", "attribute": "order_id"},
        {"parameter": "event_source_url", "attribute": "page_url"},
        {"parameter": "email", "attribute": "customer_email"},
        {"parameter": "phone", "attribute": "customer_phone"},
        {"parameter": "client_ip_address", "attribute": "ip"},
        {"parameter": "client_user_agent", "attribute": "ua"},
        {"parameter": "fbp", "attribute": "fbp"},
        {"parameter": "value", "attribute": "order_total"},
        {"parameter": "currency", "attribute": "currency"},
        {"parameter": "max_batch_age_seconds", "value": 0.3},
    ],
}
BROWSER = {
    "page_url": "https://shop.example.com/done",
    "ua": "Mozilla/5.0 (X11)",
    "ip": "203.0.113.7",
}


def add_meta(api: Api, profile: str, vendor: VendorMock, token: str = TOKEN) -> Any:
    configuration = {
        "pixel_id": PIXEL,
        "access_token": token,
        "test_event_code": "TEST4242",
        "base_url": vendor.url,
        **FAST_RETRIES,
    }
    return add_connector(
        api,
        profile,
        type="meta_conversions_api",
        name="Meta",
        configuration=configuration,
        actions=[ACTION],
    )


def errors(api: Api, profile: str) -> list[dict[str, Any]]:
    return list(api.get(f"{profile}/errors").json()["errors"])


def test_a_purchase_is_sent_as_documented(api: Api, profile: str, vendor: VendorMock) -> None:
    meta = ConversionsApi(vendor)
    add_meta(api, profile, vendor)
    ts = int(time.time()) - 30
    event = {
        **BROWSER,
        "tealium_event": "Purchase",
        "ts": ts,
        "order_id": "A-1001",
        "customer_email": " Ada@Example.com ",
        "customer_phone": "+1 (555) 555-0100",
        "fbp": "fb.1.1558571054389.1098115397",
        "order_total": 42.5,
        "currency": "eur",
    }
    send(api, event)
    [request] = vendor.wait_for(1, PATH)
    assert request.json() == {
        "data": [
            {
                "event_name": "Purchase",
                "event_time": ts,
                "action_source": "website",
                "event_id": "A-1001",
                "event_source_url": "https://shop.example.com/done",
                "user_data": {
                    "em": [sha("ada@example.com")],
                    "ph": [sha("15555550100")],
                    "client_ip_address": "203.0.113.7",
                    "client_user_agent": "Mozilla/5.0 (X11)",
                    "fbp": "fb.1.1558571054389.1098115397",
                },
                "custom_data": {"value": 42.5, "currency": "EUR"},
            }
        ],
        "test_event_code": "TEST4242",
    }
    wait_until(lambda: totals(api, profile)["success"] == 1)
    assert meta.deviations == []


def test_one_invalid_event_fails_and_its_batch_goes_again(
    api: Api, profile: str, vendor: VendorMock
) -> None:
    meta = ConversionsApi(vendor)
    connector = add_meta(api, profile, vendor)
    action_id = connector["actions"][0]["id"]
    now = int(time.time())
    events = [
        {**BROWSER, "tealium_event": "Lead", "ts": now, "customer_email": f"u{n}@example.com"}
        for n in range(3)
    ]
    events[1]["ts"] = now - 8 * 86400  # older than Meta accepts
    reply = api.client.post(
        "/bulk-event", json={"shared": {"tealium_account": "acme"}, "events": events}
    )
    assert reply.status_code == 200, reply.text
    ids = reply.json()["event_ids"]
    [record] = wait_until(lambda: errors(api, profile))
    assert record["event_id"] == ids[1]
    assert record["category"] == "http_4xx"
    assert "data[1][event_time]" in record["message"]
    assert TOKEN not in record["request"]["url"]
    wait_until(lambda: totals(api, profile)["success"] == 2)
    counts = totals(api, profile)
    assert counts["retried"] == 2
    first, *again = vendor.received(PATH)
    assert len(first.json()["data"]) == 3
    assert [len(r.json()["data"]) for r in again] == [2]
    assert sorted(meta.event_ids) == sorted(f"{ids[n]}:{action_id}" for n in (0, 2))
    assert meta.deviations == []


def test_an_invalid_token_is_an_auth_error(api: Api, profile: str, vendor: VendorMock) -> None:
    meta = ConversionsApi(vendor)
    add_meta(api, profile, vendor, token="EAA-revoked-token")
    send(api, {**BROWSER, "tealium_event": "Lead", "customer_email": "ada@example.com"})
    [record] = wait_until(lambda: errors(api, profile))
    assert record["category"] == "auth"
    assert record["attempts"] == 1
    assert "(#190)" in record["message"]
    assert "EAA-revoked-token" not in record["request"]["url"]
    assert meta.deviations == []


def test_throttling_is_retried(api: Api, profile: str, vendor: VendorMock) -> None:
    meta = ConversionsApi(vendor)
    throttled = graph_error(17, "User request limit reached")
    vendor.queue(PATH, Reply(400, throttled, {"Retry-After": "0"}))
    add_meta(api, profile, vendor)
    send(api, {**BROWSER, "tealium_event": "Lead", "customer_email": "ada@example.com"})
    wait_until(lambda: totals(api, profile)["success"] == 1)
    counts = totals(api, profile)
    assert counts["retried"] == 1
    assert meta.deviations == []
