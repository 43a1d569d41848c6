"""Slack: recorded webhook posts, Block Kit handling and the incoming-webhook error codes."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from sluice.connectors.catalog.slack import CONNECTOR, MAX_BLOCKS
from sluice.connectors.testing import (
    ErrorCase,
    RecordedExample,
    check_error_mapping,
    check_example,
    make_context,
    make_inputs,
    response,
)
from sluice.errors import FatalDelivery, MappingError, RetryableDelivery

HOOK = "https://hooks.slack.com/services/T000/B000/XXXX"
BLOCKS = [
    {"type": "header", "text": {"type": "plain_text", "text": "New order"}},
    {"type": "section", "text": {"type": "mrkdwn", "text": "*A-1001*: 42.50 EUR"}},
]

EXAMPLES = [
    RecordedExample(
        name="channel_message",
        action="post_channel_message",
        config={},
        inputs=[{"webhook_url": HOOK, "message": "Order A-1001 paid: 42.50 EUR"}],
        expected=[
            {
                "method": "POST",
                "url": HOOK,
                "headers": {"Content-Type": "application/json"},
                "json": {"text": "Order A-1001 paid: 42.50 EUR"},
            }
        ],
    ),
    RecordedExample(
        name="enhanced_from_template_text",
        action="post_enhanced_message",
        config={},
        inputs=[
            {"webhook_url": HOOK, "blocks": orjson.dumps(BLOCKS).decode(), "text": "New order"}
        ],
        expected=[{"method": "POST", "url": HOOK, "json": {"blocks": BLOCKS, "text": "New order"}}],
    ),
    RecordedExample(
        name="enhanced_block_kit_builder_payload",
        action="post_enhanced_message",
        config={},
        inputs=[{"webhook_url": HOOK, "blocks": {"blocks": BLOCKS}}],
        expected=[{"method": "POST", "url": HOOK, "json": {"blocks": BLOCKS}}],
    ),
]


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_recorded_example(example: RecordedExample) -> None:
    check_example(CONNECTOR, example)


def build(action: str, params: dict[str, Any]) -> Any:
    action_type = CONNECTOR.action(action)
    assert action_type is not None
    return action_type.build(make_context(CONNECTOR, action, {}), make_inputs(action, [params]))


@pytest.mark.parametrize(
    ("action", "params", "parameter"),
    [
        ("post_channel_message", {"webhook_url": HOOK, "message": "  "}, "message"),
        ("post_channel_message", {"webhook_url": HOOK, "message": {"a": 1}}, "message"),
        (
            "post_channel_message",
            {"webhook_url": "hooks.slack.com/x", "message": "hi"},
            "webhook_url",
        ),
        ("post_enhanced_message", {"webhook_url": HOOK, "blocks": "[{"}, "blocks"),
        ("post_enhanced_message", {"webhook_url": HOOK, "blocks": '"text"'}, "blocks"),
        ("post_enhanced_message", {"webhook_url": HOOK, "blocks": ["text"]}, "blocks"),
        ("post_enhanced_message", {"webhook_url": HOOK, "blocks": []}, "blocks"),
        (
            "post_enhanced_message",
            {"webhook_url": HOOK, "blocks": [{}] * (MAX_BLOCKS + 1)},
            "blocks",
        ),
    ],
    ids=[
        "blank-message",
        "object-message",
        "relative-url",
        "bad-json",
        "json-string",
        "not-objects",
        "empty",
        "too-many",
    ],
)
def test_bad_parameters_are_mapping_errors(
    action: str, params: dict[str, Any], parameter: str
) -> None:
    with pytest.raises(MappingError) as info:
        build(action, params)
    assert info.value.parameter == parameter


def test_messages_are_not_retried_after_a_timeout() -> None:
    # A second attempt after a timeout could post the message twice.
    assert not any(action.idempotent for action in CONNECTOR.actions)


def test_consent_category_is_monitoring() -> None:
    assert all(action.consent_categories == ("monitoring",) for action in CONNECTOR.actions)


CASES = [
    ErrorCase(response(200, "ok"), None, id="ok"),
    ErrorCase(
        response(400, "invalid_payload"),
        FatalDelivery,
        "http_4xx",
        message_contains="invalid_payload",
        id="invalid_payload",
    ),
    ErrorCase(response(400, "no_text"), FatalDelivery, "http_4xx", id="no_text"),
    ErrorCase(response(400, "invalid_blocks"), FatalDelivery, "http_4xx", id="invalid_blocks"),
    ErrorCase(
        response(403, "action_prohibited"),
        FatalDelivery,
        "auth",
        message_contains="restricted",
        id="action_prohibited",
    ),
    ErrorCase(response(403, "invalid_token"), FatalDelivery, "auth", id="invalid_token"),
    ErrorCase(
        response(404, "no_service"),
        FatalDelivery,
        "auth",
        message_contains="removed",
        id="no_service",
    ),
    ErrorCase(
        response(404, "channel_not_found"),
        FatalDelivery,
        "http_4xx",
        message_contains="channel",
        id="channel_not_found",
    ),
    ErrorCase(
        response(410, "channel_is_archived"),
        FatalDelivery,
        "http_4xx",
        message_contains="archived",
        id="channel_is_archived",
    ),
    ErrorCase(response(500, "rollup_error"), RetryableDelivery, "http_5xx", id="rollup_error"),
    ErrorCase(
        response(429, "rate_limited", {"Retry-After": "12"}),
        RetryableDelivery,
        "rate_limit",
        12.0,
        id="rate_limited",
    ),
    ErrorCase(response(502, "<html>bad gateway</html>"), RetryableDelivery, "http_5xx", id="502"),
    ErrorCase(
        response(418, "teapot"),
        FatalDelivery,
        "http_4xx",
        message_contains="teapot",
        id="unknown-4xx",
    ),
]


@pytest.mark.parametrize("action", [a.id for a in CONNECTOR.actions])
def test_error_mapping(action: str) -> None:
    check_error_mapping(CONNECTOR, action, CASES)
