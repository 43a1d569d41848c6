"""Meta Conversions API: recorded requests, Meta's normalisation and hashing, error codes."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
import pytest

from sluice.connectors.catalog.meta_conversions_api import CONNECTOR
from sluice.connectors.definition import Outcome
from sluice.connectors.masking import mask_request
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

TOKEN = "EAAB-test-token-0123"
CONFIG = {"pixel_id": "1234567890", "access_token": TOKEN}
URL = f"https://graph.facebook.com/v23.0/1234567890/events?access_token={TOKEN}"
NOON = 1714564800  # SAMPLE_EVENT's received_at


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


PURCHASE = {
    "event_name": "Purchase",
    "action_source": "website",
    "event_time": "1714564700",
    "event_id": "order-A-1001",
    "event_source_url": "https://shop.example.com/checkout/done",
    "email": "  Ada@Example.COM ",
    "phone": "+1 (555) 555-0100",
    "first_name": "Ada",
    "last_name": "O'Neil",
    "city": "New York",
    "state": "NY",
    "zip_code": "10001-1234",
    "country": "US",
    "external_id": "cust-42",
    "gender": "f",
    "date_of_birth": "1990-01-31",
    "client_ip_address": "203.0.113.7",
    "client_user_agent": "Mozilla/5.0",
    "fbc": "fb.1.1554763741205.AbCdEf",
    "fbp": "fb.1.1558571054389.1098115397",
    "value": 42.5,
    "currency": "eur",
    "content_ids": ["SKU-1", 2],
    "contents": [{"id": "SKU-1", "quantity": 1, "item_price": 40.0}],
    "content_type": "product",
    "order_id": "A-1001",
    "num_items": 1,
    "custom_data": {"coupon": "SPRING"},
}
PURCHASE_SENT = {
    "event_name": "Purchase",
    "event_time": 1714564700,
    "action_source": "website",
    "event_id": "order-A-1001",
    "event_source_url": "https://shop.example.com/checkout/done",
    "user_data": {
        "em": [sha("ada@example.com")],
        "ph": [sha("15555550100")],
        "fn": [sha("ada")],
        "ln": [sha("oneil")],
        "ct": [sha("newyork")],
        "st": [sha("ny")],
        "zp": [sha("10001")],
        "country": [sha("us")],
        "external_id": [sha("cust-42")],
        "ge": [sha("f")],
        "db": [sha("19900131")],
        "client_ip_address": "203.0.113.7",
        "client_user_agent": "Mozilla/5.0",
        "fbc": "fb.1.1554763741205.AbCdEf",
        "fbp": "fb.1.1558571054389.1098115397",
    },
    "custom_data": {
        "coupon": "SPRING",
        "value": 42.5,
        "currency": "EUR",
        "content_ids": ["SKU-1", "2"],
        "contents": [{"id": "SKU-1", "quantity": 1, "item_price": 40.0}],
        "num_items": 1,
        "content_type": "product",
        "order_id": "A-1001",
    },
}


def lead(n: int) -> dict[str, Any]:
    return {"event_name": "Lead", "action_source": "website", "email": f"user{n}@example.com"}


def lead_sent(n: int) -> dict[str, Any]:
    return {
        "event_name": "Lead",
        "event_time": NOON,
        "action_source": "website",
        "event_id": f"evt_{n + 1}:send_event",  # the idempotency key
        "user_data": {"em": [sha(f"user{n}@example.com")]},
    }


def per_item(result: Outcome | list[Outcome]) -> list[Outcome]:
    """The outcomes of a batch request, one per item."""
    assert isinstance(result, list)
    return result


EXAMPLES = [
    RecordedExample(
        name="purchase_hashed_and_plain",
        action="send_event",
        config={**CONFIG, "test_event_code": "TEST12345"},
        inputs=[PURCHASE],
        expected=[
            {
                "method": "POST",
                "url": URL,
                "headers": {"Content-Type": "application/json"},
                "json": {"data": [PURCHASE_SENT], "test_event_code": "TEST12345"},
            }
        ],
    ),
    RecordedExample(
        name="batch_deduplicated_by_idempotency_key",
        action="send_event",
        config=CONFIG,
        inputs=[lead(0), lead(1), lead(2)],
        expected=[
            {
                "method": "POST",
                "url": URL,
                "json": {"data": [lead_sent(0), lead_sent(1), lead_sent(2)]},
                "items": (0, 1, 2),
            }
        ],
    ),
    RecordedExample(
        name="already_hashed_is_not_hashed_again",
        action="send_event",
        config={**CONFIG, "api_version": "v21.0", "base_url": "https://graph.example.test/"},
        inputs=[{"event_name": "Lead", "action_source": "email", "email": sha("a@b.co").upper()}],
        expected=[
            {
                "method": "POST",
                "url": f"https://graph.example.test/v21.0/1234567890/events?access_token={TOKEN}",
                "json": {
                    "data": [
                        {
                            "event_name": "Lead",
                            "event_time": NOON,
                            "action_source": "email",
                            "event_id": "evt_1:send_event",
                            "user_data": {"em": [sha("a@b.co")]},
                        }
                    ]
                },
            }
        ],
    ),
    RecordedExample(
        name="at_most_1000_per_request",
        action="send_event",
        config=CONFIG,
        inputs=[lead(n) for n in range(1001)],
        expected=[
            {"method": "POST", "url": URL, "items": tuple(range(1000))},
            {"method": "POST", "url": URL, "items": (1000,)},
        ],
    ),
]


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_recorded_example(example: RecordedExample) -> None:
    check_example(CONNECTOR, example)


def test_definition_conforms() -> None:
    check_definition(CONNECTOR)


def build(params: list[dict[str, Any]]) -> Any:
    action = CONNECTOR.action("send_event")
    assert action is not None
    return action.build(
        make_context(CONNECTOR, "send_event", CONFIG), make_inputs("send_event", params)
    )


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"event_name": "Lead", "action_source": "web"}, "action_source"),
        ({"event_name": " ", "action_source": "website"}, "event_name"),
        ({**lead(0), "email": "not-an-email"}, "email"),
        ({**lead(0), "value": "lots"}, "value"),
        ({**lead(0), "contents": ["SKU-1"]}, "contents"),
        ({**lead(0), "custom_data": "[1]"}, "custom_data"),
    ],
    ids=["action-source", "blank-name", "email", "value", "contents", "custom-data"],
)
def test_bad_values_are_mapping_errors(params: dict[str, Any], parameter: str) -> None:
    with pytest.raises(MappingError) as info:
        build([params])
    assert info.value.parameter == parameter


def test_the_access_token_is_masked() -> None:
    [request] = build([lead(0)])
    shown = mask_request(request, [TOKEN])
    assert TOKEN not in shown["url"]
    assert "access_token=********" in shown["url"]


def error(code: int, message: str, **extra: Any) -> bytes:
    return orjson.dumps(
        {"error": {"message": message, "type": "OAuthException", "code": code, **extra}}
    )


USAGE = orjson.dumps(
    {
        "112233": [
            {"type": "ads_management", "call_count": 100, "estimated_time_to_regain_access": 3}
        ]
    }
).decode()
CASES = [
    ErrorCase(
        response(200, '{"events_received": 1, "messages": [], "fbtrace_id": "AbC"}'), None, id="ok"
    ),
    ErrorCase(
        response(400, error(190, "Invalid OAuth access token.", fbtrace_id="AbC")),
        FatalDelivery,
        "auth",
        message_contains="(#190) Invalid OAuth access token.",
        id="190-invalid-token",
    ),
    ErrorCase(response(403, error(10, "Permission denied")), FatalDelivery, "auth", id="10"),
    ErrorCase(
        response(
            400,
            error(
                100,
                "Invalid parameter",
                error_subcode=2804003,
                error_user_title="Event Timestamp Too Old",
                error_user_msg="The timestamp for this event is too far in the past.",
            ),
        ),
        FatalDelivery,
        "http_4xx",
        message_contains="Event Timestamp Too Old",
        id="100-invalid-parameter",
    ),
    ErrorCase(
        response(400, error(100, "(#100) param data must be an array.")),
        FatalDelivery,
        "http_4xx",
        message_contains="param data must be an array",
        id="100-names-the-param",
    ),
    ErrorCase(
        response(400, error(4, "Application request limit reached")),
        RetryableDelivery,
        "rate_limit",
        id="4",
    ),
    ErrorCase(
        response(400, error(17, "User request limit reached")),
        RetryableDelivery,
        "rate_limit",
        id="17",
    ),
    ErrorCase(
        response(400, error(32, "Page request limit reached")),
        RetryableDelivery,
        "rate_limit",
        id="32",
    ),
    ErrorCase(
        response(
            400, error(613, "Calls within one hour exceeded"), {"X-Business-Use-Case-Usage": USAGE}
        ),
        RetryableDelivery,
        "rate_limit",
        retry_after=180.0,
        id="613-waits-as-meta-says",
    ),
    ErrorCase(
        response(500, error(2, "An unexpected error has occurred.")),
        RetryableDelivery,
        "http_5xx",
        id="2-transient",
    ),
    ErrorCase(response(502, "<html>bad gateway</html>"), RetryableDelivery, "http_5xx", id="502"),
    ErrorCase(
        response(429, "", {"Retry-After": "5"}), RetryableDelivery, "rate_limit", 5.0, id="429"
    ),
]


def test_error_mapping() -> None:
    check_error_mapping(CONNECTOR, "send_event", CASES)


def test_an_event_named_in_a_refused_batch_fails_and_the_rest_go_again() -> None:
    [request] = build([lead(0), lead(1), lead(2)])
    action = CONNECTOR.action("send_event")
    assert action is not None
    body = error(100, "(#100) param data[1][event_time] must be within the last 7 days")
    first, second, third = per_item(action.classify(request, response(400, body)))
    assert isinstance(second, FatalDelivery)
    assert "data[1][event_time]" in second.message
    assert isinstance(first, RetryableDelivery)
    assert isinstance(third, RetryableDelivery)
