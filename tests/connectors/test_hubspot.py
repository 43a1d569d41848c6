"""HubSpot: recorded batch upserts, email matching, merged duplicates and per-contact errors."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from sluice.connectors.catalog.hubspot import CONNECTOR, HubSpotRequest, email, property_value
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

TOKEN = "pat-na1-11111111-2222-3333-4444-555555555555"
CONFIG = {"access_token": TOKEN}
URL = "https://api.hubapi.com/crm/v3/objects/contacts/batch/upsert"
ACTION = "create_or_update_contact"


def test_definition_conforms() -> None:
    assert load_builtin("sluice.connectors.catalog.hubspot") is CONNECTOR
    check_definition(CONNECTOR)


def upsert(address: str, trace: str, **properties: str) -> dict[str, Any]:
    return {
        "idProperty": "email",
        "id": address,
        "properties": {**properties, "email": address},
        "objectWriteTraceId": trace,
    }


EXAMPLES = [
    RecordedExample(
        name="batch_of_two",
        action=ACTION,
        config=CONFIG,
        inputs=[
            {
                "email": " Ada@Example.com ",
                "properties": {"firstname": "Ada", "lifecyclestage": "customer", "age": 36},
            },
            {
                "email": "grace@example.com",
                "properties": {"hs_buying_role": ["BUDGET_HOLDER", "END_USER"]},
            },
        ],
        expected=[
            {
                "method": "POST",
                "url": URL,
                "headers": {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
                "json": {
                    "inputs": [
                        upsert(
                            "ada@example.com",
                            f"evt_1:{ACTION}",
                            firstname="Ada",
                            lifecyclestage="customer",
                            age="36",
                        ),
                        upsert(
                            "grace@example.com",
                            f"evt_2:{ACTION}",
                            hs_buying_role="BUDGET_HOLDER;END_USER",
                        ),
                    ]
                },
                "items": (0, 1),
            }
        ],
    ),
    RecordedExample(
        name="same_email_twice_is_one_input",
        action=ACTION,
        config={**CONFIG, "base_url": "https://hubspot.test/"},
        inputs=[
            {"email": "ada@example.com", "properties": {"firstname": "Ada", "city": "London"}},
            {"email": "ADA@example.com", "properties": {"city": "Paris", "phone": None}},
        ],
        expected=[
            {
                "url": "https://hubspot.test/crm/v3/objects/contacts/batch/upsert",
                "json": {
                    "inputs": [
                        upsert("ada@example.com", f"evt_1:{ACTION}", firstname="Ada", city="Paris")
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


def build(params: list[dict[str, Any]], config: dict[str, Any] = CONFIG) -> HubSpotRequest:
    action = CONNECTOR.actions[0]
    [request] = action.build(make_context(CONNECTOR, ACTION, config), make_inputs(ACTION, params))
    assert isinstance(request, HubSpotRequest)
    return request


def test_emails_are_trimmed_and_lower_cased() -> None:
    assert email("  Ada.Lovelace@Example.COM ") == "ada.lovelace@example.com"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, "true"), (False, "false"), (42.5, "42.5"), (7, "7"), ("x", "x"), (["a", "b"], "a;b")],
    ids=["true", "false", "float", "int", "text", "options"],
)
def test_property_values_are_text(value: Any, expected: str) -> None:
    assert property_value("p", value) == expected


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"email": " "}, "email"),
        ({"email": "a@example.com", "properties": {"address": {"city": "Paris"}}}, "properties"),
        ({"email": "a@example.com", "properties": ["firstname"]}, "properties"),
    ],
    ids=["not-an-email", "blank", "object-value", "not-a-map"],
)
def test_bad_values_are_mapping_errors(params: dict[str, Any], parameter: str) -> None:
    with pytest.raises(MappingError) as info:
        build([params])
    assert info.value.parameter == parameter


def test_a_bad_email_fails_alone() -> None:
    request = build([{"email": "a@example.com"}, {"email": "nope"}, {"email": "b@example.com"}])
    assert request.items == (0, 1, 2)
    assert [i["id"] for i in orjson.loads(request.body or b"")["inputs"]] == [
        "a@example.com",
        "b@example.com",
    ]
    outcomes = CONNECTOR.actions[0].classify(request, response(200, b'{"status": "COMPLETE"}'))
    assert isinstance(outcomes, list)
    assert outcomes[0] is None
    assert outcomes[2] is None
    assert isinstance(outcomes[1], FatalDelivery)
    assert outcomes[1].category == "mapping"


def test_missing_token_is_an_auth_error() -> None:
    with pytest.raises(FatalDelivery) as info:
        build([{"email": "a@example.com"}], {})
    assert info.value.category == "auth"


def test_batches_follow_hubspots_limit() -> None:
    action = CONNECTOR.actions[0]
    assert action.batching is not None
    assert action.batching.max_count == 100
    assert action.consent_categories == ("crm",)
    assert action.idempotent


def batch_error(message: str, context: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "status": "error",
        "category": "VALIDATION_ERROR",
        "message": message,
        "context": context,
        **extra,
    }


def test_multi_status_names_the_failed_contact() -> None:
    request = build(
        [{"email": "a@example.com"}, {"email": "b@example.com"}, {"email": "a@example.com"}]
    )
    body = {
        "status": "COMPLETE",
        "results": [{"id": "512", "objectWriteTraceId": f"evt_2:{ACTION}"}],
        "numErrors": 1,
        "errors": [
            batch_error(
                'Property "plan" does not exist',
                {"objectWriteTraceId": [f"evt_1:{ACTION}"], "propertyName": ["plan"]},
            )
        ],
    }
    outcomes = CONNECTOR.actions[0].classify(request, response(207, orjson.dumps(body)))
    assert isinstance(outcomes, list)
    assert outcomes[1] is None
    for failed in (outcomes[0], outcomes[2]):  # one input carried events 1 and 3
        assert isinstance(failed, FatalDelivery)
        assert failed.category == "http_4xx"
        assert "does not exist (property plan)" in failed.message


def test_a_refused_batch_retries_the_innocent_contacts() -> None:
    request = build([{"email": "a@example.com"}, {"email": "b@example.com"}])
    body = {
        "status": "error",
        "message": "Invalid input",
        "correlationId": "aeb5f871-7f07-4993-9211-075dc63e7cbf",
        "category": "VALIDATION_ERROR",
        "errors": [
            {"message": "Email address b@example is invalid", "context": {"id": ["b@example.com"]}}
        ],
    }
    outcomes = CONNECTOR.actions[0].classify(request, response(400, orjson.dumps(body)))
    assert isinstance(outcomes, list)
    assert isinstance(outcomes[0], RetryableDelivery)
    assert outcomes[0].category == "http_4xx"
    assert isinstance(outcomes[1], FatalDelivery)
    assert "correlationId aeb5f871" in outcomes[1].message


def hubspot_error(category: str, message: str, **extra: Any) -> bytes:
    body = {
        "status": "error",
        "message": message,
        "correlationId": "c-1",
        "category": category,
        **extra,
    }
    return orjson.dumps(body)


CASES = [
    ErrorCase(response(200, b'{"status": "COMPLETE", "results": []}'), None, id="ok"),
    ErrorCase(
        response(
            400,
            hubspot_error(
                "VALIDATION_ERROR",
                "Property values were not valid",
                errors=[
                    {
                        "message": 'Property "plan" does not exist',
                        "code": "PROPERTY_DOESNT_EXIST",
                        "context": {"propertyName": ["plan"]},
                    }
                ],
            ),
        ),
        FatalDelivery,
        "http_4xx",
        message_contains="(property plan)",
        id="unknown-property",
    ),
    ErrorCase(
        response(
            401, hubspot_error("INVALID_AUTHENTICATION", "Authentication credentials not found.")
        ),
        FatalDelivery,
        "auth",
        message_contains="access token",
        id="401",
    ),
    ErrorCase(
        response(
            403, hubspot_error("MISSING_SCOPES", "This app hasn't been granted all required scopes")
        ),
        FatalDelivery,
        "auth",
        message_contains="crm.objects.contacts.write",
        id="403",
    ),
    ErrorCase(
        response(
            429,
            hubspot_error(
                "RATE_LIMITS", "You have reached your secondly limit.", policyName="SECONDLY"
            ),
            {
                "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
                "X-HubSpot-RateLimit-Remaining": "0",
            },
        ),
        RetryableDelivery,
        "rate_limit",
        10.0,
        id="429-window",
    ),
    ErrorCase(
        response(
            429,
            hubspot_error("RATE_LIMITS", "You have reached your daily limit.", policyName="DAILY"),
        ),
        RetryableDelivery,
        "rate_limit",
        3600.0,
        id="429-daily",
    ),
    ErrorCase(
        response(429, hubspot_error("RATE_LIMITS", "Slow down."), {"Retry-After": "4"}),
        RetryableDelivery,
        "rate_limit",
        4.0,
        id="429-retry-after",
    ),
    ErrorCase(
        response(423, hubspot_error("LOCKED", "Locked")),
        RetryableDelivery,
        "http_4xx",
        2.0,
        id="423",
    ),
    ErrorCase(
        response(477, hubspot_error("MIGRATION", "Migration in progress"), {"Retry-After": "600"}),
        RetryableDelivery,
        "http_4xx",
        600.0,
        id="477",
    ),
    ErrorCase(response(502, "<html>"), RetryableDelivery, "http_5xx", id="502"),
]


def test_error_mapping() -> None:
    check_error_mapping(CONNECTOR, ACTION, CASES)
