"""Contract: Sluice against a strict stand-in for ClickSend's REST API v3, end to end.

The stand-in checks requests as documented: HTTP Basic with the API username and key, JSON
bodies; ``POST /v3/sms/send`` with ``{"messages": [...]}`` of at most 1,000 messages, each
with an E.164 ``to`` and a ``body`` (``from``, ``custom_string`` of at most 50 characters,
``schedule`` as Unix seconds, ``source`` optional); contacts under ``/v3/lists/{list_id}``.
It answers ClickSend's envelope ``{"http_code", "response_code", "response_msg", "data"}``,
with a ``status`` per message (``INVALID_RECIPIENT`` for a number it cannot reach).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from sluice.connectors.catalog.clicksend import CONNECTOR
from sluice.connectors.helpers import basic_auth
from sluice.connectors.registry import Registry
from sluice.services import Services
from sluice.settings import Settings
from tests.conftest import Api
from tests.support.flows import FAST_RETRIES, add_connector, send, totals, wait_until
from tests.support.vendor import Recorded, Reply, VendorMock

USERNAME = "acme-api"
API_KEY = "7B1E2D3C-4A5B-6C7D-8E9F-0A1B2C3D4E5F"
LIST_ID = 428
UNREACHABLE = "+61499999999"  # ClickSend answers INVALID_RECIPIENT for this number
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
MESSAGE_KEYS = {"to", "body", "from", "custom_string", "schedule", "source", "list_id"}
CONTACT_KEYS = {
    "phone_number",
    "email",
    "fax_number",
    "first_name",
    "last_name",
    "organization_name",
    "address_line_1",
    "address_line_2",
    "address_city",
    "address_state",
    "address_postal_code",
    "address_country",
    "custom_1",
    "custom_2",
    "custom_3",
    "custom_4",
}


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    """The real services, with ClickSend in the catalog whether or not it is registered yet."""
    opened = Services.open(settings)
    if CONNECTOR.id not in opened.registry:
        opened.registry = Registry([*opened.registry.all(), CONNECTOR])
    yield opened
    opened.db.dispose()


def envelope(http_code: int, code: str, message: str, data: Any = None) -> Reply:
    body = {"http_code": http_code, "response_code": code, "response_msg": message, "data": data}
    return Reply(http_code, body)


class ClickSendApi:
    """ClickSend's v3 API, strictly; ``deviations`` lists what Sluice got wrong."""

    def __init__(self, vendor: VendorMock) -> None:
        self.deviations: list[str] = []
        self.sent: list[dict[str, Any]] = []
        self.contacts: dict[int, dict[str, Any]] = {552786: {"phone_number": "+16783270696"}}
        vendor.respond("/", self.answer)

    def answer(self, r: Recorded) -> Reply:
        if r.headers.get("authorization") != basic_auth(USERNAME, API_KEY):
            return envelope(401, "UNAUTHORIZED", "Authentication credentials were incorrect.")
        if r.headers.get("content-type", "").split(";")[0] != "application/json":
            self.deviations.append(f"{r.path}: Content-Type must be application/json")
        body = r.json()
        if r.method == "POST" and r.path == "/v3/sms/send":
            return self.send_sms(body)
        match = re.fullmatch(r"/v3/lists/(\d+)/contacts(?:/(\d+))?", r.path)
        if match and (r.method, bool(match[2])) in (("POST", False), ("PUT", True)):
            return self.contact(int(match[1]), int(match[2] or 0), body)
        self.deviations.append(f"{r.method} {r.path}: no such ClickSend endpoint")
        return envelope(404, "NOT_FOUND", "Resource not found.")

    def send_sms(self, body: Any) -> Reply:
        messages = body.get("messages") if isinstance(body, dict) else None
        if not isinstance(messages, list) or not 1 <= len(messages) <= 1000:
            self.deviations.append("/v3/sms/send: messages must be an array of 1 to 1,000")
            return envelope(400, "BAD_REQUEST", "Messages are required.")
        answers = []
        for i, message in enumerate(messages):
            if set(message) - MESSAGE_KEYS:
                self.deviations.append(f"message {i}: unknown keys {set(message) - MESSAGE_KEYS}")
            if not E164.match(str(message.get("to"))) or not message.get("body"):
                self.deviations.append(f"message {i}: needs an E.164 'to' and a 'body'")
            if len(str(message.get("custom_string", ""))) > 50:
                self.deviations.append(f"message {i}: custom_string over 50 characters")
            if "schedule" in message and not isinstance(message["schedule"], int):
                self.deviations.append(f"message {i}: schedule must be Unix seconds")
            status = "INVALID_RECIPIENT" if message.get("to") == UNREACHABLE else "SUCCESS"
            if status == "SUCCESS":
                self.sent.append(message)
            answers.append({**message, "status": status, "message_id": f"MSG-{len(self.sent)}"})
        data = {"total_count": len(messages), "queued_count": len(self.sent), "messages": answers}
        return envelope(200, "SUCCESS", "Messages queued for delivery.", data)

    def contact(self, list_id: int, contact_id: int, body: Any) -> Reply:
        if list_id != LIST_ID:
            return envelope(404, "NOT_FOUND", "Your list was not found.")
        if not isinstance(body, dict) or set(body) - CONTACT_KEYS:
            self.deviations.append(f"contact: unknown keys {set(body) - CONTACT_KEYS}")
        if not E164.match(str(body.get("phone_number"))):
            return envelope(400, "BAD_REQUEST", "Invalid.", {"phone_number": ["Invalid number."]})
        if contact_id and contact_id not in self.contacts:
            return envelope(404, "NOT_FOUND", "Contact not found.")
        contact_id = contact_id or 552787 + len(self.contacts)
        self.contacts[contact_id] = dict(body)
        data = {"contact_id": contact_id, "list_id": list_id, **body}
        return envelope(200, "SUCCESS", "Contact saved.", data)


