"""Contract: Sluice against a strict stand-in for Twilio's Messages resource, end to end.

The stand-in checks requests as documented: ``POST /2010-04-01/Accounts/{AccountSid}/
Messages.json``, HTTP Basic with the Account SID and Auth Token (or an API key SID and
secret), a form-encoded body with an E.164 ``To``, exactly one of ``From`` and
``MessagingServiceSid``, a ``Body`` of at most 1,600 characters and an optional absolute
``StatusCallback``. It answers 201 with the Message, or Twilio's error JSON
``{"code", "message", "more_info", "status"}`` (20003, 21610, 20429).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

import pytest

from sluice.connectors.catalog.twilio import CONNECTOR
from sluice.connectors.helpers import basic_auth
from sluice.connectors.registry import Registry
from sluice.services import Services
from sluice.settings import Settings
from tests.conftest import Api
from tests.support.flows import FAST_RETRIES, add_connector, send, totals, wait_until
from tests.support.vendor import Recorded, Reply, VendorMock

SID = "AC" + "0123456789abcdef" * 2
TOKEN = "auth-token-0123456789abcdef"
KEY_SID, KEY_SECRET = "SK" + "fedcba9876543210" * 2, "api-key-secret"
SERVICE = "MG" + "9752c1a2b3d4e5f6" * 2
OPTED_OUT = "+14155550111"  # replied STOP: Twilio answers 21610
PATH = f"/2010-04-01/Accounts/{SID}/Messages.json"
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
KNOWN = {"To", "From", "MessagingServiceSid", "Body", "StatusCallback"}


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    """The real services, with Twilio in the catalog whether or not it is registered yet."""
    opened = Services.open(settings)
    if CONNECTOR.id not in opened.registry:
        opened.registry = Registry([*opened.registry.all(), CONNECTOR])
    yield opened
    opened.db.dispose()


def error(status: int, code: int, message: str) -> Reply:
    more_info = f"https://www.twilio.com/docs/errors/{code}"
    return Reply(
        status, {"code": code, "message": message, "more_info": more_info, "status": status}
    )


class TwilioApi:
    """Twilio's Messages resource, strictly; ``deviations`` lists what Sluice got wrong."""

    def __init__(self, vendor: VendorMock) -> None:
        self.deviations: list[str] = []
        self.messages: list[dict[str, str]] = []
        vendor.respond("/", self.answer)

    def answer(self, r: Recorded) -> Reply:
        if (r.method, r.path) != ("POST", PATH):
            self.deviations.append(f"{r.method} {r.path}: expected POST {PATH}")
            return error(404, 20404, "The requested resource was not found")
        if r.headers.get("authorization") not in (
            basic_auth(SID, TOKEN),
            basic_auth(KEY_SID, KEY_SECRET),
        ):
            return error(401, 20003, "Authenticate")
        if r.headers.get("content-type") != "application/x-www-form-urlencoded":
            self.deviations.append("Content-Type must be application/x-www-form-urlencoded")
        pairs = parse_qsl(r.body.decode(), keep_blank_values=True, strict_parsing=True)
        form = dict(pairs)
        if len(form) != len(pairs) or set(form) - KNOWN:
            self.deviations.append(f"unexpected or repeated form fields: {[k for k, _ in pairs]}")
        if not E164.match(form.get("To", "")):
            return error(
                400, 21211, f"The 'To' number {form.get('To')} is not a valid phone number."
            )
        if ("From" in form) == ("MessagingServiceSid" in form):
            self.deviations.append("exactly one of From and MessagingServiceSid is required")
        if not 1 <= len(form.get("Body", "")) <= 1600:
            self.deviations.append("Body must hold 1 to 1,600 characters")
        if "StatusCallback" in form and not form["StatusCallback"].startswith("https://"):
            self.deviations.append("StatusCallback must be an absolute URL")
        if form["To"] == OPTED_OUT:
            return error(400, 21610, "Attempt to send to unsubscribed recipient")
        self.messages.append(form)
        sid = f"SM{len(self.messages):032x}"
        message = {"sid": sid, "account_sid": SID, "to": form["To"], "status": "queued"}
        return Reply(201, {**message, "body": form["Body"], "error_code": None})


ACTION = {
    "name": "Order SMS",
    "type": "send_sms",
    "mappings": [
        {"parameter": "to", "attribute": "customer_phone", "transforms": ["e164"]},
        {"parameter": "from", "value": "+15005550006"},
        {"parameter": "body", "template": "Order {{ order_id }} ships today"},
    ],
}


