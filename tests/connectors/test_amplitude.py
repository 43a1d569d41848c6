"""Amplitude: recorded HTTP V2 uploads, batching by count and size, per-event errors."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from sluice.connectors.batching import BatchRequest
from sluice.connectors.catalog.amplitude import CONNECTOR, MAX_BYTES
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

KEY = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
CONFIG = {"api_key": KEY}
URL = "https://api2.amplitude.com/2/httpapi"
T0 = 1714564800000  # SAMPLE_EVENT's received_at, 2024-05-01T12:00:00Z


def test_definition_conforms() -> None:
    assert load_builtin("sluice.connectors.catalog.amplitude") is CONNECTOR
    check_definition(CONNECTOR)  # as the catalog-wide conformance test runs it
    samples = {"time": "2024-05-01T12:00:00Z", "user_id": "user-0001", "device_id": "dev-0001"}
    check_definition(CONNECTOR, samples)


EXAMPLES = [
    RecordedExample(
        name="one_event_with_revenue",
        action="send_events",
        config=CONFIG,
        inputs=[
            {
                "event_type": "Order Completed",
                "user_id": "user-0042",
                "device_id": "C8F9E604-F01A-4BD9",
                "event_properties": {"order_id": "A-1001"},
                "user_properties": {"tier": "gold"},
                "price": 21.25,
                "quantity": 2,
                "revenue": 42.5,
                "product_id": "sku-1",
                "revenue_type": "purchase",
                "ip": "203.0.113.9",
                "platform": "Web",
            }
        ],
        expected=[
            {
                "method": "POST",
                "url": URL,
                "headers": {"Content-Type": "application/json"},
                "json": {
                    "api_key": KEY,
                    "events": [
                        {
                            "event_type": "Order Completed",
                            "user_id": "user-0042",
                            "device_id": "C8F9E604-F01A-4BD9",
                            "time": T0,
                            "insert_id": "evt_1:send_events",
                            "event_properties": {"order_id": "A-1001"},
                            "user_properties": {"tier": "gold"},
                            "ip": "203.0.113.9",
                            "platform": "Web",
                            "price": 21.25,
                            "quantity": 2,
                            "revenue": 42.5,
                            "productId": "sku-1",
                            "revenueType": "purchase",
                        }
                    ],
                },
                "items": (0,),
            }
        ],
    ),
    RecordedExample(
        name="batch_eu_min_id_length_and_visitor_fallback",
        action="send_events",
        config={**CONFIG, "base_url": "https://api.eu.amplitude.com", "min_id_length": 3},
        inputs=[
            {"event_type": "view", "user_id": "u-1", "time": "1714564801"},
            {"event_type": "view"},
            {"event_type": "view", "device_id": "00000000-0000", "user_id": "u-3", "time": T0},
        ],
        expected=[
            {
                "method": "POST",
                "url": "https://api.eu.amplitude.com/2/httpapi",
                "json": {
                    "api_key": KEY,
                    "options": {"min_id_length": 3},
                    "events": [
                        {
                            "event_type": "view",
                            "user_id": "u-1",
                            "time": T0 + 1000,
                            "insert_id": "evt_1:send_events",
                        },
                        {
                            "event_type": "view",
                            "device_id": "visitor-0001",
                            "time": T0,
                            "insert_id": "evt_2:send_events",
                        },
                        {
                            "event_type": "view",
                            "user_id": "u-3",
                            "time": T0,
                            "insert_id": "evt_3:send_events",
                        },
                    ],
                },
                "items": (0, 1, 2),
            }
        ],
    ),
]


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_recorded_example(example: RecordedExample) -> None:
    check_example(CONNECTOR, example)


def build(params: list[dict[str, Any]], data: list[dict[str, Any]] | None = None) -> Any:
    action = CONNECTOR.actions[0]
    ctx = make_context(CONNECTOR, action.id, CONFIG)
    return action.build(ctx, make_inputs(action.id, params, data or []))


def test_batches_are_split_to_stay_under_1_mb() -> None:
    big = "x" * 300_000
    requests = build([{"event_type": "e", "user_id": "user-1", "event_properties": {"b": big}}] * 7)
    assert [r.items for r in requests] == [(0, 1, 2), (3, 4, 5), (6,)]
    assert all(len(r.body) < MAX_BYTES for r in requests)


def test_batches_hold_at_most_2000_events() -> None:
    requests = build([{"event_type": "e", "user_id": "user-1"}] * 2001)
    assert [len(r.items) for r in requests] == [2000, 1]


@pytest.mark.parametrize(
    ("params", "data", "parameter"),
    [
        ({"event_type": "e"}, {"event_id": "x"}, "user_id"),
        ({"event_type": "e", "user_id": "abc"}, {}, "user_id"),
        ({"event_type": "e", "user_id": "user-1", "time": "soon"}, {}, "time"),
        (
            {"event_type": "e", "user_id": "user-1", "event_properties": {"b": "x" * MAX_BYTES}},
            {},
            "event_properties",
        ),
    ],
    ids=["no-user-or-device", "user-id-too-short", "bad-time", "event-over-1mb"],
)
def test_bad_values_are_mapping_errors(
    params: dict[str, Any], data: dict[str, Any], parameter: str
) -> None:
    with pytest.raises(MappingError) as info:
        build([params], [data] if data else None)
    assert info.value.parameter == parameter


def test_an_invalid_event_in_a_batch_fails_alone() -> None:
    good = {"event_type": "e", "user_id": "user-1"}
    [request] = build([good, {"event_type": "e", "user_id": "abc"}, good])
    assert isinstance(request, BatchRequest)
    assert request.items == (0, 1, 2)
    assert [e["insert_id"] for e in orjson.loads(request.body)["events"]] == [
        "evt_1:send_events",
        "evt_3:send_events",
    ]
    first, bad, third = CONNECTOR.actions[0].classify(request, response(200, '{"code":200}'))
    assert first is None
    assert third is None
    assert isinstance(bad, FatalDelivery)
    assert bad.category == "mapping"


def test_400_names_the_bad_events_and_resends_the_others() -> None:
    good = {"event_type": "e", "user_id": "user-1"}
    [request] = build([good, {**good, "time": 1}, good])
    answer = {
        "code": 400,
        "error": "Request missing required field",
        "events_with_invalid_fields": {"time": [1]},
        "events_with_missing_fields": {"event_type": [1]},
    }
    outcomes = CONNECTOR.actions[0].classify(request, response(400, orjson.dumps(answer)))
    assert isinstance(outcomes, list)
    first, bad, third = outcomes
    assert isinstance(bad, FatalDelivery)
    assert "time invalid" in bad.message
    assert "event_type missing" in bad.message
    for other in (first, third):
        assert isinstance(other, RetryableDelivery)
        assert other.category == "http_4xx"


THROTTLED = {
    "code": 429,
    "error": "Too many requests for some devices and users",
    "eps_threshold": 30,
    "throttled_devices": {"C8F9E604-F01A-4BD9-95C6-8E5357DF265D": 31},
    "throttled_users": {"datamonster@gmail.com": 32},
    "throttled_events": [0],
}

CASES = [
    ErrorCase(
        response(200, '{"code":200,"events_ingested":1,"payload_size_bytes":50}'), None, id="200"
    ),
    ErrorCase(
        response(400, '{"code":400,"error":"Invalid API key: xyz"}'),
        FatalDelivery,
        "auth",
        id="invalid-api-key",
    ),
    ErrorCase(
        response(
            400, '{"code":400,"error":"Request missing required field","missing_field":"api_key"}'
        ),
        FatalDelivery,
        "auth",
        message_contains="api_key",
        id="missing-api-key",
    ),
    ErrorCase(
        response(400, '{"code":400,"error":"Invalid JSON request body"}'),
        FatalDelivery,
        "http_4xx",
        message_contains="Invalid JSON",
        id="invalid-body",
    ),
    ErrorCase(
        response(413, '{"code":413,"error":"Payload too large"}'),
        FatalDelivery,
        "http_4xx",
        message_contains="batch size",
        id="413",
    ),
    ErrorCase(
        response(429, orjson.dumps(THROTTLED)),
        RetryableDelivery,
        "rate_limit",
        30.0,
        message_contains="2 users or devices throttled",
        id="429-throttled",
    ),
    ErrorCase(
        response(429, "{}", {"Retry-After": "3"}),
        RetryableDelivery,
        "rate_limit",
        3.0,
        id="429-after",
    ),
    ErrorCase(response(500, ""), RetryableDelivery, "http_5xx", id="500"),
    ErrorCase(response(502, ""), RetryableDelivery, "http_5xx", id="502"),
    ErrorCase(response(503, ""), RetryableDelivery, "http_5xx", id="503"),
    ErrorCase(response(504, ""), RetryableDelivery, "http_5xx", id="504"),
]


def test_error_mapping() -> None:
    [request] = build([{"event_type": "e", "user_id": "user-1"}])
    check_error_mapping(CONNECTOR, "send_events", CASES, request)
