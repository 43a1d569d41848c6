"""Braze: recorded /users/track and /users/identify calls, batching, normalisation, errors."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest

from sluice.connectors.catalog.braze import CONNECTOR, BrazeRequest
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

KEY = "b1a2c3d4-0000-4000-8000-000000000001"
CONFIG = {"api_key": KEY}
TRACK = "https://rest.iad-01.braze.com/users/track"
SAMPLES = {"event_time": "2024-05-01T12:00:00Z", "product_id": "backpack", "currency": "EUR"}


def test_definition_conforms() -> None:
    assert load_builtin("sluice.connectors.catalog.braze") is CONNECTOR
    check_definition(CONNECTOR)  # as the catalog-wide conformance test runs it
    check_definition(CONNECTOR, SAMPLES)  # with an event and a purchase too


EXAMPLES = [
    RecordedExample(
        name="attributes_event_and_purchase",
        action="track_user",
        config=CONFIG,
        inputs=[
            {
                "identifier_type": "external_id",
                "user_id": " user-42 ",
                "attributes": {"first_name": "Ada", "loyalty_tier": "gold"},
                "event_name": "rented_movie",
                "event_properties": {"movie": "The Sad Egg"},
                "product_id": "backpack",
                "currency": "usd",
                "price": 40.0,
                "quantity": 2,
                "app_id": "app-1",
            }
        ],
        expected=[
            {
                "method": "POST",
                "url": TRACK,
                "headers": {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
                "json": {
                    "attributes": [
                        {"external_id": "user-42", "first_name": "Ada", "loyalty_tier": "gold"}
                    ],
                    "events": [
                        {
                            "external_id": "user-42",
                            "time": "2024-05-01T12:00:00.000Z",
                            "app_id": "app-1",
                            "name": "rented_movie",
                            "properties": {"movie": "The Sad Egg"},
                        }
                    ],
                    "purchases": [
                        {
                            "external_id": "user-42",
                            "time": "2024-05-01T12:00:00.000Z",
                            "app_id": "app-1",
                            "product_id": "backpack",
                            "currency": "USD",
                            "price": 40.0,
                            "quantity": 2,
                        }
                    ],
                },
                "items": (0,),
            }
        ],
    ),
    RecordedExample(
        name="batch_of_three_users",
        action="track_user",
        config={**CONFIG, "base_url": "https://rest.fra-01.braze.eu/"},
        inputs=[
            {"user_id": "u-1", "event_name": "viewed", "event_time": "1714564800"},
            {"user_id": "u-2", "attributes": {"plan": "pro"}},
            {"user_id": "u-3", "event_name": "viewed", "event_time": "2024-05-01T14:00:00+02:00"},
        ],
        expected=[
            {
                "method": "POST",
                "url": "https://rest.fra-01.braze.eu/users/track",
                "json": {
                    "events": [
                        {
                            "external_id": "u-1",
                            "time": "2024-05-01T12:00:00.000Z",
                            "name": "viewed",
                        },
                        {
                            "external_id": "u-3",
                            "time": "2024-05-01T14:00:00+02:00",
                            "name": "viewed",
                        },
                    ],
                    "attributes": [{"external_id": "u-2", "plan": "pro"}],
                },
                "items": (0, 1, 2),
            }
        ],
    ),
    RecordedExample(
        name="alias_email_and_phone_identifiers",
        action="track_user",
        config=CONFIG,
        inputs=[
            {
                "identifier_type": "user_alias",
                "user_id": "visitor-0001",
                "alias_label": "tealium_visitor_id",
                "update_existing_only": False,
            },
            {"identifier_type": "email", "user_id": "  Ada@Example.COM "},
            {"identifier_type": "phone", "user_id": "+1 (555) 555-0100"},
        ],
        expected=[
            {
                "method": "POST",
                "url": TRACK,
                "json": {
                    "attributes": [
                        {
                            "user_alias": {
                                "alias_name": "visitor-0001",
                                "alias_label": "tealium_visitor_id",
                            },
                            "_update_existing_only": False,
                        },
                        {"email": "ada@example.com"},
                        {"phone": "+15555550100"},
                    ]
                },
            }
        ],
    ),
    RecordedExample(
        name="identify_users",
        action="identify_user",
        config=CONFIG,
        inputs=[
            {"external_id": "user-42", "alias_name": "visitor-0001", "alias_label": "visitor_id"},
            {"external_id": "user-43", "alias_name": "visitor-0002", "alias_label": "visitor_id"},
        ],
        expected=[
            {
                "method": "POST",
                "url": "https://rest.iad-01.braze.com/users/identify",
                "headers": {"Authorization": f"Bearer {KEY}"},
                "json": {
                    "aliases_to_identify": [
                        {
                            "external_id": "user-42",
                            "user_alias": {
                                "alias_name": "visitor-0001",
                                "alias_label": "visitor_id",
                            },
                        },
                        {
                            "external_id": "user-43",
                            "user_alias": {
                                "alias_name": "visitor-0002",
                                "alias_label": "visitor_id",
                            },
                        },
                    ]
                },
                "items": (0, 1),
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


def test_a_batch_is_split_at_75_objects_of_a_kind() -> None:
    requests = build("track_user", [{"user_id": f"u-{i}", "event_name": "e"} for i in range(80)])
    assert [len(r.items) for r in requests] == [75, 5]
    assert [len(orjson.loads(r.body)["events"]) for r in requests] == [75, 5]
    assert requests[1].items[0] == 75


def test_combined_limit_for_mau_plans() -> None:
    full = {"user_id": "u", "attributes": {"a": 1}, "event_name": "e", "product_id": "p"}
    full |= {"currency": "EUR", "price": 1}
    config = {**CONFIG, "request_limits": "mau_cy24_25"}
    requests = build("track_user", [full] * 20, config)
    counts = [sum(len(v) for v in orjson.loads(r.body).values()) for r in requests]
    assert counts == [48, 12]  # 16 users of three objects each fit in 50


def test_identify_batches_hold_50_aliases() -> None:
    alias = {"external_id": "user", "alias_name": "visitor", "alias_label": "label"}
    assert [len(r.items) for r in build("identify_user", [alias] * 51)] == [50, 1]


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"identifier_type": "email", "user_id": "not-an-email"}, "user_id"),
        ({"identifier_type": "phone", "user_id": "555-0100"}, "user_id"),
        ({"identifier_type": "user_alias", "user_id": "v-1"}, "alias_label"),
        ({"identifier_type": "device", "user_id": "v-1"}, "identifier_type"),
        ({"user_id": "u", "event_name": "e", "event_time": "yesterday"}, "event_time"),
        ({"user_id": "u", "event_name": "e", "event_properties": {"$x": 1}}, "event_properties"),
        ({"user_id": "u", "event_name": "e", "event_properties": {"time": 1}}, "event_properties"),
        ({"user_id": "u", "product_id": "p", "currency": "euro", "price": 1}, "currency"),
        ({"user_id": "u", "product_id": "p", "currency": "EUR"}, "price"),
        (
            {"user_id": "u", "product_id": "p", "currency": "EUR", "price": 1, "quantity": 101},
            "quantity",
        ),
    ],
    ids=[
        "bad-email",
        "phone-not-e164",
        "alias-without-label",
        "unknown-identifier",
        "bad-time",
        "dollar-property",
        "reserved-property",
        "bad-currency",
        "no-price",
        "quantity-over-100",
    ],
)
def test_bad_values_are_mapping_errors(params: dict[str, Any], parameter: str) -> None:
    with pytest.raises(MappingError) as info:
        build("track_user", [params])
    assert info.value.parameter == parameter


def test_an_invalid_event_in_a_batch_fails_alone() -> None:
    [request] = build(
        "track_user",
        [{"user_id": "u-1", "event_name": "e"}, {"identifier_type": "email", "user_id": "x"}],
    )
    assert isinstance(request, BrazeRequest)
    assert request.items == (0, 1)
    assert len(orjson.loads(request.body)["events"]) == 1
    ok, bad = CONNECTOR.actions[0].classify(request, response(201, '{"message":"success"}'))
    assert ok is None
    assert isinstance(bad, FatalDelivery)
    assert bad.category == "mapping"
    assert "user_id" in bad.message


def test_no_api_key_is_an_auth_error() -> None:
    with pytest.raises(FatalDelivery) as info:
        build("track_user", [{"user_id": "u"}], {})
    assert info.value.category == "auth"


def test_non_fatal_errors_name_the_rejected_objects() -> None:
    [request] = build(
        "track_user",
        [
            {"user_id": "u-1", "attributes": {"a": 1}, "event_name": "e"},
            {"user_id": "u-2", "event_name": "e"},
            {"user_id": "u-3", "attributes": {"a": 1}},
        ],
    )
    body = {
        "message": "success",
        "errors": [
            {"type": "'time' is invalid", "input_array": "events", "index": 1},
            {"type": "'external_id' is blacklisted", "input_array": "attributes", "index": 1},
        ],
    }
    outcomes = CONNECTOR.actions[0].classify(request, response(201, orjson.dumps(body)))
    assert isinstance(outcomes, list)
    first, second, third = outcomes
    assert first is None
    assert isinstance(second, FatalDelivery)
    assert "events[1]: 'time' is invalid" in second.message
    assert isinstance(third, FatalDelivery)
    assert "attributes[1]" in third.message


def test_rate_limit_waits_until_the_window_resets() -> None:
    [request] = build("track_user", [{"user_id": "u"}])
    reset = str(int(time.time()) + 30)
    outcome = CONNECTOR.actions[0].classify(
        request, response(429, "", {"X-RateLimit-Reset": reset})
    )
    assert isinstance(outcome, RetryableDelivery)
    assert outcome.category == "rate_limit"
    assert outcome.retry_after is not None
    assert 25 <= outcome.retry_after <= 31


def test_track_is_not_retried_after_a_timeout() -> None:
    # Braze records every event object it gets: a second attempt could count it twice.
    assert CONNECTOR.action("track_user").idempotent is False  # type: ignore[union-attr]
    assert CONNECTOR.action("identify_user").idempotent is True  # type: ignore[union-attr]


CASES = [
    ErrorCase(response(201, '{"message":"success","events_processed":1}'), None, id="success"),
    ErrorCase(response(202, '{"message":"queued"}'), None, id="queued"),
    ErrorCase(
        response(201, '{"message":"success","errors":["minor problem"]}'), None, id="minor-error"
    ),
    ErrorCase(
        response(400, '{"message":"Max Input Length Exceeded"}'),
        FatalDelivery,
        "http_4xx",
        message_contains="Max Input Length Exceeded",
        id="max-input-length",
    ),
    ErrorCase(
        response(200, '{"message":"Invalid request"}'),
        FatalDelivery,
        "http_4xx",
        message_contains="Invalid request",
        id="200-with-fatal-message",
    ),
    ErrorCase(response(401, '{"message":"Invalid API key"}'), FatalDelivery, "auth", id="401"),
    ErrorCase(response(403, '{"message":"Forbidden"}'), FatalDelivery, "auth", id="403"),
    ErrorCase(
        response(404, '{"message":"Unknown REST API key"}'),
        FatalDelivery,
        "auth",
        message_contains="REST API key",
        id="404-unknown-key",
    ),
    ErrorCase(
        response(429, '{"message":"Rate limited"}', {"Retry-After": "12"}),
        RetryableDelivery,
        "rate_limit",
        12.0,
        id="429-retry-after",
    ),
    ErrorCase(response(500, "oops"), RetryableDelivery, "http_5xx", id="500"),
    ErrorCase(response(503, ""), RetryableDelivery, "http_5xx", id="503"),
]


GOOD = {
    "track_user": {"user_id": "u-1", "event_name": "viewed"},
    "identify_user": {"external_id": "u-1", "alias_name": "v-1", "alias_label": "visitor_id"},
}


@pytest.mark.parametrize("action", list(GOOD))
def test_error_mapping(action: str) -> None:
    [request] = build(action, [GOOD[action]])
    check_error_mapping(CONNECTOR, action, CASES, request)
