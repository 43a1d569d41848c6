"""Segment: recorded /v1/batch requests, normalisation, limits and error mapping."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import orjson
import pytest

from sluice.connectors.batching import BatchRequest
from sluice.connectors.catalog.segment import CONNECTOR, MAX_MESSAGE_BYTES
from sluice.connectors.definition import DELIVERY_FIELDS, ActionInput
from sluice.connectors.registry import load_builtin
from sluice.connectors.testing import (
    SAMPLE_EVENT,
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

KEY = "WRITE_KEY_123"
CONFIG = {"write_key": KEY}
AUTH = "Basic V1JJVEVfS0VZXzEyMzo="  # base64("WRITE_KEY_123:"): the password is empty
RECEIVED = SAMPLE_EVENT["received_at"]


def test_definition_conforms() -> None:
    check_definition(CONNECTOR)
    assert load_builtin("sluice.connectors.catalog.segment") is CONNECTOR


EXAMPLES = [
    RecordedExample(
        name="track_one_event",
        action="track",
        config=CONFIG,
        inputs=[
            {
                "event": " Order Completed ",
                "user_id": 1001,
                "properties": {"order_id": "A-1001", "revenue": 42.5, "currency": "EUR"},
                "context": {"ip": "203.0.113.7", "page.url": "https://shop.example/thanks"},
                "timestamp": "2024-05-01T11:59:58.120Z",
            }
        ],
        expected=[
            {
                "method": "POST",
                "url": "https://api.segment.io/v1/batch",
                "headers": {"Authorization": AUTH, "Content-Type": "application/json"},
                "json": {
                    "batch": [
                        {
                            "type": "track",
                            "messageId": "evt_1:track",
                            "userId": "1001",
                            "event": "Order Completed",
                            "properties": {
                                "order_id": "A-1001",
                                "revenue": 42.5,
                                "currency": "EUR",
                            },
                            "context": {
                                "ip": "203.0.113.7",
                                "page": {"url": "https://shop.example/thanks"},
                            },
                            "timestamp": "2024-05-01T11:59:58.120Z",
                        }
                    ]
                },
                "items": (0,),
            }
        ],
    ),
    RecordedExample(
        name="identify_eu_with_visitor_id",
        action="identify",
        config={**CONFIG, "region": "eu"},
        inputs=[{"traits": {"email": "ada@example.com", "plan": "pro"}}],
        expected=[
            {
                "method": "POST",
                "url": "https://events.eu1.segmentapis.com/v1/batch",
                "headers": {"Authorization": AUTH},
                "json": {
                    "batch": [
                        {
                            "type": "identify",
                            "messageId": "evt_1:identify",
                            "anonymousId": "visitor-0001",
                            "traits": {"email": "ada@example.com", "plan": "pro"},
                            "timestamp": RECEIVED,
                        }
                    ]
                },
            }
        ],
    ),
    RecordedExample(
        name="track_batch",
        action="track",
        config={**CONFIG, "base_url": "https://proxy.example.com/segment/"},
        inputs=[
            {"event": "Viewed", "anonymous_id": f"anon-{i}", "integrations": {"All": False}}
            for i in range(3)
        ],
        data=[{"event_id": f"e-{i}"} for i in range(3)],
        expected=[
            {
                "method": "POST",
                "url": "https://proxy.example.com/segment/v1/batch",
                "json": {
                    "batch": [
                        {
                            "type": "track",
                            "messageId": f"evt_{i + 1}:track",
                            "anonymousId": f"anon-{i}",
                            "event": "Viewed",
                            "properties": {},
                            "integrations": {"All": False},
                        }
                        for i in range(3)
                    ]
                },
                "items": (0, 1, 2),
            }
        ],
    ),
]


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_recorded_example(example: RecordedExample) -> None:
    check_example(CONNECTOR, example)


def build(action: str, params: list[dict[str, Any]], config: dict[str, Any] | None = None) -> Any:
    action_type = CONNECTOR.action(action)
    assert action_type is not None
    ctx = make_context(CONNECTOR, action, CONFIG if config is None else config)
    return action_type.build(ctx, make_inputs(action, params))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1714564800, "2024-05-01T12:00:00.000Z"),
        (1714564800123, "2024-05-01T12:00:00.123Z"),
        ("1714564800", "2024-05-01T12:00:00.000Z"),
        ("2024-05-01T14:00:00+02:00", "2024-05-01T14:00:00+02:00"),
        ("", RECEIVED),
    ],
    ids=["epoch-seconds", "epoch-ms", "epoch-as-text", "iso-offset", "empty-is-received-at"],
)
def test_timestamps_are_iso_8601(value: Any, expected: str) -> None:
    [request] = build("track", [{"event": "E", "user_id": "u", "timestamp": value}])
    assert orjson.loads(request.body)["batch"][0]["timestamp"] == expected


def test_a_bad_timestamp_is_a_mapping_error() -> None:
    with pytest.raises(MappingError) as info:
        build("track", [{"event": "E", "user_id": "u", "timestamp": "yesterday"}])
    assert info.value.parameter == "timestamp"


def test_without_any_id_it_is_a_mapping_error() -> None:
    inputs = [ActionInput({"event": "E"}, {"event_id": "e-1"}, "e-1", "e-1:track")]
    ctx = make_context(CONNECTOR, "track", CONFIG)
    with pytest.raises(MappingError) as info:
        CONNECTOR.actions[0].build(ctx, inputs)
    assert info.value.parameter == "user_id"


def test_a_long_idempotency_key_is_hashed_to_fit_message_id() -> None:
    key = "e" * 80 + ":" + "a" * 40
    inputs = [ActionInput({"event": "E", "user_id": "u"}, {}, "e", key)]
    [request] = CONNECTOR.actions[0].build(make_context(CONNECTOR, "track", CONFIG), inputs)
    message_id = orjson.loads(request.body)["batch"][0]["messageId"]
    assert len(message_id) == 64
    assert message_id == hashlib.sha256(key.encode()).hexdigest()


def test_an_oversized_message_is_a_mapping_error() -> None:
    big = {"blob": "x" * MAX_MESSAGE_BYTES}
    with pytest.raises(MappingError) as info:
        build("identify", [{"user_id": "u", "traits": big}])
    assert info.value.parameter == "traits"
    assert "32 KB" in info.value.message


def test_batches_stay_under_500_kb() -> None:
    params = [
        {"event": "E", "user_id": f"u{i}", "properties": {"p": "x" * 30_000}} for i in range(40)
    ]
    requests = build("track", params)
    assert [len(r.items) for r in requests] == [16, 16, 8]
    assert all(len(r.body) <= 500_000 for r in requests)
    assert [len(orjson.loads(r.body)["batch"]) for r in requests] == [16, 16, 8]


def test_an_invalid_event_in_a_batch_fails_alone() -> None:
    params = [
        {"event": "E", "user_id": "u1"},
        {"event": "E", "user_id": "u2", "timestamp": "soon"},
        {"event": "E", "user_id": "u3"},
    ]
    [request] = build("track", params)
    assert isinstance(request, BatchRequest)
    assert request.items == (0, 1, 2)
    assert [m["userId"] for m in orjson.loads(request.body)["batch"]] == ["u1", "u3"]
    first, bad, third = CONNECTOR.actions[0].classify(request, response(200, '{"success":true}'))
    assert first is None
    assert third is None
    assert isinstance(bad, FatalDelivery)
    assert bad.category == "mapping"
    assert "timestamp" in bad.message
    throttled = CONNECTOR.actions[0].classify(request, response(429, "", {"Retry-After": "3"}))
    assert isinstance(throttled, list)
    assert [type(o) for o in throttled] == [RetryableDelivery, FatalDelivery, RetryableDelivery]


def test_no_write_key_is_an_auth_error() -> None:
    with pytest.raises(FatalDelivery) as info:
        build("track", [{"event": "E", "user_id": "u"}], {})
    assert info.value.category == "auth"
    [request] = build("track", [{"event": "E", "user_id": "u"}])
    assert request.sensitive_headers == frozenset({"authorization"})


ERRORS = [
    ErrorCase(response(200, '{"success": true}'), None, id="ok"),
    ErrorCase(response(200, ""), None, id="ok-empty"),
    ErrorCase(
        response(200, '{"success": false, "message": "no_user_anon_id"}'),
        FatalDelivery,
        "http_4xx",
        message_contains="no_user_anon_id",
        id="200-saying-failed",
    ),
    ErrorCase(
        response(400, '{"code": "invalid_request", "message": "Invalid JSON"}'),
        FatalDelivery,
        "http_4xx",
        message_contains="invalid_request: Invalid JSON",
        id="invalid-json",
    ),
    ErrorCase(
        response(400, "request entity too large"),
        FatalDelivery,
        "http_4xx",
        message_contains="500 KB",
        id="too-large",
    ),
    ErrorCase(
        response(400, '{"code": "invalid_request", "message": "Missing write key"}'),
        FatalDelivery,
        "auth",
        message_contains="write key",
        id="missing-write-key",
    ),
    ErrorCase(response(401, "Unauthorized"), FatalDelivery, "auth", id="401"),
    ErrorCase(response(403, ""), FatalDelivery, "auth", id="403"),
    ErrorCase(
        response(429, "", {"Retry-After": "30", "X-RateLimit-Reset": "30"}),
        RetryableDelivery,
        "rate_limit",
        retry_after=30.0,
        id="429-retry-after",
    ),
    ErrorCase(
        response(429, "", {"X-RateLimit-Reset": "12"}),
        RetryableDelivery,
        "rate_limit",
        retry_after=12.0,
        id="429-ratelimit-reset",
    ),
    ErrorCase(response(500, "oops"), RetryableDelivery, "http_5xx", id="500"),
    ErrorCase(
        response(503, "", {"Retry-After": "5"}), RetryableDelivery, "http_5xx", 5.0, id="503"
    ),
    ErrorCase(response(404, "not found"), FatalDelivery, "http_4xx", id="404"),
]


@pytest.mark.parametrize("action", ["track", "identify"])
def test_error_mapping(action: str) -> None:
    check_error_mapping(CONNECTOR, action, ERRORS)


def test_every_field_is_documented() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "connectors" / "segment.md").read_text(
        encoding="utf-8"
    )
    fields = [f for f in CONNECTOR.all_configuration() if f not in DELIVERY_FIELDS]
    names = [CONNECTOR.id, *(f.name for f in fields)]
    for action in CONNECTOR.actions:
        names.extend([action.id, *(p.name for p in action.parameters)])
    missing = [name for name in names if f"`{name}`" not in text]
    assert not missing, f"docs/connectors/segment.md does not mention {missing}"
