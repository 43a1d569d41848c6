"""Mailchimp: recorded member upserts and unsubscribes, data centers, hashing, errors."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from sluice.connectors.catalog.mailchimp import CONNECTOR, base_url, subscriber_hash
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

KEY = "0123456789abcdef0123456789abcdef-us6"
CONFIG = {"api_key": KEY}
AUTH = basic_auth("sluice", KEY)
ADA = hashlib.md5(b"ada@example.com", usedforsecurity=False).hexdigest()
MEMBER = f"https://us6.api.mailchimp.com/3.0/lists/a1b2c3d4e5/members/{ADA}"


def test_definition_conforms() -> None:
    assert load_builtin("sluice.connectors.catalog.mailchimp") is CONNECTOR
    check_definition(CONNECTOR)  # as the catalog-wide conformance test runs it
    check_definition(CONNECTOR, {"list_id": "a1b2c3d4e5", "tags": ["vip"]})


EXAMPLES = [
    RecordedExample(
        name="subscribe_with_merge_fields_and_tags",
        action="subscribe_or_update_member",
        config=CONFIG,
        inputs=[
            {
                "list_id": "a1b2c3d4e5",
                "email_address": " Ada@Example.com ",
                "status_if_new": "pending",
                "merge_fields": {"fname": "Ada", "LNAME": "Lovelace"},
                "tags": ["vip", "newsletter"],
                "interests": {"9143cf3bd1": True},
                "language": "en",
            }
        ],
        expected=[
            {
                "method": "PUT",
                "url": MEMBER,
                "headers": {"Authorization": AUTH, "Content-Type": "application/json"},
                "json": {
                    "email_address": "Ada@Example.com",
                    "status_if_new": "pending",
                    "merge_fields": {"FNAME": "Ada", "LNAME": "Lovelace"},
                    "tags": ["vip", "newsletter"],
                    "interests": {"9143cf3bd1": True},
                    "language": "en",
                },
            }
        ],
    ),
    RecordedExample(
        name="update_status_skip_validation_base_url_override",
        action="subscribe_or_update_member",
        config={**CONFIG, "base_url": "https://proxy.example.com/mc/"},
        inputs=[
            {
                "list_id": "a1b2c3d4e5",
                "email_address": "ada@example.com",
                "status_if_new": "subscribed",
                "status": "subscribed",
                "tags": "vip, newsletter",
                "vip": True,
                "skip_merge_validation": True,
            }
        ],
        expected=[
            {
                "method": "PUT",
                "url": f"https://proxy.example.com/mc/3.0/lists/a1b2c3d4e5/members/{ADA}"
                "?skip_merge_validation=true",
                "json": {
                    "email_address": "ada@example.com",
                    "status_if_new": "subscribed",
                    "status": "subscribed",
                    "tags": ["vip", "newsletter"],
                    "vip": True,
                },
            }
        ],
    ),
    RecordedExample(
        name="unsubscribe_patch",
        action="unsubscribe",
        config=CONFIG,
        inputs=[{"list_id": "a1b2c3d4e5", "email_address": "ADA@example.com"}],
        expected=[
            {
                "method": "PATCH",
                "url": MEMBER,
                "headers": {"Authorization": AUTH},
                "json": {"status": "unsubscribed"},
            }
        ],
    ),
    RecordedExample(
        name="unsubscribe_recording_unknown_addresses",
        action="unsubscribe",
        config=CONFIG,
        inputs=[
            {"list_id": "a1b2c3d4e5", "email_address": "ada@example.com", "add_if_missing": True}
        ],
        expected=[
            {
                "method": "PUT",
                "url": MEMBER,
                "json": {
                    "email_address": "ada@example.com",
                    "status_if_new": "unsubscribed",
                    "status": "unsubscribed",
                },
            }
        ],
    ),
]


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_recorded_example(example: RecordedExample) -> None:
    check_example(CONNECTOR, example)


def test_subscriber_hash_is_md5_of_the_lowercased_address() -> None:
    # The address and hash of Mailchimp's own subscriber-hash example.
    assert subscriber_hash("Urist.McVankab@freddiesjokes.com") == "62eeb292278cc15f5817cb78f7790b08"


@pytest.mark.parametrize(
    ("config", "url"),
    [
        ({"api_key": "abc-us6"}, "https://us6.api.mailchimp.com"),
        ({"api_key": "abc-US21"}, "https://us21.api.mailchimp.com"),
        ({"api_key": "abc"}, "https://us1.api.mailchimp.com"),
        ({"api_key": "abc-evil.example.com/x"}, "https://us1.api.mailchimp.com"),
        ({"api_key": "abc-us6", "base_url": "http://127.0.0.1:9/"}, "http://127.0.0.1:9"),
    ],
    ids=["us6", "upper-case", "legacy-key", "not-a-data-center", "override"],
)
def test_data_center_comes_from_the_key(config: dict[str, Any], url: str) -> None:
    assert base_url(config) == url


def build(action: str, params: dict[str, Any], config: dict[str, Any] | None = None) -> Any:
    action_type = CONNECTOR.action(action)
    assert action_type is not None
    ctx = make_context(CONNECTOR, action, CONFIG if config is None else config)
    return action_type.build(ctx, make_inputs(action, [params]))


GOOD = {"list_id": "a1b2c3d4e5", "email_address": "ada@example.com"}


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({**GOOD, "email_address": "ada.example.com"}, "email_address"),
        ({**GOOD, "list_id": "../../lists"}, "list_id"),
        ({**GOOD, "status_if_new": "cleaned"}, "status_if_new"),
        ({**GOOD, "status": "gone"}, "status"),
        ({**GOOD, "tags": {"a": 1}}, "tags"),
        ({**GOOD, "tags": ["x" * 101]}, "tags"),
    ],
    ids=["bad-email", "path-in-list-id", "status-if-new", "status", "tags-object", "long-tag"],
)
def test_bad_values_are_mapping_errors(params: dict[str, Any], parameter: str) -> None:
    with pytest.raises(MappingError) as info:
        build("subscribe_or_update_member", params)
    assert info.value.parameter == parameter


def test_no_api_key_is_an_auth_error() -> None:
    with pytest.raises(FatalDelivery) as info:
        build("unsubscribe", GOOD, {})
    assert info.value.category == "auth"


INVALID_RESOURCE = (
    '{"type":"https://mailchimp.com/developer/marketing/docs/errors/","title":"Invalid Resource",'
    '"status":400,"detail":"The resource submitted could not be validated.","instance":"ab12",'
    '"errors":[{"field":"merge_fields.FNAME","message":"This value should not be blank."}]}'
)

CASES = [
    ErrorCase(response(200, '{"id":"x","status":"subscribed"}'), None, id="200"),
    ErrorCase(
        response(400, INVALID_RESOURCE, {"Content-Type": "application/problem+json"}),
        FatalDelivery,
        "http_4xx",
        message_contains="merge_fields.FNAME: This value should not be blank.",
        id="invalid-resource-names-field",
    ),
    ErrorCase(
        response(
            400,
            '{"title":"Member In Compliance State","status":400,"detail":"x is in a '
            'compliance state due to unsubscribe, bounce, or compliance review."}',
        ),
        FatalDelivery,
        "http_4xx",
        message_contains="Member In Compliance State",
        id="compliance-state",
    ),
    ErrorCase(
        response(
            401, '{"title":"API Key Invalid","status":401,"detail":"Your API key may be invalid."}'
        ),
        FatalDelivery,
        "auth",
        message_contains="API Key Invalid",
        id="401",
    ),
    ErrorCase(
        response(403, '{"title":"User Disabled","status":403}'), FatalDelivery, "auth", id="403"
    ),
    ErrorCase(
        response(404, '{"title":"Resource Not Found","status":404}'),
        FatalDelivery,
        "http_4xx",
        message_contains="audience ID",
        id="404",
    ),
    ErrorCase(
        response(429, '{"title":"Too Many Requests","status":429}', {"Retry-After": "5"}),
        RetryableDelivery,
        "rate_limit",
        5.0,
        id="429",
    ),
    ErrorCase(
        response(500, '{"title":"Internal Server Error"}'), RetryableDelivery, "http_5xx", id="500"
    ),
    ErrorCase(response(503, "<html>down</html>"), RetryableDelivery, "http_5xx", id="503-html"),
]


@pytest.mark.parametrize("action", [a.id for a in CONNECTOR.actions])
def test_error_mapping(action: str) -> None:
    [request] = build(action, GOOD)
    check_error_mapping(CONNECTOR, action, CASES, request)
