"""Mixpanel: recorded /import batches, $insert_id derivation, failed_records per event."""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest

from sluice.connectors.batching import BatchRequest
from sluice.connectors.catalog.mixpanel import CONNECTOR, insert_id
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

CONFIG = {
    "project_id": "3141592",
    "username": "sluice.1a2b3c.mp-service-account",
    "secret": "s3cr3t-S3CR3T",
}
AUTH = basic_auth(CONFIG["username"], CONFIG["secret"])
URL = "https://api.mixpanel.com/import?strict=1&project_id=3141592"
T0 = 1714564800000  # SAMPLE_EVENT's received_at, 2024-05-01T12:00:00Z


def test_definition_conforms() -> None:
    assert load_builtin("sluice.connectors.catalog.mixpanel") is CONNECTOR
    check_definition(CONNECTOR)  # as the catalog-wide conformance test runs it
    check_definition(CONNECTOR, {"time": "1714564800"})


def test_insert_id_is_stable_short_and_plain() -> None:
    value = insert_id("0b7e4f4e-8c1a-4d59-9a53-5f4c8f8d2a10:act_123")
    assert value == insert_id("0b7e4f4e-8c1a-4d59-9a53-5f4c8f8d2a10:act_123")
    assert re.fullmatch(r"[0-9a-f]{32}", value)
    assert value != insert_id("0b7e4f4e-8c1a-4d59-9a53-5f4c8f8d2a10:act_124")


EXAMPLES = [
    RecordedExample(
        name="batch_with_identities",
        action="import_events",
        config=CONFIG,
        inputs=[
            {
                "event_name": "Purchase",
                "distinct_id": "user-42",
                "properties": {"Item": "Coffee", "Amount": 5.0, "time": 1},
                "user_id": "user-42",
                "device_id": "dev-7",
                "ip": "203.0.113.9",
            },
            {"event_name": "Signup", "time": "2024-05-01T12:00:01Z"},
        ],
        expected=[
            {
                "method": "POST",
                "url": URL,
                "headers": {"Authorization": AUTH, "Content-Type": "application/json"},
                "json": [
                    {
                        "event": "Purchase",
                        "properties": {
                            "Item": "Coffee",
                            "Amount": 5.0,
                            "time": T0,
                            "distinct_id": "user-42",
                            "$insert_id": insert_id("evt_1:import_events"),
                            "$user_id": "user-42",
                            "$device_id": "dev-7",
                            "ip": "203.0.113.9",
                        },
                    },
                    {
                        "event": "Signup",
                        "properties": {
                            "time": T0 + 1000,
                            "distinct_id": "visitor-0001",
                            "$insert_id": insert_id("evt_2:import_events"),
                        },
                    },
                ],
                "items": (0, 1),
            }
        ],
    ),
    RecordedExample(
        name="eu_residency_and_anonymous_event",
        action="import_events",
        config={**CONFIG, "base_url": "https://api-eu.mixpanel.com"},
        inputs=[{"event_name": "Ping", "time": 1714564800}],
        data=[{"event_id": "e-1"}],
        expected=[
            {
                "url": "https://api-eu.mixpanel.com/import?strict=1&project_id=3141592",
                "json": [
                    {
                        "event": "Ping",
                        "properties": {
                            "time": T0,
                            "distinct_id": "",
                            "$insert_id": insert_id("evt_1:import_events"),
                        },
                    }
                ],
            }
        ],
    ),
]


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_recorded_example(example: RecordedExample) -> None:
    check_example(CONNECTOR, example)


def build(params: list[dict[str, Any]], config: dict[str, Any] | None = None) -> Any:
    action = CONNECTOR.actions[0]
    ctx = make_context(CONNECTOR, action.id, CONFIG if config is None else config)
    return action.build(ctx, make_inputs(action.id, params))


def test_batches_hold_at_most_2000_events() -> None:
    requests = build([{"event_name": "e"}] * 2001)
    assert [len(r.items) for r in requests] == [2000, 1]
    assert len(orjson.loads(requests[0].body)) == 2000


