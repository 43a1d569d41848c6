"""The conformance kit finds what is wrong with a connector type, and says so."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import pytest

from sluice.connectors.definition import (
    ActionInput,
    Batching,
    BuildContext,
    BuildFn,
    ConnectorType,
    HttpRequest,
    HttpResponse,
    Outcome,
)
from sluice.connectors.testing import (
    ErrorCase,
    RecordedExample,
    check_definition,
    check_error_mapping,
    check_example,
    response,
    sample_config,
    sample_params,
)
from sluice.errors import FatalDelivery, RetryableDelivery
from tests.connectors import plugin_example

PLUGIN = plugin_example.CONNECTOR
ACTION = PLUGIN.actions[0]


def with_build(build: BuildFn, **changes: Any) -> ConnectorType:
    action = dataclasses.replace(ACTION, build=build, **changes)
    return dataclasses.replace(PLUGIN, actions=(action,))


def one(request: HttpRequest) -> BuildFn:
    return lambda ctx, inputs: [request]


def test_the_example_plugin_conforms() -> None:
    check_definition(PLUGIN)


def crash(ctx: BuildContext, inputs: Sequence[ActionInput]) -> list[HttpRequest]:
    raise KeyError("event_name")


def one_each(ctx: BuildContext, inputs: Sequence[ActionInput]) -> list[HttpRequest]:
    return [HttpRequest("POST", "https://x.example", items=(i,)) for i in range(len(inputs))]


def needs_optional_config(ctx: BuildContext, inputs: Sequence[ActionInput]) -> list[HttpRequest]:
    return [HttpRequest("POST", f"https://x.example/{ctx.config['max_attempts']}")]


def never_retry(request: HttpRequest, response: HttpResponse) -> Outcome:
    return FatalDelivery("http_4xx", "no")


BROKEN = {
    "invalid": (dataclasses.replace(PLUGIN, id="Echo"), "snake_case"),
    "crash": (with_build(crash), "build failed on a sample event: KeyError"),
    "relative-url": (with_build(one(HttpRequest("POST", "/v1/track"))), "absolute http(s)"),
    "lower-method": (with_build(one(HttpRequest("post", "https://x.example"))), "upper-case"),
    "str-body": (with_build(one(HttpRequest("POST", "https://x.example", body="{}"))), "bytes"),  # type: ignore[arg-type]
    "bad-header": (
        with_build(one(HttpRequest("POST", "https://x.example", {"X-A": "1\n2"}))),
        "line breaks",
    ),
    "items": (with_build(one(HttpRequest("POST", "https://x.example", items=(1,)))), "items"),
    "no-requests": (with_build(lambda ctx, inputs: []), "non-empty list"),
    "one-by-one": (
        with_build(one_each, batching=Batching(10, 10_000, 5)),
        "sent 3 sample events one by one",
    ),
    "missing-default": (with_build(needs_optional_config), "KeyError: 'max_attempts'"),
    "no-consent": (with_build(one_each, consent_categories=()), "consent_categories is empty"),
    "no-retry-429": (with_build(one_each, classify=never_retry), "must retry an HTTP 429"),
    "no-group": (
        with_build(one_each, parameters=(dataclasses.replace(ACTION.parameters[0], group=None),)),
        "has no group",
    ),
    "no-what-you-need": (dataclasses.replace(PLUGIN, what_you_need=()), "what_you_need"),
}


@pytest.mark.parametrize(("ct", "words"), BROKEN.values(), ids=BROKEN.keys())
def test_check_definition_names_the_problem(ct: ConnectorType, words: str) -> None:
    with pytest.raises(AssertionError, match="problems") as info:
        check_definition(ct)
    assert words in str(info.value)


def test_samples_override_made_up_values() -> None:
    assert sample_params(ACTION, {"track_event.event_name": "Order"}) == {"event_name": "Order"}
    assert sample_params(ACTION, {"event_name": "Order"}) == {"event_name": "Order"}
    assert sample_config(PLUGIN, minimal=True) == {"api_key": "sample-api_key"}
    assert sample_config(PLUGIN)["base_url"] == "https://api.echo.example"


EXAMPLE = RecordedExample(
    action="track_event",
    config={"api_key": "key-1234", "base_url": "https://eu.echo.example"},
    inputs=[{"event_name": "Order Completed"}],
    data=[{"order_id": "A-1"}],
    expected=[
        {
            "method": "POST",
            "url": "https://eu.echo.example/v1/track",
            "headers": {"x-api-key": "key-1234", "Idempotency-Key": "evt_1:track_event"},
            "json": {"event": "Order Completed", "properties": {"order_id": "A-1"}},
            "items": [0],
        }
    ],
)


def test_check_example_passes_and_returns_the_requests() -> None:
    [request] = check_example(PLUGIN, EXAMPLE)
    assert request.sensitive_headers == frozenset({"x-api-key"})


def test_check_example_lists_every_difference() -> None:
    wrong = dataclasses.replace(
        EXAMPLE,
        name="wrong",
        expected=[
            {
                "method": "PUT",
                "url": "https://api.echo.example/v1/track",
                "headers": {"X-Api-Key": "other"},
                "json": {"event": "x"},
                "body": "x",
                "items": [1],
            }
        ],
    )
    with pytest.raises(AssertionError) as info:
        check_example(PLUGIN, wrong)
    message = str(info.value)
    assert message.startswith("echo_analytics.track_event [wrong]")
    for words in ("method", "url", "header X-Api-Key", "JSON body", "body", "items"):
        assert words in message


def test_check_example_counts_requests() -> None:
    with pytest.raises(AssertionError, match="1 requests built, 2 expected"):
        check_example(PLUGIN, dataclasses.replace(EXAMPLE, expected=[*EXAMPLE.expected] * 2))


def test_check_example_unknown_action() -> None:
    with pytest.raises(AssertionError, match="no action type 'nope'"):
        check_example(PLUGIN, dataclasses.replace(EXAMPLE, action="nope"))


def test_check_error_mapping_reports_mismatches() -> None:
    cases = [
        ErrorCase(response(200), None, id="fine"),
        ErrorCase(response(500), None, id="not-delivered"),
        ErrorCase(response(404), RetryableDelivery, id="wrong-class"),
        ErrorCase(response(429, headers={"Retry-After": "3"}), RetryableDelivery, "http_5xx", 4.0),
        ErrorCase(response(400, "bad"), FatalDelivery, message_contains="worse", id="message"),
    ]
    with pytest.raises(AssertionError) as info:
        check_error_mapping(PLUGIN, "track_event", cases)
    message = str(info.value)
    assert "fine" not in message
    assert "case not-delivered (HTTP 500): expected delivered" in message
    assert "case wrong-class (HTTP 404): expected RetryableDelivery" in message
    assert "category 'rate_limit' != 'http_5xx'" in message
    assert "retry_after 3.0 != 4.0" in message
    assert "lacks 'worse'" in message


def test_check_error_mapping_checks_each_outcome_of_a_batch() -> None:
    def per_item(request: HttpRequest, response: HttpResponse) -> list[Outcome]:
        return [None, FatalDelivery("http_4xx", "rejected")]

    ct = with_build(one_each, classify=per_item)
    with pytest.raises(AssertionError, match="expected delivered"):
        check_error_mapping(ct, "track_event", [ErrorCase(response(200), None)])
