"""Amazon SQS: recorded requests, SigV4 signatures, limits, per-entry outcomes and errors.

``sigv4_problems`` checks a signature independently of botocore, from the AWS spec; the
Kinesis and contract tests use it too.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import re
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest

from sluice.connectors.aws import AwsRequest
from sluice.connectors.catalog.amazon_sqs import CONNECTOR
from sluice.connectors.definition import DELIVERY_FIELDS, ActionInput, HttpRequest
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

KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
QUEUE = "https://sqs.eu-west-1.amazonaws.com/123456789012/orders"
FIFO_QUEUE = "https://sqs.eu-west-1.amazonaws.com/123456789012/orders.fifo"
CONFIG = {
    "region": "eu-west-1",
    "access_key_id": KEY_ID,
    "secret_access_key": SECRET,
    "queue_url": QUEUE,
}
JSON_1_0 = "application/x-amz-json-1.0"
_AUTH = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/"
    r"(?P<service>[^/]+)/aws4_request, ?SignedHeaders=(?P<signed>[a-z0-9;-]+), ?"
    r"Signature=(?P<signature>[0-9a-f]{64})$"
)


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def sigv4_problems(
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    service: str,
    region: str,
    secret: str = SECRET,
    key_id: str = KEY_ID,
    token: str | None = None,
) -> list[str]:
    """What is wrong with a request's Signature Version 4, per AWS's spec (not botocore)."""
    headers = {name.lower(): value for name, value in headers.items()}
    match = _AUTH.match(headers.get("authorization", ""))
    if not match:
        return [f"Authorization is not a SigV4 header: {headers.get('authorization')!r}"]
    problems = []
    if (match["key"], match["region"], match["service"]) != (key_id, region, service):
        problems.append(f"credential scope {match.group(0)[:90]!r} is not {key_id}/{region}")
    amz_date = headers.get("x-amz-date", "")
    try:
        signed_at = calendar.timegm(time.strptime(amz_date, "%Y%m%dT%H%M%SZ"))
    except ValueError:
        return [*problems, f"X-Amz-Date {amz_date!r} is not YYYYMMDDTHHMMSSZ"]
    if abs(signed_at - time.time()) > 300 or not amz_date.startswith(match["date"]):
        problems.append(f"X-Amz-Date {amz_date} is not now or not the scope's date")
    signed = match["signed"].split(";")
    wanted = {"host", "x-amz-date", "x-amz-target", "content-type"}
    if token is not None:
        wanted.add("x-amz-security-token")
        if headers.get("x-amz-security-token") != token:
            problems.append("X-Amz-Security-Token is not the session token")
    if not wanted <= set(signed) or signed != sorted(signed):
        problems.append(f"SignedHeaders {match['signed']!r} must sort and cover {sorted(wanted)}")
    canonical_headers = "".join(
        f"{name}:{' '.join(headers.get(name, '').split())}\n" for name in signed
    )
    canonical = "\n".join(
        [
            method,
            path or "/",
            "",
            canonical_headers,
            match["signed"],
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{match['date']}/{region}/{service}/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = _hmac(f"AWS4{secret}".encode(), match["date"])
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    if not hmac.compare_digest(
        hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest(), match["signature"]
    ):
        problems.append("the signature does not match the request")
    return problems


def request_problems(request: HttpRequest, **kwargs: Any) -> list[str]:
    """``sigv4_problems`` for a built request, with the Host the HTTP client will send."""
    parts = urlsplit(request.url)
    headers = {**request.headers, "Host": parts.netloc}
    return sigv4_problems(request.method, parts.path, headers, request.body or b"", **kwargs)


def test_definition_conforms() -> None:
    check_definition(CONNECTOR)


def test_importing_the_connector_does_not_import_botocore() -> None:
    code = (
        "import sys; import sluice.connectors.catalog.amazon_sqs, "
        "sluice.connectors.catalog.amazon_kinesis; print('botocore' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def _body(event: Mapping[str, Any]) -> str:
    return orjson.dumps(dict(event)).decode()


EVENT = {**SAMPLE_EVENT, "event_id": "evt_1"}
EXAMPLES = [
    RecordedExample(
        name="whole_event_standard_queue",
        action="send_message",
        config=CONFIG,
        inputs=[{}],
        data=[EVENT],
        expected=[
            {
                "method": "POST",
                "url": "https://sqs.eu-west-1.amazonaws.com/",
                "headers": {"Content-Type": JSON_1_0, "X-Amz-Target": "AmazonSQS.SendMessage"},
                "json": {"QueueUrl": QUEUE, "MessageBody": _body(EVENT)},
                "items": (0,),
            }
        ],
    ),
    RecordedExample(
        name="template_body_with_attributes",
        action="send_message",
        config={**CONFIG, "base_url": "http://localhost:4566", "session_token": "FwoGZXIvYXdz"},
        inputs=[
            {
                "message_body": "Order A-1001 shipped",
                "message_attributes": {"order_total": 42.5, "source": "web", "vip": True},
                "delay_seconds": 30,
            }
        ],
        expected=[
            {
                "method": "POST",
                "url": "http://localhost:4566/",
                "headers": {"X-Amz-Security-Token": "FwoGZXIvYXdz"},
                "json": {
                    "QueueUrl": QUEUE,
                    "MessageBody": "Order A-1001 shipped",
                    "MessageAttributes": {
                        "order_total": {"DataType": "Number", "StringValue": "42.5"},
                        "source": {"DataType": "String", "StringValue": "web"},
                        "vip": {"DataType": "String", "StringValue": "true"},
                    },
                    "DelaySeconds": 30,
                },
            }
        ],
    ),
    RecordedExample(
        name="fifo_batch",
        action="send_message",
        config={**CONFIG, "queue_url": FIFO_QUEUE},
        inputs=[
            {"message_body": "one"},
            {"message_body": "two", "message_group_id": "order-A-1001"},
            {"message_body": "three"},
        ],
        data=[{"tealium_visitor_id": "v-1"}, {}, {"visitor_id": "v-3"}],
        expected=[
            {
                "method": "POST",
                "url": "https://sqs.eu-west-1.amazonaws.com/",
                "headers": {"X-Amz-Target": "AmazonSQS.SendMessageBatch"},
                "json": {
                    "QueueUrl": FIFO_QUEUE,
                    "Entries": [
                        {
                            "Id": "0",
                            "MessageBody": "one",
                            "MessageGroupId": "v-1",
                            "MessageDeduplicationId": "evt_1:send_message",
                        },
                        {
                            "Id": "1",
                            "MessageBody": "two",
                            "MessageGroupId": "order-A-1001",
                            "MessageDeduplicationId": "evt_2:send_message",
                        },
                        {
                            "Id": "2",
                            "MessageBody": "three",
                            "MessageGroupId": "v-3",
                            "MessageDeduplicationId": "evt_3:send_message",
                        },
                    ],
                },
                "items": (0, 1, 2),
            }
        ],
    ),
    RecordedExample(
        name="china_region",
        action="send_message",
        config={**CONFIG, "region": "cn-north-1"},
        inputs=[{"message_body": "hi"}],
        expected=[{"method": "POST", "url": "https://sqs.cn-north-1.amazonaws.com.cn/"}],
    ),
]


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_recorded_example(example: RecordedExample) -> None:
    [request] = check_example(CONNECTOR, example)
    token = example.config.get("session_token")
    region = str(example.config["region"])
    assert request_problems(request, service="sqs", region=region, token=token) == []
    sensitive = {"authorization", "x-amz-security-token"}
    assert request.sensitive_headers == sensitive


def build(params: list[dict[str, Any]], config: dict[str, Any] | None = None) -> Any:
    ctx = make_context(CONNECTOR, "send_message", CONFIG if config is None else config)
    return CONNECTOR.actions[0].build(ctx, make_inputs("send_message", params))


def test_a_forged_signature_is_caught() -> None:
    [request] = build([{"message_body": "hi"}])
    assert request_problems(request, service="sqs", region="eu-west-1", secret="other") != []
    request.body = b'{"QueueUrl": "elsewhere"}'
    assert request_problems(request, service="sqs", region="eu-west-1") != []


def test_batches_hold_10_messages_and_256_kib() -> None:
    requests = build([{"message_body": "m"}] * 23)
    assert [len(r.items) for r in requests] == [10, 10, 3]
    big = "x" * 100_000
    requests = build([{"message_body": big}] * 5)
    assert [len(r.items) for r in requests] == [2, 2, 1]
    assert requests[2].headers["X-Amz-Target"] == "AmazonSQS.SendMessage"


def test_a_message_up_to_1_mib_goes_alone() -> None:
    requests = build([{"message_body": "m"}, {"message_body": "x" * 500_000}])
    assert [r.items for r in requests] == [(0,), (1,)]


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"message_body": "x" * 1_048_577}, "message_body"),
        ({"message_body": "bell \x07"}, "message_body"),
        ({"message_attributes": {f"a{i}": i for i in range(11)}}, "message_attributes"),
        ({"message_attributes": {"AWS.trace": "x"}}, "message_attributes"),
        ({"message_attributes": {"a..b": "x"}}, "message_attributes"),
        ({"message_attributes": {"has space": "x"}}, "message_attributes"),
        ({"delay_seconds": 901}, "delay_seconds"),
        ({"message_group_id": "with space"}, "message_group_id"),
    ],
    ids=[
        "over-1-mib",
        "control-character",
        "11-attributes",
        "reserved-attribute-name",
        "double-period",
        "space-in-name",
        "delay-over-900",
        "bad-group-id",
    ],
)
def test_bad_values_are_mapping_errors(params: dict[str, Any], parameter: str) -> None:
    with pytest.raises(MappingError) as info:
        build([params])
    assert info.value.parameter == parameter


def test_fifo_queues_take_no_delay_per_message() -> None:
    with pytest.raises(MappingError) as info:
        build([{"delay_seconds": 5}], {**CONFIG, "queue_url": FIFO_QUEUE})
    assert info.value.parameter == "delay_seconds"


def test_blank_attributes_are_left_out() -> None:
    [request] = build([{"message_attributes": {"a": "", "b": None, "c": "x"}}])
    assert orjson.loads(request.body)["MessageAttributes"] == {
        "c": {"DataType": "String", "StringValue": "x"}
    }


def test_a_long_idempotency_key_is_hashed_into_the_deduplication_id() -> None:
    key = "k" * 200
    inputs = [ActionInput({"message_body": "hi"}, {}, "e-1", key)]
    ctx = make_context(CONNECTOR, "send_message", {**CONFIG, "queue_url": FIFO_QUEUE})
    [request] = CONNECTOR.actions[0].build(ctx, inputs)
    body = orjson.loads(request.body)
    assert body["MessageDeduplicationId"] == hashlib.sha256(key.encode()).hexdigest()
    assert body["MessageGroupId"] == "e-1"  # no visitor: the event is its own group


@pytest.mark.parametrize(
    ("config", "category"),
    [
        ({**CONFIG, "secret_access_key": ""}, "auth"),
        ({**CONFIG, "access_key_id": None}, "auth"),
        ({**CONFIG, "region": "Ireland"}, "auth"),
        ({**CONFIG, "queue_url": ""}, "mapping"),
    ],
    ids=["no-secret", "no-key-id", "bad-region", "no-queue"],
)
def test_configuration_problems_are_fatal(config: dict[str, Any], category: str) -> None:
    with pytest.raises(FatalDelivery) as info:
        build([{}], config)
    assert info.value.category == category


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def test_batch_answers_become_per_message_outcomes() -> None:
    request = build([{"message_body": f"m{i}"} for i in range(5)])[0]
    answer = {
        "Successful": [
            {"Id": "0", "MessageId": "a", "MD5OfMessageBody": _md5("m0")},
            {"Id": "3", "MessageId": "d", "MD5OfMessageBody": _md5("changed")},
        ],
        "Failed": [
            {
                "Id": "1",
                "SenderFault": True,
                "Code": "InvalidParameterValue",
                "Message": "Value x for parameter MessageGroupId is invalid.",
            },
            {"Id": "2", "SenderFault": False, "Code": "InternalError"},
        ],
    }
    outcomes = CONNECTOR.actions[0].classify(request, response(200, orjson.dumps(answer)))
    assert isinstance(outcomes, list)
    ok, refused, failed, corrupted, unreported = outcomes
    assert ok is None
    assert isinstance(refused, FatalDelivery)
    assert refused.category == "http_4xx"
    assert "MessageGroupId" in refused.message
    assert isinstance(failed, RetryableDelivery)
    assert isinstance(corrupted, RetryableDelivery)
    assert "MD5" in corrupted.message
    assert isinstance(unreported, RetryableDelivery)


def test_a_throttled_entry_is_a_rate_limit() -> None:
    request = build([{"message_body": "a"}, {"message_body": "b"}])[0]
    answer = {
        "Successful": [{"Id": "0", "MessageId": "a", "MD5OfMessageBody": _md5("a")}],
        "Failed": [{"Id": "1", "SenderFault": False, "Code": "RequestThrottled"}],
    }
    ok, throttled = CONNECTOR.actions[0].classify(request, response(200, orjson.dumps(answer)))
    assert ok is None
    assert isinstance(throttled, RetryableDelivery)
    assert throttled.category == "rate_limit"


def test_an_invalid_message_in_a_batch_fails_alone() -> None:
    [request] = build([{"message_body": "ok"}, {"delay_seconds": -1}, {"message_body": "ok2"}])
    assert isinstance(request, AwsRequest)
    assert [e["MessageBody"] for e in orjson.loads(request.body)["Entries"]] == ["ok", "ok2"]
    answer = {
        "Successful": [
            {"Id": "0", "MessageId": "a", "MD5OfMessageBody": _md5("ok")},
            {"Id": "2", "MessageId": "b", "MD5OfMessageBody": _md5("ok2")},
        ],
        "Failed": [],
    }
    first, bad, third = CONNECTOR.actions[0].classify(request, response(200, orjson.dumps(answer)))
    assert first is None
    assert third is None
    assert isinstance(bad, FatalDelivery)
    assert bad.category == "mapping"


def _aws_error(status: int, type_: str, message: str, query: str | None = None) -> Any:
    headers = {"x-amzn-RequestId": "66916324-67ca-54bb-a410-3f567a7a0571"}
    if query:
        headers["x-amzn-query-error"] = query
    body = orjson.dumps({"__type": type_, "message": message})
    return response(status, body, headers)


ERRORS = [
    ErrorCase(
        response(
            200, orjson.dumps({"MessageId": "m-1", "MD5OfMessageBody": _md5("Order shipped")})
        ),
        None,
        id="sent",
    ),
    ErrorCase(
        response(200, orjson.dumps({"MessageId": "m-1", "MD5OfMessageBody": _md5("other")})),
        RetryableDelivery,
        "http_5xx",
        message_contains="MD5",
        id="md5-mismatch",
    ),
    ErrorCase(
        _aws_error(
            400,
            "com.amazonaws.sqs#QueueDoesNotExist",
            "The specified queue does not exist.",
            "AWS.SimpleQueueService.NonExistentQueue;Sender",
        ),
        FatalDelivery,
        "http_4xx",
        message_contains="check the queue URL",
        id="no-such-queue",
    ),
    ErrorCase(
        _aws_error(
            400, "com.amazonaws.sqs#RequestThrottled", "Rate exceeded", "RequestThrottled;Sender"
        ),
        RetryableDelivery,
        "rate_limit",
        id="throttled",
    ),
    ErrorCase(
        _aws_error(400, "com.amazon.coral.availability#ThrottlingException", "Rate exceeded"),
        RetryableDelivery,
        "rate_limit",
        id="throttling-exception",
    ),
    ErrorCase(
        _aws_error(400, "com.amazonaws.sqs#KmsThrottled", "KMS is throttling"),
        RetryableDelivery,
        "rate_limit",
        id="kms-throttled",
    ),
    ErrorCase(
        _aws_error(
            400,
            "com.amazon.coral.service#UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ),
        FatalDelivery,
        "auth",
        message_contains="UnrecognizedClientException",
        id="unknown-key",
    ),
    ErrorCase(
        _aws_error(403, "InvalidClientTokenId", "The security token is invalid."),
        FatalDelivery,
        "auth",
        id="invalid-token",
    ),
    ErrorCase(
        _aws_error(400, "com.amazon.coral.service#SignatureDoesNotMatch", "Signature mismatch"),
        FatalDelivery,
        "auth",
        message_contains="secret access key",
        id="bad-signature",
    ),
    ErrorCase(
        _aws_error(400, "com.amazon.coral.service#AccessDeniedException", "not authorized"),
        FatalDelivery,
        "auth",
        message_contains="sqs:SendMessage",
        id="access-denied",
    ),
    ErrorCase(
        _aws_error(
            400,
            "com.amazon.coral.validate#ValidationException",
            "Value -1 for parameter DelaySeconds is invalid. Reason: must be between 0 and 900.",
            "InvalidParameterValue;Sender",
        ),
        FatalDelivery,
        "http_4xx",
        message_contains="InvalidParameterValue: Value -1 for parameter DelaySeconds",
        id="invalid-parameter",
    ),
    ErrorCase(
        _aws_error(500, "com.amazon.coral.service#InternalFailure", ""),
        RetryableDelivery,
        "http_5xx",
        id="internal-failure",
    ),
    ErrorCase(
        _aws_error(503, "ServiceUnavailable", "Service is unavailable"),
        RetryableDelivery,
        "http_5xx",
        id="unavailable",
    ),
    ErrorCase(
        response(429, "", {"Retry-After": "2"}), RetryableDelivery, "rate_limit", 2.0, id="429"
    ),
    ErrorCase(response(502, "<html>bad gateway</html>"), RetryableDelivery, "http_5xx", id="502"),
    ErrorCase(response(403, ""), FatalDelivery, "auth", id="403-bare"),
    ErrorCase(
        _aws_error(403, "com.amazon.coral.service#NewKindOfDenial", "no"),
        FatalDelivery,
        "auth",
        id="403-unknown-code",
    ),
]


def test_error_mapping() -> None:
    [request] = build([{"message_body": "Order shipped"}])
    check_error_mapping(CONNECTOR, "send_message", ERRORS, request)


def test_every_field_is_documented() -> None:
    text = (
        Path(__file__).resolve().parents[2] / "docs" / "connectors" / "amazon_sqs.md"
    ).read_text(encoding="utf-8")
    fields = [f for f in CONNECTOR.all_configuration() if f not in DELIVERY_FIELDS]
    names = [CONNECTOR.id, *(f.name for f in fields)]
    for action in CONNECTOR.actions:
        names.extend([action.id, *(p.name for p in action.parameters)])
    missing = [name for name in names if f"`{name}`" not in text]
    assert not missing, f"docs/connectors/amazon_sqs.md does not mention {missing}"