def test_batches_stay_under_10_mb() -> None:
    big = {"event_name": "e", "properties": {"blob": "x" * 900_000}}
    requests = build([big] * 12)
    assert [len(r.items) for r in requests] == [11, 1]
    assert all(len(r.body) <= 10_000_000 for r in requests)


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"event_name": "e", "time": "tomorrow"}, "time"),
        ({"event_name": "e", "properties": {f"p{i}": i for i in range(260)}}, "properties"),
        ({"event_name": "e", "properties": {"blob": "x" * 1_000_000}}, "properties"),
    ],
    ids=["bad-time", "too-many-properties", "event-over-1mb"],
)
def test_bad_values_are_mapping_errors(params: dict[str, Any], parameter: str) -> None:
    with pytest.raises(MappingError) as info:
        build([params])
    assert info.value.parameter == parameter


def test_an_invalid_event_in_a_batch_fails_alone() -> None:
    [request] = build([{"event_name": "a"}, {"event_name": "b", "time": "never"}])
    assert isinstance(request, BatchRequest)
    assert request.items == (0, 1)
    assert [e["event"] for e in orjson.loads(request.body)] == ["a"]
    ok, bad = CONNECTOR.actions[0].classify(request, response(200, '{"code":200}'))
    assert ok is None
    assert isinstance(bad, FatalDelivery)
    assert bad.category == "mapping"


def test_missing_credentials_are_an_auth_error() -> None:
    with pytest.raises(FatalDelivery) as info:
        build([{"event_name": "e"}], {"project_id": "1"})
    assert info.value.category == "auth"


def test_failed_records_fail_only_their_events() -> None:
    [request] = build([{"event_name": "a"}, {"event_name": "b"}, {"event_name": "c"}])
    answer = {
        "code": 400,
        "error": "some data points in the request failed validation",
        "status": "Bad Request",
        "num_records_imported": 2,
        "failed_records": [
            {
                "index": 1,
                "insert_id": "13c0b661f48b51cdba5497c5999169c0",
                "field": "properties.time",
                "message": "'properties.time' is invalid: must be specified as seconds since epoch",
            }
        ],
    }
    outcomes = CONNECTOR.actions[0].classify(request, response(400, orjson.dumps(answer)))
    assert isinstance(outcomes, list)
    first, bad, third = outcomes
    assert first is None
    assert third is None
    assert isinstance(bad, FatalDelivery)
    assert bad.category == "http_4xx"
    assert "properties.time" in bad.message


CASES = [
    ErrorCase(response(200, '{"code":200,"num_records_imported":1,"status":"OK"}'), None, id="200"),
    ErrorCase(
        response(400, '{"code":400,"error":"unable to parse request body","status":"Bad Request"}'),
        FatalDelivery,
        "http_4xx",
        message_contains="unable to parse",
        id="400-without-records",
    ),
    ErrorCase(
        response(401, '{"code":401,"error":"Invalid credentials","status":"Unauthorized"}'),
        FatalDelivery,
        "auth",
        message_contains="Invalid credentials",
        id="401",
    ),
    ErrorCase(response(403, '{"code":403,"error":"forbidden"}'), FatalDelivery, "auth", id="403"),
    ErrorCase(
        response(413, '{"code":413,"error":"request too large"}'),
        FatalDelivery,
        "http_4xx",
        message_contains="batch size",
        id="413",
    ),
    ErrorCase(
        response(429, '{"code":429,"error":"rate limited"}', {"Retry-After": "60"}),
        RetryableDelivery,
        "rate_limit",
        60.0,
        id="429",
    ),
    ErrorCase(response(500, ""), RetryableDelivery, "http_5xx", id="500"),
    ErrorCase(response(503, ""), RetryableDelivery, "http_5xx", id="503"),
]


def test_error_mapping() -> None:
    [request] = build([{"event_name": "e"}])
    check_error_mapping(CONNECTOR, "import_events", CASES, request)