SMS = {
    "name": "Order SMS",
    "type": "send_an_sms",
    "mappings": [
        {"parameter": "to", "attribute": "customer_phone"},
        {"parameter": "body", "template": "Order {{ order_id }} ships today"},
        {"parameter": "custom_string", "value": "sluice"},
    ],
}
CONTACT = {
    "name": "Contact",
    "type": "create_or_update_a_contact",
    "mappings": [
        {"parameter": "list_id", "attribute": "list"},
        {"parameter": "contact_id", "attribute": "clicksend_contact_id"},
        {"parameter": "phone_number", "attribute": "customer_phone"},
        {"parameter": "email", "attribute": "customer_email"},
        {"parameter": "first_name", "attribute": "first_name"},
    ],
}


def add_clicksend(
    api: Api, profile: str, vendor: VendorMock, action: dict[str, Any], key: str = API_KEY
) -> Any:
    configuration = {"username": USERNAME, "api_key": key, "base_url": vendor.url, **FAST_RETRIES}
    return add_connector(
        api,
        profile,
        type="clicksend",
        name="ClickSend Prod",
        configuration=configuration,
        actions=[action],
    )


def errors(api: Api, profile: str) -> list[dict[str, Any]]:
    return list(api.get(f"{profile}/errors").json()["errors"])


def test_an_sms_is_sent_as_documented(api: Api, profile: str, vendor: VendorMock) -> None:
    clicksend = ClickSendApi(vendor)
    add_clicksend(api, profile, vendor, SMS)
    send(
        api,
        {"tealium_event": "purchase", "order_id": "A-1001", "customer_phone": "0061 411 111 111"},
    )
    [request] = vendor.wait_for(1, "/v3/sms/send")
    assert request.json() == {
        "messages": [
            {
                "source": "sluice",
                "to": "+61411111111",
                "body": "Order A-1001 ships today",
                "custom_string": "sluice",
            }
        ]
    }
    wait_until(lambda: totals(api, profile)["success"] == 1)
    assert clicksend.deviations == []


