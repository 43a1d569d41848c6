"""ClickSend: recorded /v3 requests, E.164 numbers, per-message statuses and error envelopes."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from sluice.connectors.batching import BatchRequest
from sluice.connectors.catalog.clicksend import CONNECTOR, phone
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

CONFIG = {"username": "acme-api", "api_key": "7B1E2D3C-4A5B-6C7D-8E9F-0A1B2C3D4E5F"}
AUTH = basic_auth(CONFIG["username"], CONFIG["api_key"])
SEND = "https://rest.clicksend.com/v3/sms/send"


def test_definition_conforms() -> None:
    assert load_builtin("sluice.connectors.catalog.clicksend") is CONNECTOR
    check_definition(CONNECTOR)


EXAMPLES = [
    RecordedExample(
        name="one_sms",
        action="send_an_sms",
        config=CONFIG,
        inputs=[{"to": "+61 411 111 111", "body": "Order A-1001 ships today"}],
        expected=[
            {
                "method": "POST",
                "url": SEND,
                "headers": {"Authorization": AUTH, "Content-Type": "application/json"},
                "json": {
                    "messages": [
                        {
                            "source": "sluice",
                            "to": "+61411111111",
                            "body": "Order A-1001 ships today",
                        }
                    ]
                },
                "items": (0,),
            }
        ],
    ),
    RecordedExample(
        name="batch_with_options",
        action="send_an_sms",
        config={**CONFIG, "base_url": "https://clicksend.test/"},
        inputs=[
            {
                "to": "0044 7700 900123",
                "body": "Your code is 1234",
                "from": "Acme",
                "custom_string": "order-A-1001",
                "schedule": "2024-05-01T12:00:00Z",
            },
            {
                "to": "+15555550100",
                "body": "Hello",
                "from": "+1 (555) 555-0199",
                "schedule": 1714564800000,
            },
        ],
        expected=[
            {
                "url": "https://clicksend.test/v3/sms/send",
                "json": {
                    "messages": [
                        {
                            "source": "sluice",
                            "to": "+447700900123",
                            "body": "Your code is 1234",
                            "from": "Acme",
                            "custom_string": "order-A-1001",
                            "schedule": 1714564800,
                        },
                        {
                            "source": "sluice",
                            "to": "+15555550100",
                            "body": "Hello",
                            "from": "+15555550199",
                            "schedule": 1714564800,
                        },
                    ]
                },
                "items": (0, 1),
            }
        ],
    ),
    RecordedExample(
        name="new_contact",
        action="create_or_update_a_contact",
        config=CONFIG,
        inputs=[
            {
                "list_id": 428,
                "phone_number": "+1 678 327 0696",
                "email": " Ellen.Diaz@Example.com ",
                "first_name": "Ellen",
                "last_name": "Diaz",
                "custom_1": "gold",
                "address_country": "US",
            }
        ],
        expected=[
            {
                "method": "POST",
                "url": "https://rest.clicksend.com/v3/lists/428/contacts",
                "headers": {"Authorization": AUTH, "Content-Type": "application/json"},
                "json": {
                    "phone_number": "+16783270696",
                    "email": "ellen.diaz@example.com",
                    "first_name": "Ellen",
                    "last_name": "Diaz",
                    "address_country": "US",
                    "custom_1": "gold",
                },
            }
        ],
    ),
    RecordedExample(
        name="update_known_contact",
        action="create_or_update_a_contact",
        config=CONFIG,
        inputs=[{"list_id": "428", "contact_id": 552786, "phone_number": "+16783270696"}],
        expected=[
            {
                "method": "PUT",
                "url": "https://rest.clicksend.com/v3/lists/428/contacts/552786",
                "json": {"phone_number": "+16783270696"},
            }
        ],
    ),
]


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_recorded_example(example: RecordedExample) -> None:
    check_example(CONNECTOR, example)


def build(action: str, params: list[dict[str, Any]], config: dict[str, Any] = CONFIG) -> Any:
    action_type = CONNECTOR.action(action)
    assert action_type is not None
    return action_type.build(make_context(CONNECTOR, action, config), make_inputs(action, params))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+61411111111", "+61411111111"),
        ("0061 411 111 111", "+61411111111"),
        ("+44 (0)20 7946 0958", "+442079460958"),
        ("+1-415-555-2671", "+14155552671"),
    ],
    ids=["e164", "double-zero", "trunk-zero", "dashes"],
)
def test_numbers_become_e164(raw: str, expected: str) -> None:
    assert phone(raw, "to") == expected


@pytest.mark.parametrize(
    ("action", "params", "parameter"),
    [
        ("send_an_sms", {"to": "0411 111 111", "body": "hi"}, "to"),
        ("send_an_sms", {"to": "+61411111111", "body": " "}, "body"),
        ("send_an_sms", {"to": "+61411111111", "body": "hi", "from": "Acme Stores"}, "from"),
        (
            "send_an_sms",
            {"to": "+61411111111", "body": "hi", "custom_string": "x" * 51},
            "custom_string",
        ),
        ("send_an_sms", {"to": "+61411111111", "body": "hi", "schedule": "soon"}, "schedule"),
        ("create_or_update_a_contact", {"list_id": 428}, "phone_number"),
        (
            "create_or_update_a_contact",
            {"list_id": "main", "phone_number": "+61411111111"},
            "list_id",
        ),
        (
            "create_or_update_a_contact",
            {"list_id": 428, "contact_id": "abc", "phone_number": "+61411111111"},
            "contact_id",
        ),
    ],
    ids=[
        "no-country-code",
        "blank-body",
        "sender-with-space",
        "long-reference",
        "bad-schedule",
        "no-phone",
        "list-name",
        "contact-name",
    ],
)
def test_bad_values_are_mapping_errors(action: str, params: dict[str, Any], parameter: str) -> None:
    with pytest.raises(MappingError) as info:
        build(action, [params])
    assert info.value.parameter == parameter


def test_missing_credentials_are_an_auth_error() -> None:
    with pytest.raises(FatalDelivery) as info:
        build("send_an_sms", [{"to": "+61411111111", "body": "hi"}], {"username": "acme-api"})
    assert info.value.category == "auth"


def test_sms_is_not_retried_after_a_timeout() -> None:
    sms = CONNECTOR.action("send_an_sms")
    assert sms is not None
    assert not sms.idempotent
    assert sms.batching is not None
    assert sms.batching.max_count == 1000
    assert sms.consent_categories == ("mobile", "engagement")


def sent(status: str, to: str = "+61411111111") -> dict[str, Any]:
    return {"to": to, "body": "hi", "status": status, "message_id": "BF7AD270"}


def queued(*messages: dict[str, Any]) -> Any:
    envelope = {
        "http_code": 200,
        "response_code": "SUCCESS",
        "response_msg": "Messages queued for delivery.",
        "data": {"total_count": len(messages), "messages": list(messages)},
    }
    return response(200, orjson.dumps(envelope))


def test_a_bad_number_fails_alone_and_statuses_count_per_message() -> None:
    params = [
        {"to": "+61411111111", "body": "a"},
        {"to": "0411 111 111", "body": "b"},  # no country code: never sent
        {"to": "+61411111112", "body": "c"},
        {"to": "+61411111113", "body": "d"},
    ]
    [request] = build("send_an_sms", params)
    assert isinstance(request, BatchRequest)
    assert request.items == (0, 2, 3, 1)
    assert [m["body"] for m in orjson.loads(request.body or b"")["messages"]] == ["a", "c", "d"]
    action = CONNECTOR.actions[0]
    outcomes = action.classify(
        request, queued(sent("SUCCESS"), sent("INVALID_RECIPIENT"), sent("INSUFFICIENT_CREDIT"))
    )
    assert isinstance(outcomes, list)
    assert outcomes[0] is None
    assert isinstance(outcomes[1], FatalDelivery)
    assert "'to'" in outcomes[1].message
    assert isinstance(outcomes[2], FatalDelivery)
    assert "credit" in outcomes[2].message
    assert isinstance(outcomes[3], FatalDelivery)
    assert outcomes[3].category == "mapping"
    assert "country code" in outcomes[3].message


def test_a_batch_of_only_bad_numbers_is_a_mapping_error() -> None:
    with pytest.raises(MappingError):
        build("send_an_sms", [{"to": "12", "body": "a"}, {"to": "34", "body": "b"}])


def test_an_error_for_the_whole_request_counts_for_every_message() -> None:
    [request] = build("send_an_sms", [{"to": "+61411111111", "body": "a"}] * 3)
    outcomes = CONNECTOR.actions[0].classify(request, response(503, ""))
    assert isinstance(outcomes, list)
    assert len(outcomes) == 3
    assert all(isinstance(o, RetryableDelivery) for o in outcomes)


def envelope(http_code: int, code: str, message: str, data: Any = None) -> bytes:
    body = {"http_code": http_code, "response_code": code, "response_msg": message, "data": data}
    return orjson.dumps(body)


CASES = [
    ErrorCase(
        response(200, envelope(200, "SUCCESS", "New contact has been created.")), None, id="ok"
    ),
    ErrorCase(
        response(200, envelope(400, "BAD_REQUEST", "Your request is invalid.")),
        FatalDelivery,
        "http_4xx",
        message_contains="BAD_REQUEST",
        id="error-inside-200",
    ),
    ErrorCase(
        response(400, envelope(400, "BAD_REQUEST", "Invalid.", {"phone_number": ["Invalid."]})),
        FatalDelivery,
        "http_4xx",
        message_contains="phone_number: Invalid.",
        id="field-problem",
    ),
    ErrorCase(
        response(401, envelope(401, "UNAUTHORIZED", "Invalid credentials.")),
        FatalDelivery,
        "auth",
        message_contains="API username and key",
        id="401",
    ),
    ErrorCase(
        response(403, envelope(403, "FORBIDDEN", "No access.")), FatalDelivery, "auth", id="403"
    ),
    ErrorCase(
        response(404, envelope(404, "NOT_FOUND", "List not found.")),
        FatalDelivery,
        "http_4xx",
        message_contains="contact list ID",
        id="404",
    ),
    ErrorCase(
        response(429, envelope(429, "TOO_MANY_REQUESTS", "Slow down."), {"Retry-After": "30"}),
        RetryableDelivery,
        "rate_limit",
        30.0,
        id="429",
    ),
    ErrorCase(response(500, "oops"), RetryableDelivery, "http_5xx", id="500"),
    ErrorCase(response(502, "<html>"), RetryableDelivery, "http_5xx", id="502"),
]


def test_error_mapping_of_contacts() -> None:
    check_error_mapping(CONNECTOR, "create_or_update_a_contact", CASES)


def test_error_mapping_of_sms() -> None:
    # Every case but the first carries no per-message statuses: it applies to all messages.
    check_error_mapping(CONNECTOR, "send_an_sms", CASES[1:])
    check_error_mapping(CONNECTOR, "send_an_sms", [ErrorCase(queued(sent("SUCCESS")), None)])
