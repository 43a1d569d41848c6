"""TikTok Events API 2.0: recorded requests, hashing, and errors read from the body."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
import pytest

from sluice.connectors.catalog.tiktok_events_api import CONNECTOR
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

TOKEN = "tt-access-token-0123"
CONFIG = {"pixel_code": "C4ABCDEF1234567890", "access_token": TOKEN}
URL = "https://business-api.tiktok.com/open_api/v1.3/event/track/"
NOON = 1714564800


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def view(n: int) -> dict[str, Any]:
    return {"event": "ViewContent", "external_id": f"user-{n}"}


def view_sent(n: int) -> dict[str, Any]:
    return {
        "event": "ViewContent",
        "event_time": NOON,
        "event_id": f"evt_{n + 1}:send_event",
        "user": {"external_id": sha(f"user-{n}")},
    }


def per_item(result: Outcome | list[Outcome]) -> list[Outcome]:
    """The outcomes of a batch request, one per item."""
    assert isinstance(result, list)
    return result


EXAMPLES = [
    RecordedExample(
        name="complete_payment",
        action="send_event",
        config={**CONFIG, "test_event_code": "TEST70434"},
        inputs=[
            {
                "event": "CompletePayment",
                "event_time": 1714564700,
                "event_id": "order-A-1001",
                "email": " Ada@Example.com",
                "phone": "+49 (151) 2345-6789",
                "external_id": "cust-42",
                "ip": "203.0.113.7",
                "user_agent": "Mozilla/5.0",
                "ttclid": "E.C.P.abc123",
                "ttp": "2F7h37YkS1j57AYSKTI7IHhJPYH",
                "value": 42.5,
                "currency": "eur",
                "contents": [{"content_id": "SKU-1", "quantity": 1, "price": 42.5}],
                "content_type": "product",
                "order_id": "A-1001",
                "properties": {"shop_id": "berlin-1"},
                "page_url": "https://shop.example.com/done",
                "page_referrer": "https://shop.example.com/cart",
            }
        ],
        expected=[
            {
                "method": "POST",
                "url": URL,
                "headers": {"Access-Token": TOKEN, "Content-Type": "application/json"},
                "json": {
                    "event_source": "web",
                    "event_source_id": "C4ABCDEF1234567890",
                    "test_event_code": "TEST70434",
                    "data": [
                        {
                            "event": "CompletePayment",
                            "event_time": 1714564700,
                            "event_id": "order-A-1001",
                            "user": {
                                "email": sha("ada@example.com"),
                                "phone": sha("+4915123456789"),
                                "external_id": sha("cust-42"),
                                "ip": "203.0.113.7",
                                "user_agent": "Mozilla/5.0",
                                "ttclid": "E.C.P.abc123",
                                "ttp": "2F7h37YkS1j57AYSKTI7IHhJPYH",
                            },
                            "properties": {
                                "shop_id": "berlin-1",
                                "value": 42.5,
                                "currency": "EUR",
                                "contents": [{"content_id": "SKU-1", "quantity": 1, "price": 42.5}],
                                "content_type": "product",
                                "order_id": "A-1001",
                            },
                            "page": {
                                "url": "https://shop.example.com/done",
                                "referrer": "https://shop.example.com/cart",
                            },
                        }
                    ],
                },
            }
        ],
    ),
    RecordedExample(
        name="batch",
        action="send_event",
        config=CONFIG,
        inputs=[view(0), view(1), view(2)],
        expected=[
            {
                "method": "POST",
                "url": URL,
                "json": {
                    "event_source": "web",
                    "event_source_id": "C4ABCDEF1234567890",
                    "data": [view_sent(0), view_sent(1), view_sent(2)],
                },
                "items": (0, 1, 2),
            }
        ],
    ),
    RecordedExample(
        name="at_most_1000_per_request",
        action="send_event",
        config=CONFIG,
        inputs=[view(n) for n in range(1001)],
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


def test_already_hashed_values_are_not_hashed_again() -> None:
    digest = sha("ada@example.com")
    [request] = build([{"event": "Lead", "email": digest, "phone": sha("+15555550100")}])
    user = orjson.loads(request.body)["data"][0]["user"]
    assert user == {"email": digest, "phone": sha("+15555550100")}


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"event": ""}, "event"),
        ({"event": "Lead", "phone": "12"}, "phone"),
        ({"event": "Lead", "email": "nobody"}, "email"),
        ({"event": "Lead", "value": "much"}, "value"),
        ({"event": "Lead", "contents": ["SKU-1"]}, "contents"),
    ],
    ids=["no-event", "phone", "email", "value", "contents"],
)
def test_bad_values_are_mapping_errors(params: dict[str, Any], parameter: str) -> None:
    with pytest.raises(MappingError) as info:
        build([params])
    assert info.value.parameter == parameter


def test_the_access_token_header_is_sensitive() -> None:
    [request] = build([view(0)])
    assert mask_request(request, [])["headers"]["Access-Token"] == "********"


def answer(code: int, message: str) -> bytes:
    return orjson.dumps({"code": code, "message": message, "request_id": "2024050112", "data": {}})


CASES = [
    ErrorCase(response(200, answer(0, "OK")), None, id="ok"),
    ErrorCase(
        response(200, answer(40105, "Access token is incorrect or has been revoked.")),
        FatalDelivery,
        "auth",
        message_contains="TikTok 40105",
        id="40105-token",
    ),
    ErrorCase(
        response(200, answer(40104, "Access token is null")), FatalDelivery, "auth", id="40104"
    ),
    ErrorCase(response(200, answer(40001, "No permission")), FatalDelivery, "auth", id="40001"),
    ErrorCase(
        response(200, answer(40100, "Too many requests. Please retry in some time.")),
        RetryableDelivery,
        "rate_limit",
        id="40100-rate-limit",
    ),
    ErrorCase(
        response(200, answer(40002, "event_source_id: field is required")),
        FatalDelivery,
        "http_4xx",
        message_contains="event_source_id",
        id="40002-invalid-parameter",
    ),
    ErrorCase(
        response(200, answer(50000, "System error")), RetryableDelivery, "http_5xx", id="50000"
    ),
    ErrorCase(response(502, "<html>bad gateway</html>"), RetryableDelivery, "http_5xx", id="502"),
    ErrorCase(
        response(429, "", {"Retry-After": "3"}), RetryableDelivery, "rate_limit", 3.0, id="429"
    ),
]


def test_error_mapping() -> None:
    check_error_mapping(CONNECTOR, "send_event", CASES)


def test_an_event_named_in_a_refused_batch_fails_and_the_rest_go_again() -> None:
    [request] = build([view(0), view(1), view(2)])
    action = CONNECTOR.action("send_event")
    assert action is not None
    body = answer(40002, "data[2].event_time: invalid timestamp")
    first, second, third = per_item(action.classify(request, response(200, body)))
    assert isinstance(third, FatalDelivery)
    assert third.category == "http_4xx"
    assert isinstance(first, RetryableDelivery)
    assert isinstance(second, RetryableDelivery)
