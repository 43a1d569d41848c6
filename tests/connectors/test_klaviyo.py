"""Klaviyo: recorded JSON:API requests, profile identifiers, unique_id and pointer errors."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from sluice.connectors.catalog.klaviyo import CONNECTOR, REVISION, identifiers, iso_time
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

KEY = "pk_0123456789abcdef0123456789abcdef01"
CONFIG = {"api_key": KEY}
HEADERS = {
    "Authorization": f"Klaviyo-API-Key {KEY}",
    "revision": REVISION,
    "Content-Type": "application/vnd.api+json",
    "Accept": "application/vnd.api+json",
}


def test_definition_conforms() -> None:
    assert load_builtin("sluice.connectors.catalog.klaviyo") is CONNECTOR
    check_definition(CONNECTOR)


def profile(**attributes: Any) -> dict[str, Any]:
    return {"data": {"type": "profile", "attributes": attributes}}


EXAMPLES = [
    RecordedExample(
        name="placed_order",
        action="create_event",
        config=CONFIG,
        inputs=[
            {
                "metric_name": "Placed Order",
                "properties": {"OrderId": "A-1001", "Items": ["Coffee"]},
                "value": 42.5,
                "value_currency": "eur",
                "time": 1714564800,
                "identifier": " Ada@Example.com ",
                "phone_number": "0044 7700 900123",
            }
        ],
        expected=[
            {
                "method": "POST",
                "url": "https://a.klaviyo.com/api/events",
                "headers": HEADERS,
                "json": {
                    "data": {
                        "type": "event",
                        "attributes": {
                            "properties": {"OrderId": "A-1001", "Items": ["Coffee"]},
                            "metric": {
                                "data": {"type": "metric", "attributes": {"name": "Placed Order"}}
                            },
                            "profile": profile(
                                email="ada@example.com", phone_number="+447700900123"
                            ),
                            "unique_id": "evt_1:create_event",
                            "time": "2024-05-01T12:00:00+00:00",
                            "value": 42.5,
                            "value_currency": "EUR",
                        },
                    }
                },
            }
        ],
    ),
    RecordedExample(
        name="event_by_phone_at_arrival_time",
        action="create_event",
        config={**CONFIG, "revision": "2025-01-15"},
        inputs=[
            {
                "metric_name": "Viewed Product",
                "identifier_type": "phone_number",
                "identifier": "+1 (500) 555-0006",
                "unique_id": "view-77",
            }
        ],
        expected=[
            {
                "url": "https://a.klaviyo.com/api/events",
                "headers": {"revision": "2025-01-15"},
                "json": {
                    "data": {
                        "type": "event",
                        "attributes": {
                            "properties": {},
                            "metric": {
                                "data": {"type": "metric", "attributes": {"name": "Viewed Product"}}
                            },
                            "profile": profile(phone_number="+15005550006"),
                            "unique_id": "view-77",
                            "time": "2024-05-01T12:00:00+00:00",
                        },
                    }
                },
            }
        ],
    ),
    RecordedExample(
        name="profile_import",
        action="create_or_update_profile",
        config={**CONFIG, "base_url": "https://klaviyo.test/"},
        inputs=[
            {
                "identifier_type": "external_id",
                "identifier": "cust-42",
                "email": "ada@example.com",
                "first_name": "Ada",
                "last_name": " ",
                "city": "London",
                "country": "United Kingdom",
                "properties": {"plan": "gold", "vip": True},
            }
        ],
        expected=[
            {
                "method": "POST",
                "url": "https://klaviyo.test/api/profile-import",
                "headers": HEADERS,
                "json": profile(
                    external_id="cust-42",
                    email="ada@example.com",
                    first_name="Ada",
                    location={"city": "London", "country": "United Kingdom"},
                    properties={"plan": "gold", "vip": True},
                ),
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
        (1714564800, "2024-05-01T12:00:00+00:00"),
        (1714564800123, "2024-05-01T12:00:00+00:00"),
        ("2024-05-01T14:00:00+02:00", "2024-05-01T12:00:00+00:00"),
        ("2024-05-01T12:00:00.999Z", "2024-05-01T12:00:00+00:00"),
    ],
    ids=["seconds", "milliseconds", "offset", "zulu"],
)
def test_times_become_utc_seconds(value: Any, expected: str) -> None:
    assert iso_time(value, "time") == expected


def test_the_main_identifier_wins_over_an_extra_of_its_kind() -> None:
    params = {"identifier": "A@x.io", "email": "b@x.io", "external_id": " 42 "}
    assert identifiers(params) == {"email": "a@x.io", "external_id": "42"}


def build(action: str, params: dict[str, Any]) -> Any:
    action_type = CONNECTOR.action(action)
    assert action_type is not None
    ctx = make_context(CONNECTOR, action, CONFIG)
    return action_type.build(ctx, make_inputs(action, [params]))


@pytest.mark.parametrize(
    ("action", "params", "parameter"),
    [
        ("create_event", {"metric_name": "Ordered"}, "identifier"),
        ("create_event", {"metric_name": " ", "identifier": "a@x.io"}, "metric_name"),
        ("create_event", {"metric_name": "x" * 128, "identifier": "a@x.io"}, "metric_name"),
        (
            "create_event",
            {
                "metric_name": "Ordered",
                "identifier": "a@x.io",
                "properties": {f"p{n}": n for n in range(401)},
            },
            "properties",
        ),
        (
            "create_event",
            {"metric_name": "Ordered", "identifier": "a@x.io", "time": "soon"},
            "time",
        ),
        (
            "create_event",
            {"metric_name": "Ordered", "identifier": "a@x.io", "value": "lots"},
            "value",
        ),
        (
            "create_event",
            {"metric_name": "Ordered", "identifier": "a@x.io", "phone_number": "555"},
            "phone_number",
        ),
        (
            "create_or_update_profile",
            {"identifier_type": "phone_number", "identifier": "0612"},
            "identifier",
        ),
        (
            "create_or_update_profile",
            {"identifier_type": "id", "identifier": "01H"},
            "identifier_type",
        ),
        (
            "create_or_update_profile",
            {"identifier": "a@x.io", "properties": {"bio": "x" * 100_001}},
            "properties",
        ),
    ],
    ids=[
        "no-identifier",
        "blank-metric",
        "long-metric",
        "too-many-properties",
        "bad-time",
        "bad-value",
        "bad-extra-phone",
        "bad-phone",
        "unknown-identifier-type",
        "profile-over-100-kb",
    ],
)
def test_bad_values_are_mapping_errors(action: str, params: dict[str, Any], parameter: str) -> None:
    with pytest.raises(MappingError) as info:
        build(action, params)
    assert info.value.parameter == parameter


def test_events_are_deduplicated_by_klaviyo() -> None:
    # unique_id makes a retried event count once, so both actions are safe to retry.
    assert all(action.idempotent and action.batching is None for action in CONNECTOR.actions)
    [request] = build("create_event", {"metric_name": "Ordered", "identifier": "a@x.io"})
    assert orjson.loads(request.body)["data"]["attributes"]["unique_id"] == "evt_1:create_event"


def klaviyo_errors(
    status: int, code: str, title: str, detail: str, pointer: str | None = None
) -> bytes:
    error: dict[str, Any] = {
        "id": "e1",
        "status": status,
        "code": code,
        "title": title,
        "detail": detail,
    }
    if pointer:
        error["source"] = {"pointer": pointer}
    return orjson.dumps({"errors": [error]})


CASES = [
    ErrorCase(response(202, b""), None, id="accepted"),
    ErrorCase(response(201, b'{"data": {"type": "profile", "id": "01H"}}'), None, id="created"),
    ErrorCase(
        response(
            400,
            klaviyo_errors(
                400,
                "invalid",
                "Invalid input.",
                "Invalid email address",
                "/data/attributes/profile/data/attributes/email",
            ),
        ),
        FatalDelivery,
        "http_4xx",
        message_contains="(field 'email', at /data/attributes/profile/data/attributes/email)",
        id="bad-email",
    ),
    ErrorCase(
        response(
            400,
            klaviyo_errors(
                400,
                "invalid",
                "Invalid input.",
                "Name too long",
                "/data/attributes/metric/data/attributes/name",
            ),
        ),
        FatalDelivery,
        "http_4xx",
        message_contains="field 'metric_name'",
        id="bad-metric-name",
    ),
    ErrorCase(
        response(
            409,
            klaviyo_errors(
                409,
                "duplicate_profile",
                "Conflict.",
                "A profile already exists with one of these identifiers.",
            ),
        ),
        FatalDelivery,
        "http_4xx",
        message_contains="already exists",
        id="409-duplicate-profile",
    ),
    ErrorCase(
        response(
            401,
            klaviyo_errors(
                401,
                "not_authenticated",
                "Authentication credentials were not provided.",
                "Missing or invalid private key.",
            ),
        ),
        FatalDelivery,
        "auth",
        message_contains="private API key",
        id="401",
    ),
    ErrorCase(
        response(
            403,
            klaviyo_errors(
                403,
                "permission_denied",
                "You do not have permission to perform this action.",
                "Missing scope.",
            ),
        ),
        FatalDelivery,
        "auth",
        message_contains="scopes",
        id="403",
    ),
    ErrorCase(
        response(
            429,
            klaviyo_errors(
                429, "throttled", "Request was throttled.", "Expected available in 7 seconds."
            ),
            {"Retry-After": "7"},
        ),
        RetryableDelivery,
        "rate_limit",
        7.0,
        id="429",
    ),
    ErrorCase(
        response(
            503, klaviyo_errors(503, "service_unavailable", "Service unavailable.", "Try later.")
        ),
        RetryableDelivery,
        "http_5xx",
        id="503",
    ),
    ErrorCase(
        response(500, "<html>"),
        RetryableDelivery,
        "http_5xx",
        message_contains="HTTP 500",
        id="500-html",
    ),
]


@pytest.mark.parametrize("action", [a.id for a in CONNECTOR.actions])
def test_error_mapping(action: str) -> None:
    check_error_mapping(CONNECTOR, action, CASES)
