"""Twilio: recorded Messages.json requests, sender detection and Twilio's error codes."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import orjson
import pytest

from sluice.connectors.catalog.twilio import CONNECTOR, sender
from sluice.connectors.helpers import basic_auth
from sluice.connectors.registry import load_builtin
from sluice.connectors.testing import (
    ErrorCase,
    RecordedExample,
    check_definition,
    check_error_mapping,
    check_example,
    make_context,
    make_inputs,
    response,
)
from sluice.errors import FatalDelivery, MappingError, RetryableDelivery

SID = "AC" + "0123456789abcdef" * 2
TOKEN = "your_auth_token_0123456789abcdef"
CONFIG = {"account_sid": SID, "auth_token": TOKEN}
URL = f"https://api.twilio.com/2010-04-01/Accounts/{SID}/Messages.json"
SERVICE = "MG" + "9752c1a2b3d4e5f6" * 2
FORM = "application/x-www-form-urlencoded"


def test_definition_conforms() -> None:
    assert load_builtin("sluice.connectors.catalog.twilio") is CONNECTOR
    check_definition(CONNECTOR)


EXAMPLES = [
    RecordedExample(
        name="from_a_number",
        action="send_sms",
        config=CONFIG,
        inputs=[{"to": "+1 (415) 555-2671", "from": "+15005550006", "body": "Order A-1001 & co"}],
        expected=[
            {
                "method": "POST",
                "url": URL,
                "headers": {
                    "Authorization": basic_auth(SID, TOKEN),
                    "Content-Type": FORM,
                    "Accept": "application/json",
                },
                "body": "To=%2B14155552671&From=%2B15005550006&Body=Order+A-1001+%26+co",
            }
        ],
    ),
    RecordedExample(
        name="messaging_service_with_callback_and_api_key",
        action="send_sms",
        config={**CONFIG, "auth_token": "key-secret", "api_key_sid": "SKabc"},
        inputs=[
            {
                "to": "0044 7700 900123",
                "from": SERVICE,
                "body": "Hi",
                "status_callback": "https://acme.example/twilio/status",
            }
        ],
        expected=[
            {
                "url": URL,
                "headers": {"Authorization": basic_auth("SKabc", "key-secret")},
                "body": f"To=%2B447700900123&MessagingServiceSid={SERVICE}&Body=Hi"
                "&StatusCallback=https%3A%2F%2Facme.example%2Ftwilio%2Fstatus",
            }
        ],
    ),
    RecordedExample(
        name="alphanumeric_sender_in_dublin",
        action="send_sms",
        config={**CONFIG, "base_url": "https://api.dublin.ie1.twilio.com/"},
        inputs=[{"to": "+353851234567", "from": "Acme", "body": "Hi"}],
        expected=[
            {
                "url": f"https://api.dublin.ie1.twilio.com/2010-04-01/Accounts/{SID}/Messages.json",
                "body": "To=%2B353851234567&From=Acme&Body=Hi",
            }
        ],
    ),
]


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_recorded_example(example: RecordedExample) -> None:
    check_example(CONNECTOR, example)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (SERVICE, ("MessagingServiceSid", SERVICE)),
        ("+1 415 555 2671", ("From", "+14155552671")),
        ("001 415 555 2671", ("From", "+14155552671")),
        ("Acme Shop", ("From", "Acme Shop")),
        ("24365", ("From", "24365")),
    ],
    ids=["messaging-service", "number", "double-zero", "alphanumeric", "short-code"],
)
def test_the_sender_chooses_from_or_messaging_service(
    value: str, expected: tuple[str, str]
) -> None:
    assert sender(value) == expected


def build(params: dict[str, Any], config: dict[str, Any] = CONFIG) -> Any:
    ctx = make_context(CONNECTOR, "send_sms", config)
    return CONNECTOR.actions[0].build(ctx, make_inputs("send_sms", [params]))


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"to": "415 555 2671", "from": "Acme", "body": "hi"}, "to"),
        ({"to": "+14155552671", "from": "Acme Shop Ltd", "body": "hi"}, "from"),
        ({"to": "+14155552671", "from": "12-34", "body": "hi"}, "from"),
        ({"to": "+14155552671", "from": " ", "body": "hi"}, "from"),
        ({"to": "+14155552671", "from": "Acme", "body": "x" * 1601}, "body"),
        (
            {"to": "+14155552671", "from": "Acme", "body": "hi", "status_callback": "/cb"},
            "status_callback",
        ),
    ],
    ids=[
        "no-country-code",
        "long-sender-id",
        "odd-sender",
        "blank-sender",
        "long-body",
        "relative-callback",
    ],
)
def test_bad_values_are_mapping_errors(params: dict[str, Any], parameter: str) -> None:
    with pytest.raises(MappingError) as info:
        build(params)
    assert info.value.parameter == parameter


def test_missing_credentials_are_an_auth_error() -> None:
    with pytest.raises(FatalDelivery) as info:
        build({"to": "+14155552671", "from": "Acme", "body": "hi"}, {"account_sid": SID})
    assert info.value.category == "auth"


def test_the_form_round_trips() -> None:
    [request] = build({"to": "+14155552671", "from": "Acme", "body": "Ünïcode ✓ & = +"})
    assert dict(parse_qsl(request.body.decode())) == {
        "To": "+14155552671",
        "From": "Acme",
        "Body": "Ünïcode ✓ & = +",
    }
    assert request.sensitive_headers == frozenset({"authorization"})


def test_sms_is_not_retried_after_a_timeout() -> None:
    action = CONNECTOR.actions[0]
    assert not action.idempotent
    assert action.batching is None
    assert action.consent_categories == ("mobile", "engagement")


def twilio_error(status: int, code: int, message: str) -> bytes:
    more_info = f"https://www.twilio.com/docs/errors/{code}"
    return orjson.dumps(
        {"code": code, "message": message, "more_info": more_info, "status": status}
    )


CREATED = orjson.dumps({"sid": "SM" + "0" * 32, "status": "queued", "error_code": None})

CASES = [
    ErrorCase(response(201, CREATED), None, id="created"),
    ErrorCase(
        response(
            400, twilio_error(400, 21211, "The 'To' number +1415 is not a valid phone number.")
        ),
        FatalDelivery,
        "http_4xx",
        message_contains="(parameter 'to')",
        id="21211-invalid-to",
    ),
    ErrorCase(
        response(400, twilio_error(400, 21610, "Attempt to send to unsubscribed recipient")),
        FatalDelivery,
        "http_4xx",
        message_contains="Twilio 21610: Attempt to send to unsubscribed recipient (parameter 'to')",
        id="21610-unsubscribed",
    ),
    ErrorCase(
        response(
            400,
            twilio_error(400, 21606, "The From phone number is not a valid, SMS-capable number."),
        ),
        FatalDelivery,
        "http_4xx",
        message_contains="(parameter 'from')",
        id="21606-bad-from",
    ),
    ErrorCase(
        response(
            400,
            twilio_error(
                400, 21617, "The concatenated message body exceeds the 1600 character limit."
            ),
        ),
        FatalDelivery,
        "http_4xx",
        message_contains="(parameter 'body')",
        id="21617-long-body",
    ),
    ErrorCase(
        response(401, twilio_error(401, 20003, "Authenticate")),
        FatalDelivery,
        "auth",
        message_contains="Twilio 20003: Authenticate",
        id="20003-auth",
    ),
    ErrorCase(
        response(404, twilio_error(404, 20404, "The requested resource was not found")),
        FatalDelivery,
        "http_4xx",
        message_contains="check the Account SID",
        id="20404-account",
    ),
    ErrorCase(
        response(429, twilio_error(429, 20429, "Too Many Requests"), {"Retry-After": "3"}),
        RetryableDelivery,
        "rate_limit",
        3.0,
        message_contains="20429",
        id="20429-rate-limit",
    ),
    ErrorCase(response(503, "Service Unavailable"), RetryableDelivery, "http_5xx", id="503"),
]


def test_error_mapping() -> None:
    check_error_mapping(CONNECTOR, "send_sms", CASES)