def add_twilio(
    api: Api, profile: str, vendor: VendorMock, action: dict[str, Any] = ACTION, **config: Any
) -> Any:
    configuration: dict[str, Any] = {"account_sid": SID, "auth_token": TOKEN}
    configuration.update(base_url=vendor.url, **FAST_RETRIES, **config)
    return add_connector(
        api, profile, type="twilio", name="Twilio", configuration=configuration, actions=[action]
    )


def errors(api: Api, profile: str) -> list[dict[str, Any]]:
    return list(api.get(f"{profile}/errors").json()["errors"])


def test_an_sms_is_sent_as_documented(api: Api, profile: str, vendor: VendorMock) -> None:
    twilio = TwilioApi(vendor)
    add_twilio(api, profile, vendor)
    send(api, {"order_id": "A-1001", "customer_phone": "+1 (415) 555-2671"})
    [request] = vendor.wait_for(1, PATH)
    assert request.body == b"To=%2B14155552671&From=%2B15005550006&Body=Order+A-1001+ships+today"
    wait_until(lambda: totals(api, profile)["success"] == 1)
    assert twilio.deviations == []


def test_a_messaging_service_with_an_api_key(api: Api, profile: str, vendor: VendorMock) -> None:
    twilio = TwilioApi(vendor)
    mappings = [
        {"parameter": "to", "attribute": "customer_phone"},
        {"parameter": "from", "value": SERVICE},
        {"parameter": "body", "value": "Hi"},
        {"parameter": "status_callback", "value": "https://acme.example/twilio/status"},
    ]
    action = {**ACTION, "mappings": mappings}
    add_twilio(api, profile, vendor, action, api_key_sid=KEY_SID, auth_token=KEY_SECRET)
    send(api, {"customer_phone": "+447700900123"})
    wait_until(lambda: totals(api, profile)["success"] == 1)
    assert twilio.messages == [
        {
            "To": "+447700900123",
            "MessagingServiceSid": SERVICE,
            "Body": "Hi",
            "StatusCallback": "https://acme.example/twilio/status",
        }
    ]
    assert twilio.deviations == []


def test_an_unsubscribed_recipient_is_an_error(api: Api, profile: str, vendor: VendorMock) -> None:
    twilio = TwilioApi(vendor)
    add_twilio(api, profile, vendor)
    event_id = send(api, {"order_id": "A-1", "customer_phone": OPTED_OUT})["event_ids"][0]
    [record] = wait_until(lambda: errors(api, profile))
    assert (record["event_id"], record["category"], record["status_code"]) == (
        event_id,
        "http_4xx",
        400,
    )
    assert "Twilio 21610" in record["message"]
    assert "'to'" in record["message"]
    assert record["attempts"] == 1
    assert twilio.deviations == []


def test_a_wrong_token_is_an_auth_error(api: Api, profile: str, vendor: VendorMock) -> None:
    twilio = TwilioApi(vendor)
    add_twilio(api, profile, vendor, auth_token="wrong-token")
    send(api, {"order_id": "A-1", "customer_phone": "+14155552671"})
    [record] = wait_until(lambda: errors(api, profile))
    assert (record["category"], record["status_code"]) == ("auth", 401)
    assert "20003" in record["message"]
    assert record["request"]["headers"]["Authorization"] == "Basic ********"
    assert twilio.deviations == []


def test_rate_limits_are_retried(api: Api, profile: str, vendor: VendorMock) -> None:
    twilio = TwilioApi(vendor)
    vendor.queue(PATH, error(429, 20429, "Too Many Requests"))
    add_twilio(api, profile, vendor)
    send(api, {"order_id": "A-1", "customer_phone": "+14155552671"})
    counts = wait_until(lambda: (t := totals(api, profile)) and t["success"] == 1 and t)
    assert counts["retried"] == 1
    assert len(twilio.messages) == 1
    assert twilio.deviations == []


def test_a_timeout_is_not_retried(api: Api, profile: str, vendor: VendorMock) -> None:
    # Twilio may have sent the text already: sending it again could text the customer twice.
    twilio = TwilioApi(vendor)
    vendor.queue(PATH, Reply(201, {"sid": "SM1"}, delay=2.0))
    add_twilio(api, profile, vendor, timeout_seconds=0.3)
    send(api, {"order_id": "A-1", "customer_phone": "+14155552671"})
    [record] = wait_until(lambda: errors(api, profile))
    assert record["category"] == "timeout"
    assert "not idempotent" in record["message"]
    time.sleep(0.3)
    assert len(vendor.received(PATH)) == 1
    assert twilio.deviations == []
