"""GA4 Measurement Protocol: recorded requests, batching per client, names and validation."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from sluice.connectors.catalog.google_analytics_4 import CONNECTOR
from sluice.connectors.definition import Outcome
from sluice.connectors.masking import mask_request
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

CONFIG = {"measurement_id": "G-ABC123XYZ", "api_secret": "s3cr3t-api-value"}
URL = "https://www.google-analytics.com/mp/collect?measurement_id=G-ABC123XYZ&api_secret=s3cr3t-api-value"
NOON = 1714564800  # 2024-05-01T12:00:00Z, SAMPLE_EVENT's received_at


def event(name: str, client: str, **params: Any) -> dict[str, Any]:
    return {"event_name": name, "client_id": client, **params}


def measured(name: str, params: dict[str, Any] | None = None, at: int = NOON) -> dict[str, Any]:
    return {"name": name, "params": params or {}, "timestamp_micros": at * 1_000_000}


def per_item(result: Outcome | list[Outcome]) -> list[Outcome]:
    """The outcomes of a batch request, one per item."""
    assert isinstance(result, list)
    return result


EXAMPLES = [
    RecordedExample(
        name="purchase_with_everything",
        action="send_event",
        config=CONFIG,
        inputs=[
            {
                "event_name": "purchase",
                "event_params": {"transaction_id": "A-1001", "value": 42.5, "currency": "EUR"},
                "items": [{"item_id": "SKU-1", "quantity": 2}],
                "event_time": "2024-05-01T11:59:00Z",
                "client_id": "1234567.7654321",
                "user_id": "user-42",
                "user_properties": {"tier": "gold"},
                "consent_ad_user_data": "GRANTED",
                "consent_ad_personalization": "denied",
            }
        ],
        expected=[
            {
                "method": "POST",
                "url": URL,
                "headers": {"Content-Type": "application/json"},
                "json": {
                    "client_id": "1234567.7654321",
                    "user_id": "user-42",
                    "user_properties": {"tier": {"value": "gold"}},
                    "consent": {"ad_user_data": "GRANTED", "ad_personalization": "DENIED"},
                    "events": [
                        measured(
                            "purchase",
                            {
                                "transaction_id": "A-1001",
                                "value": 42.5,
                                "currency": "EUR",
                                "items": [{"item_id": "SKU-1", "quantity": 2}],
                            },
                            at=NOON - 60,
                        )
                    ],
                },
                "items": (0,),
            }
        ],
    ),
    RecordedExample(
        name="grouped_by_client",
        action="send_event",
        config=CONFIG,
        inputs=[
            event("view_item", "c-1"),
            event("view_item", "c-2"),
            event("add_to_cart", "c-1"),
            event("add_to_cart", "c-1", user_id="user-7"),  # other request-level fields
        ],
        expected=[
            {
                "method": "POST",
                "url": URL,
                "json": {
                    "client_id": "c-1",
                    "events": [measured("view_item"), measured("add_to_cart")],
                },
                "items": (0, 2),
            },
            {
                "method": "POST",
                "url": URL,
                "json": {"client_id": "c-2", "events": [measured("view_item")]},
                "items": (1,),
            },
            {
                "method": "POST",
                "url": URL,
                "json": {
                    "client_id": "c-1",
                    "user_id": "user-7",
                    "events": [measured("add_to_cart")],
                },
                "items": (3,),
            },
        ],
    ),
    RecordedExample(
        name="at_most_25_per_request",
        action="send_event",
        config=CONFIG,
        inputs=[event(f"step_{n}", "c-1") for n in range(26)],
        expected=[
            {"method": "POST", "url": URL, "items": tuple(range(25))},
            {"method": "POST", "url": URL, "items": (25,)},
        ],
    ),
    RecordedExample(
        name="debug_endpoint_in_the_eu",
        action="send_event",
        config={
            **CONFIG,
            "validate_with_debug_endpoint": True,
            "base_url": "https://region1.google-analytics.com",
        },
        inputs=[{"event_name": "Order Completed"}],  # no client ID: the visitor ID serves
        expected=[
            {
                "method": "POST",
                "url": "https://region1.google-analytics.com/debug/mp/collect"
                "?measurement_id=G-ABC123XYZ&api_secret=s3cr3t-api-value",
                "json": {"client_id": "visitor-0001", "events": [measured("Order_Completed")]},
            }
        ],
    ),
]


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_recorded_example(example: RecordedExample) -> None:
    check_example(CONNECTOR, example)


def test_definition_conforms() -> None:
    check_definition(CONNECTOR)


def build(params: list[dict[str, Any]], config: dict[str, Any] | None = None) -> Any:
    action = CONNECTOR.action("send_event")
    assert action is not None
    ctx = make_context(CONNECTOR, "send_event", config or CONFIG)
    return action.build(ctx, make_inputs("send_event", params))


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        (event("session_start", "c"), "event_name"),
        (event("ga_custom", "c"), "event_name"),
        (event("1st_visit", "c"), "event_name"),
        (event("x" * 41, "c"), "event_name"),
        (event("ok", "c", event_params={"google_thing": 1}), "event_params"),
        (event("ok", "c", event_params={"firebase_conversion": 1}), "event_params"),
        (event("ok", "c", event_params={f"p{n}": n for n in range(26)}), "event_params"),
        (event("ok", "c", items=["SKU-1"]), "items"),
        (event("ok", "c", user_properties={"a_name_longer_than_24_chars": 1}), "user_properties"),
        (event("ok", "c", user_properties={"user_id": "u"}), "user_properties"),
        (event("ok", "c", user_properties={"tier": "x" * 37}), "user_properties"),
        (event("ok", "c", consent_ad_user_data="yes"), "consent_ad_user_data"),
        (event("ok", "c", event_time="yesterday"), "event_time"),
    ],
    ids=[
        "reserved-event",
        "reserved-prefix",
        "starts-with-digit",
        "name-too-long",
        "param-prefix",
        "reserved-param",
        "too-many-params",
        "items-not-objects",
        "property-name-too-long",
        "reserved-property",
        "property-value-too-long",
        "consent-not-granted-or-denied",
        "time-not-a-time",
    ],
)
def test_bad_values_are_mapping_errors(params: dict[str, Any], parameter: str) -> None:
    with pytest.raises(MappingError) as info:
        build([params])
    assert info.value.parameter == parameter


def test_an_event_without_any_client_id_is_a_mapping_error() -> None:
    action = CONNECTOR.action("send_event")
    assert action is not None
    data = {k: v for k, v in SAMPLE_EVENT.items() if k != "tealium_visitor_id"}
    inputs = make_inputs("send_event", [{"event_name": "purchase"}], [data])
    with pytest.raises(MappingError) as info:
        action.build(make_context(CONNECTOR, "send_event", CONFIG), inputs)
    assert info.value.parameter == "client_id"


def test_a_bad_event_in_a_batch_fails_alone() -> None:
    [request] = build([event("purchase", "c-1"), event("error", "c-1"), event("refund", "c-1")])
    assert request.items == (0, 2, 1)  # the refused input rides along, last
    assert [e["name"] for e in orjson.loads(request.body)["events"]] == ["purchase", "refund"]
    action = CONNECTOR.action("send_event")
    assert action is not None
    first, third, second = per_item(action.classify(request, response(204)))
    assert first is None
    assert third is None
    assert isinstance(second, FatalDelivery)
    assert second.category == "mapping"
    assert "reserved" in second.message


@pytest.mark.parametrize(
    ("value", "micros"),
    [
        (1714564800, 1714564800000000),
        ("1714564800123", 1714564800123000),
        (1714564800123456, 1714564800123456),
        ("2024-05-01T14:00:00+02:00", 1714564800000000),
    ],
    ids=["seconds", "milliseconds-as-text", "microseconds", "iso-with-offset"],
)
def test_event_times_become_microseconds(value: Any, micros: int) -> None:
    [request] = build([event("purchase", "c", event_time=value)])
    assert orjson.loads(request.body)["events"][0]["timestamp_micros"] == micros


def test_the_api_secret_is_masked_in_the_query() -> None:
    [request] = build([event("purchase", "c")])
    shown = mask_request(request, [CONFIG["api_secret"]])
    assert "s3cr3t-api-value" not in shown["url"]
    assert "measurement_id=G-ABC123XYZ" in shown["url"]
    assert CONNECTOR.secret_fields() == {"api_secret"}


def test_missing_credentials_are_auth_errors() -> None:
    with pytest.raises(FatalDelivery) as info:
        build([event("purchase", "c")], {"measurement_id": "G-ABC123XYZ"})
    assert info.value.category == "auth"


VALIDATION = {
    "validationMessages": [
        {
            "fieldPath": "events",
            "description": "Event at index: [1] has invalid name [_bad]. Names must start "
            "with an alphabetic character.",
            "validationCode": "NAME_INVALID",
        }
    ]
}
GENERAL = {
    "validationMessages": [
        {
            "fieldPath": "client_id",
            "description": "Missing client_id",
            "validationCode": "VALUE_REQUIRED",
        }
    ]
}
CASES = [
    ErrorCase(response(204), None, id="collect-answers-204"),
    ErrorCase(response(200, '{"validationMessages": []}'), None, id="debug-valid"),
    ErrorCase(
        response(200, orjson.dumps(GENERAL)),
        FatalDelivery,
        "http_4xx",
        message_contains="VALUE_REQUIRED at client_id",
        id="debug-invalid",
    ),
    ErrorCase(response(403, "forbidden"), FatalDelivery, "auth", id="403"),
    ErrorCase(
        response(429, "", {"Retry-After": "30"}), RetryableDelivery, "rate_limit", 30.0, id="429"
    ),
    ErrorCase(response(400, "bad request"), FatalDelivery, "http_4xx", id="400"),
    ErrorCase(response(503, "unavailable"), RetryableDelivery, "http_5xx", id="503"),
]


def test_error_mapping() -> None:
    check_error_mapping(CONNECTOR, "send_event", CASES)


def test_validation_messages_land_on_the_event_they_name() -> None:
    [request] = build([event("purchase", "c"), event("refund", "c")], {**CONFIG})
    action = CONNECTOR.action("send_event")
    assert action is not None
    first, second = per_item(action.classify(request, response(200, orjson.dumps(VALIDATION))))
    assert first is None
    assert isinstance(second, FatalDelivery)
    assert "NAME_INVALID" in second.message
