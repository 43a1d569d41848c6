"""Pinterest Conversions API: recorded requests, hashed user data, per-event outcomes."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import orjson
import pytest

from sluice.connectors.catalog.pinterest_conversions_api import CONNECTOR
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

TOKEN = "pina_conversion_token_0123"
CONFIG = {"ad_account_id": "549755885175", "access_token": TOKEN}
URL = "https://api.pinterest.com/v5/ad_accounts/549755885175/events"
NOON = 1714564800


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def visit(n: int) -> dict[str, Any]:
    return {"event_name": "page_visit", "action_source": "web", "email": f"u{n}@example.com"}


def visit_sent(n: int) -> dict[str, Any]:
    return {
        "event_name": "page_visit",
        "action_source": "web",
        "event_time": NOON,
        "event_id": f"evt_{n + 1}:send_event",
        "user_data": {"em": [sha(f"u{n}@example.com")]},
    }


def per_item(result: Outcome | list[Outcome]) -> list[Outcome]:
    """The outcomes of a batch request, one per item."""
    assert isinstance(result, list)
    return result


EXAMPLES = [
    RecordedExample(
        name="checkout",
        action="send_event",
        config=CONFIG,
        inputs=[
            {
                "event_name": "checkout",
                "action_source": "web",
                "event_time": "2024-05-01T11:58:20Z",
                "event_id": "order-A-1001",
                "event_source_url": "https://shop.example.com/done",
                "opt_out": False,
                "email": ["Ada@Example.com", "ada@example.com", "ada@work.example"],
                "phone": "+1 555-555-0100",
                "zip_code": "94105",
                "country": "US",
                "gender": "f",
                "mobile_ad_id": "AEBE52E7-03EE-455A-B3C4-E57283966239",
                "client_ip_address": "203.0.113.7",
                "client_user_agent": "Mozilla/5.0",
                "value": 42.5,
                "currency": "usd",
                "content_ids": ["SKU-1"],
                "contents": [{"item_price": "42.50", "quantity": 1}],
                "num_items": 1,
                "order_id": "A-1001",
            }
        ],
        expected=[
            {
                "method": "POST",
                "url": URL,
                "headers": {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
                "json": {
                    "data": [
                        {
                            "event_name": "checkout",
                            "action_source": "web",
                            "event_time": 1714564700,
                            "event_id": "order-A-1001",
                            "event_source_url": "https://shop.example.com/done",
                            "opt_out": False,
                            "user_data": {
                                "em": [sha("ada@example.com"), sha("ada@work.example")],
                                "ph": [sha("15555550100")],
                                "zp": [sha("94105")],
                                "country": [sha("us")],
                                "ge": [sha("f")],
                                "hashed_maids": [sha("AEBE52E7-03EE-455A-B3C4-E57283966239")],
                                "client_ip_address": "203.0.113.7",
                                "client_user_agent": "Mozilla/5.0",
                            },
                            "custom_data": {
                                "value": "42.5",
                                "currency": "USD",
                                "content_ids": ["SKU-1"],
                                "contents": [{"item_price": "42.50", "quantity": 1}],
                                "num_items": 1,
                                "order_id": "A-1001",
                            },
                        }
                    ]
                },
            }
        ],
    ),
    RecordedExample(
        name="batch_in_test_mode",
        action="send_event",
        config={**CONFIG, "test_mode": True},
        inputs=[visit(0), visit(1), visit(2)],
        expected=[
            {
                "method": "POST",
                "url": f"{URL}?test=true",
                "json": {"data": [visit_sent(0), visit_sent(1), visit_sent(2)]},
                "items": (0, 1, 2),
            }
        ],
    ),
    RecordedExample(
        name="at_most_1000_per_request",
        action="send_event",
        config=CONFIG,
        inputs=[visit(n) for n in range(1001)],
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
        ({"event_name": "checkout", "action_source": "website"}, "action_source"),
        ({**visit(0), "email": "nobody"}, "email"),
        ({**visit(0), "value": "much"}, "value"),
        ({**visit(0), "event_time": "soon"}, "event_time"),
    ],
    ids=["action-source", "email", "value", "event-time"],
)
def test_bad_values_are_mapping_errors(params: dict[str, Any], parameter: str) -> None:
    with pytest.raises(MappingError) as info:
        build([params])
    assert info.value.parameter == parameter


def test_the_bearer_token_is_masked() -> None:
    [request] = build([visit(0)])
    assert mask_request(request, [TOKEN])["headers"]["Authorization"] == "Bearer ********"


PER_EVENT: dict[str, Any] = {
    "num_events_received": 3,
    "num_events_processed": 2,
    "events": [
        {"status": "processed", "error_message": "", "warning_message": ""},
        {"status": "failed", "error_message": "'event_time' is too far in the past."},
        {"status": "processed", "error_message": "", "warning_message": "'currency' is unknown"},
    ],
}


def test_each_event_gets_pinterests_own_verdict() -> None:
    [request] = build([visit(0), visit(1), visit(2)])
    action = CONNECTOR.action("send_event")
    assert action is not None
    first, second, third = per_item(
        action.classify(request, response(200, orjson.dumps(PER_EVENT)))
    )
    assert first is None
    assert third is None
    assert isinstance(second, FatalDelivery)
    assert second.category == "http_4xx"
    assert "too far in the past" in second.message


def test_a_refused_input_rides_along_and_fails_alone() -> None:
    [request] = build([visit(0), {**visit(1), "email": "nobody"}, visit(2)])
    assert request.items == (0, 2, 1)
    action = CONNECTOR.action("send_event")
    assert action is not None
    answer = {**PER_EVENT, "events": [PER_EVENT["events"][0], PER_EVENT["events"][2]]}
    first, third, second = per_item(action.classify(request, response(200, orjson.dumps(answer))))
    assert first is None
    assert third is None
    assert isinstance(second, FatalDelivery)
    assert second.category == "mapping"


def error(code: int, message: str) -> bytes:
    return orjson.dumps({"code": code, "message": message})


CASES = [
    ErrorCase(
        response(200, '{"num_events_received": 1, "num_events_processed": 1}'), None, id="ok"
    ),
    ErrorCase(response(401, error(2, "Authentication failed.")), FatalDelivery, "auth", id="401"),
    ErrorCase(response(403, error(29, "You are not permitted")), FatalDelivery, "auth", id="403"),
    ErrorCase(
        response(400, error(1, "Invalid request: data is a required property")),
        FatalDelivery,
        "http_4xx",
        message_contains="data is a required property",
        id="400",
    ),
    ErrorCase(
        response(429, error(8, "Rate limit exceeded"), {"Retry-After": "20"}),
        RetryableDelivery,
        "rate_limit",
        20.0,
        id="429-retry-after",
    ),
    ErrorCase(
        response(429, error(8, "Rate limit exceeded"), {"X-RateLimit-Reset": "45"}),
        RetryableDelivery,
        "rate_limit",
        45.0,
        id="429-ratelimit-reset",
    ),
    ErrorCase(response(503, error(503, "ramped down")), RetryableDelivery, "http_5xx", id="503"),
]


def test_error_mapping() -> None:
    check_error_mapping(CONNECTOR, "send_event", CASES)


def test_a_reset_given_as_an_epoch_time_is_a_wait() -> None:
    action = CONNECTOR.action("send_event")
    assert action is not None
    [request] = build([visit(0)])
    reset = str(int(time.time()) + 30)
    outcome = action.classify(request, response(429, "", {"X-RateLimit-Reset": reset}))
    assert isinstance(outcome, RetryableDelivery)
    assert outcome.retry_after is not None
    assert 25 <= outcome.retry_after <= 31
