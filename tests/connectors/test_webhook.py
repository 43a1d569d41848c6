"""Webhook (SPEC §8): recorded requests, parameter handling and error mapping."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from sluice.connectors.catalog.webhook import CONNECTOR
from sluice.connectors.helpers import with_query
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

EVENT = {"event_id": "e-1", "tealium_event": "purchase", "order_id": "A-1001", "total": 42.5}

EXAMPLES = [
    RecordedExample(
        name="post_basic_auth",
        action="send_custom_request",
        config={"auth_type": "basic", "username": "ada", "password": "s3cret-pw"},
        inputs=[
            {
                "method": "post",
                "url": "https://hooks.example.com/in?src=web&x=1",
                "url_params": {"x": "2", "q": "a b&c"},
                "headers": {"X-Source": "sluice"},
                "body": '{"order": "A-1001"}',
            }
        ],
        expected=[
            {
                "method": "POST",
                "url": "https://hooks.example.com/in?src=web&x=2&q=a+b%26c",
                "headers": {
                    "Authorization": "Basic YWRhOnMzY3JldC1wdw==",
                    "Content-Type": "application/json",
                    "Idempotency-Key": "evt_1:send_custom_request",
                    "X-Source": "sluice",
                },
                "json": {"order": "A-1001"},
                "items": (0,),
            }
        ],
    ),
    RecordedExample(
        name="form_body_bearer",
        action="send_custom_request",
        config={"auth_type": "bearer", "token": "tok-123456"},
        inputs=[
            {
                "method": "PUT",
                "url": "https://api.example.com/orders/A-1001",
                "body_content_type": "application/x-www-form-urlencoded",
                "body": "status=shipped",
            }
        ],
        expected=[
            {
                "method": "PUT",
                "url": "https://api.example.com/orders/A-1001",
                "headers": {
                    "authorization": "Bearer tok-123456",
                    "content-type": "application/x-www-form-urlencoded",
                },
                "body": "status=shipped",
            }
        ],
    ),
    RecordedExample(
        name="whole_event",
        action="send_event_data",
        config={},
        inputs=[{"url": "https://collector.example.com/events"}],
        data=[EVENT],
        expected=[
            {
                "method": "POST",
                "url": "https://collector.example.com/events",
                "headers": {
                    "Content-Type": "application/json",
                    "Idempotency-Key": "evt_1:send_event_data",
                },
                "json": EVENT,
            }
        ],
    ),
    RecordedExample(
        name="batch",
        action="send_batched_data",
        config={"auth_type": "bearer", "token": "tok-123456"},
        inputs=[{"url": "https://bulk.example.com/in"}] * 3,
        data=[{"n": 1}, {"n": 2}, {"n": 3}],
        expected=[
            {
                "method": "POST",
                "url": "https://bulk.example.com/in",
                "headers": {"Authorization": "Bearer tok-123456"},
                "json": {"events": [{"n": 1}, {"n": 2}, {"n": 3}]},
                "items": (0, 1, 2),
            }
        ],
    ),
    RecordedExample(
        name="batch_split_by_url_and_size",
        action="send_batched_data",
        config={},
        inputs=[
            {"url": "https://a.example.com/in", "max_batch_size": 2},
            {"url": "https://b.example.com/in"},
            {"url": "https://a.example.com/in", "max_batch_size": 2},
            {"url": "https://a.example.com/in", "max_batch_size": 2},
        ],
        data=[{"n": 0}, {"n": 1}, {"n": 2}, {"n": 3}],
        expected=[
            {"url": "https://a.example.com/in", "json": {"events": [{"n": 0}, {"n": 2}]}},
            {"url": "https://a.example.com/in", "json": {"events": [{"n": 3}]}, "items": (3,)},
            {"url": "https://b.example.com/in", "json": {"events": [{"n": 1}]}, "items": (1,)},
        ],
    ),
]


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_recorded_example(example: RecordedExample) -> None:
    check_example(CONNECTOR, example)


def build(action: str, params: dict[str, Any], config: dict[str, Any] | None = None) -> Any:
    action_type = CONNECTOR.action(action)
    assert action_type is not None
    ctx = make_context(CONNECTOR, action, config or {})
    return action_type.build(ctx, make_inputs(action, [params]))


def test_get_without_body_sends_no_content_type() -> None:
    [request] = build("send_custom_request", {"method": "GET", "url": "https://x.example/a"})
    assert request.body is None
    assert "Content-Type" not in request.headers
    assert request.sensitive_headers == frozenset()


def test_configured_credentials_win_over_a_users_authorization_header() -> None:
    params = {"method": "POST", "url": "https://x.example/a", "headers": {"authorization": "x"}}
    [request] = build("send_custom_request", params, {"auth_type": "bearer", "token": "tok-1"})
    assert request.headers["Authorization"] == "Bearer tok-1"
    assert "authorization" not in request.headers
    assert request.sensitive_headers == frozenset({"authorization"})


def test_users_content_type_header_wins_over_body_content_type() -> None:
    params = {
        "method": "POST",
        "url": "https://x.example",
        "body": "x",
        "headers": {"content-type": "text/csv"},
    }
    [request] = build("send_custom_request", params)
    assert request.headers == {
        "Idempotency-Key": "evt_1:send_custom_request",
        "content-type": "text/csv",
    }


def test_structured_body_is_sent_as_json() -> None:
    [request] = build(
        "send_custom_request", {"method": "POST", "url": "https://x.example", "body": {"a": [1]}}
    )
    assert orjson.loads(request.body) == {"a": [1]}


@pytest.mark.parametrize(
    ("url", "params", "expected"),
    [
        ("https://x.example/p", {"a": "1"}, "https://x.example/p?a=1"),
        ("https://x.example/p?a=0&b=%20x#top", {"a": 1}, "https://x.example/p?b=%20x&a=1#top"),
        (
            "https://x.example/p",
            {"tag": ["x", "y z"], "skip": None},
            "https://x.example/p?tag=x&tag=y+z",
        ),
        ("https://x.example/p", {"ok": True, "n": 1.5}, "https://x.example/p?ok=true&n=1.5"),
        ("https://x.example/p", {"é": "ü/?"}, "https://x.example/p?%C3%A9=%C3%BC%2F%3F"),
        ("https://x.example/p?a=1", {}, "https://x.example/p?a=1"),
    ],
    ids=["add", "replace-keeps-encoding", "list-and-null", "scalars", "unicode", "none"],
)
def test_url_params_are_encoded_and_merged(url: str, params: dict[str, Any], expected: str) -> None:
    assert with_query(url, params) == expected


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"method": "TRACE", "url": "https://x.example"}, "method"),
        ({"method": "POST"}, "url"),
        ({"method": "POST", "url": "ftp://x.example"}, "url"),
        ({"method": "POST", "url": "/relative"}, "url"),
        (
            {"method": "POST", "url": "https://x.example", "headers": {"X-A": "1\r\nX-B: 2"}},
            "headers",
        ),
        ({"method": "POST", "url": "https://x.example", "headers": {"bad name": "1"}}, "headers"),
        ({"method": "POST", "url": "https://x.example", "headers": "X-A: 1"}, "headers"),
        ({"method": "POST", "url": "https://x.example", "url_params": ["a"]}, "url_params"),
    ],
    ids=[
        "method",
        "no-url",
        "ftp-url",
        "relative-url",
        "header-injection",
        "header-name",
        "headers-not-map",
        "params-not-map",
    ],
)
def test_bad_parameters_are_mapping_errors(params: dict[str, Any], parameter: str) -> None:
    with pytest.raises(MappingError) as info:
        build("send_custom_request", params)
    assert info.value.parameter == parameter


@pytest.mark.parametrize("size", [0, 1001, "many", True])
def test_batch_size_out_of_range_is_a_mapping_error(size: object) -> None:
    with pytest.raises(MappingError, match="max_batch_size"):
        build("send_batched_data", {"url": "https://x.example", "max_batch_size": size})


@pytest.mark.parametrize(
    "config",
    [
        {"auth_type": "basic"},
        {"auth_type": "bearer", "token": ""},
        {"auth_type": "bearer", "token": "abc\r\nX-Evil: 1"},
        {"auth_type": "digest"},
    ],
    ids=["basic-no-username", "bearer-no-token", "bearer-line-break", "unknown"],
)
def test_incomplete_credentials_are_fatal_auth_errors(config: dict[str, Any]) -> None:
    for action in ("send_custom_request", "send_event_data", "send_batched_data"):
        with pytest.raises(FatalDelivery) as info:
            build(action, {"method": "POST", "url": "https://x.example"}, config)
        assert info.value.category == "auth"


CASES = [
    ErrorCase(response(200, "ok"), None, id="200"),
    ErrorCase(response(204), None, id="204"),
    ErrorCase(response(401, "nope"), FatalDelivery, "auth", id="401"),
    ErrorCase(response(403), FatalDelivery, "auth", id="403"),
    ErrorCase(response(404), FatalDelivery, "http_4xx", id="404"),
    ErrorCase(response(408), RetryableDelivery, "http_4xx", id="408"),
    ErrorCase(
        response(429, headers={"Retry-After": "30"}),
        RetryableDelivery,
        "rate_limit",
        30.0,
        id="429",
    ),
    ErrorCase(
        response(500, "boom"), RetryableDelivery, "http_5xx", message_contains="boom", id="500"
    ),
    ErrorCase(response(501), FatalDelivery, "http_5xx", id="501"),
    ErrorCase(
        response(503, headers={"Retry-After": "5"}), RetryableDelivery, "http_5xx", 5.0, id="503"
    ),
]


@pytest.mark.parametrize("action", [a.id for a in CONNECTOR.actions])
def test_error_mapping_follows_the_default(action: str) -> None:
    check_error_mapping(CONNECTOR, action, CASES)


def test_actions_take_consent_from_the_user() -> None:
    assert all(a.user_consent and a.consent_categories == () for a in CONNECTOR.actions)