def test_a_batch_reports_each_message(api: Api, profile: str, vendor: VendorMock) -> None:
    clicksend = ClickSendApi(vendor)
    add_clicksend(api, profile, vendor, SMS)
    phones = ["+61411111111", UNREACHABLE, "0411 111 111", "+61411111112"]
    events = [{"order_id": f"A-{n}", "customer_phone": p} for n, p in enumerate(phones)]
    reply = api.client.post(
        "/bulk-event", json={"shared": {"tealium_account": "acme"}, "events": events}
    )
    assert reply.status_code == 200, reply.text
    ids = reply.json()["event_ids"]
    records = wait_until(lambda: (e := errors(api, profile)) and len(e) == 2 and e)
    by_event = {r["event_id"]: r for r in records}
    assert by_event[ids[1]]["category"] == "http_4xx"
    assert "INVALID_RECIPIENT" in by_event[ids[1]]["message"]
    assert by_event[ids[2]]["category"] == "mapping"
    counts = wait_until(lambda: (t := totals(api, profile)) and t["success"] == 2 and t)
    assert counts["error"] == 2
    assert counts["retried"] == 0
    [request] = vendor.received("/v3/sms/send")
    assert [m["to"] for m in request.json()["messages"]] == [phones[0], UNREACHABLE, phones[3]]
    assert [m["to"] for m in clicksend.sent] == [phones[0], phones[3]]
    assert clicksend.deviations == []


def test_contacts_are_created_or_updated(api: Api, profile: str, vendor: VendorMock) -> None:
    clicksend = ClickSendApi(vendor)
    add_clicksend(api, profile, vendor, CONTACT)
    person = {"list": "428", "customer_phone": "+1 678 327 0696", "first_name": "Ellen"}
    send(api, {**person, "customer_email": "Ellen@Example.com"})
    [created] = vendor.wait_for(1, "/v3/lists/")
    assert (created.method, created.path) == ("POST", "/v3/lists/428/contacts")
    assert created.json() == {
        "phone_number": "+16783270696",
        "email": "ellen@example.com",
        "first_name": "Ellen",
    }
    send(api, {**person, "clicksend_contact_id": 552786})
    updated = vendor.wait_for(2, "/v3/lists/")[1]
    assert (updated.method, updated.path) == ("PUT", "/v3/lists/428/contacts/552786")
    wait_until(lambda: totals(api, profile)["success"] == 2)
    assert clicksend.contacts[552786]["first_name"] == "Ellen"
    assert clicksend.deviations == []


def test_an_unknown_list_is_an_error_record(api: Api, profile: str, vendor: VendorMock) -> None:
    clicksend = ClickSendApi(vendor)
    add_clicksend(api, profile, vendor, CONTACT)
    send(api, {"list": "999", "customer_phone": "+61411111111"})
    [record] = wait_until(lambda: errors(api, profile))
    assert (record["category"], record["status_code"]) == ("http_4xx", 404)
    assert "NOT_FOUND" in record["message"]
    assert "contact list ID" in record["message"]
    assert clicksend.deviations == []


def test_wrong_credentials_are_an_auth_error(api: Api, profile: str, vendor: VendorMock) -> None:
    clicksend = ClickSendApi(vendor)
    add_clicksend(api, profile, vendor, SMS, key="wrong-key")
    send(api, {"order_id": "A-1", "customer_phone": "+61411111111"})
    [record] = wait_until(lambda: errors(api, profile))
    assert (record["category"], record["status_code"]) == ("auth", 401)
    assert record["request"]["headers"]["Authorization"] == "Basic ********"
    assert clicksend.deviations == []


def test_rate_limits_are_retried(api: Api, profile: str, vendor: VendorMock) -> None:
    clicksend = ClickSendApi(vendor)
    vendor.queue("/v3/sms/send", envelope(429, "TOO_MANY_REQUESTS", "Slow down."))
    add_clicksend(api, profile, vendor, SMS)
    send(api, {"order_id": "A-1", "customer_phone": "+61411111111"})
    counts = wait_until(lambda: (t := totals(api, profile)) and t["success"] == 1 and t)
    assert counts["retried"] == 1
    assert len(clicksend.sent) == 1
    assert clicksend.deviations == []
