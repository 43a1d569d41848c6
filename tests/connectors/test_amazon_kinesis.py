"""Amazon Kinesis Data Streams: recorded requests, signatures, limits and per-record outcomes."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import orjson
import pytest

from sluice.connectors.aws import AwsRequest
from sluice.connectors.catalog.amazon_kinesis import CONNECTOR
from sluice.connectors.definition import DELIVERY_FIELDS, ActionInput
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
from tests.connectors.test_amazon_sqs import KEY_ID, SECRET, request_problems

ARN = "arn:aws:kinesis:us-west-2:123456789012:stream/clickstream"
CONFIG = {
    "region": "us-west-2",
    "access_key_id": KEY_ID,
    "secret_access_key": SECRET,
    "stream": "clickstream",
}
JSON_1_1 = "application/x-amz-json-1.1"
EVENT = {**SAMPLE_EVENT, "event_id": "evt_1"}


def b64(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.b64encode(raw).decode()


def test_definition_conforms() -> None:
    check_definition(CONNECTOR)


EXAMPLES = [
    RecordedExample(
        name="put_record_whole_event",
        action="put_record",
        config=CONFIG,
        inputs=[{}],
        data=[EVENT],
        expected=[
            {
                "method": "POST",
                "url": "https://kinesis.us-west-2.amazonaws.com/",
                "headers": {
                    "Content-Type": JSON_1_1,
                    "X-Amz-Target": "Kinesis_20131202.PutRecord",
                },
                "json": {
                    "StreamName": "clickstream",
                    "Data": b64(orjson.dumps(EVENT)),
                    "PartitionKey": "visitor-0001",
                },
                "items": (0,),
            }
        ],
    ),
    RecordedExample(
        name="put_record_arn_and_hash_key",
        action="put_record",
        config={**CONFIG, "stream": ARN, "base_url": "http://localhost:4566"},
        inputs=[{"data": "order,A-1001,42.5", "partition_key": "A-1001", "explicit_hash_key": 7}],
        expected=[
            {
                "method": "POST",
                "url": "http://localhost:4566/",
                "json": {
                    "StreamARN": ARN,
                    "Data": b64("order,A-1001,42.5"),
                    "PartitionKey": "A-1001",
                    "ExplicitHashKey": "7",
                },
            }
        ],
    ),
    RecordedExample(
        name="put_records_batch",
        action="put_records",
        config=CONFIG,
        inputs=[{"data": f"r{i}"} for i in range(3)],
        data=[{"tealium_visitor_id": "v-1"}, {"visitor_id": "v-2"}, {}],
        expected=[
            {
                "method": "POST",
                "url": "https://kinesis.us-west-2.amazonaws.com/",
                "headers": {"X-Amz-Target": "Kinesis_20131202.PutRecords"},
                "json": {
                    "StreamName": "clickstream",
                    "Records": [
                        {"Data": b64("r0"), "PartitionKey": "v-1"},
                        {"Data": b64("r1"), "PartitionKey": "v-2"},
                        {"Data": b64("r2"), "PartitionKey": "evt_3"},
                    ],
                },
                "items": (0, 1, 2),
            }
        ],
    ),
]


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_recorded_example(example: RecordedExample) -> None:
    for request in check_example(CONNECTOR, example):
        assert request_problems(request, service="kinesis", region="us-west-2") == []


def build(action: str, params: list[dict[str, Any]], config: dict[str, Any] | None = None) -> Any:
    action_type = CONNECTOR.action(action)
    assert action_type is not None
    ctx = make_context(CONNECTOR, action, CONFIG if config is None else config)
    return action_type.build(ctx, make_inputs(action, params))


def test_put_records_splits_at_500_records_and_5_mib() -> None:
    assert [len(r.items) for r in build("put_records", [{"data": "x"}] * 1001)] == [500, 500, 1]
    big = {"data": "x" * 1_000_000}
    requests = build("put_records", [big] * 11)
    assert [len(r.items) for r in requests] == [5, 5, 1]


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"data": "x" * 1_048_577}, "data"),
        ({"partition_key": "k" * 257}, "partition_key"),
        ({"explicit_hash_key": -1}, "explicit_hash_key"),
        ({"explicit_hash_key": 2**128}, "explicit_hash_key"),
    ],
    ids=["record-over-1-mib", "long-partition-key", "negative-hash-key", "hash-key-too-big"],
)
def test_bad_values_are_mapping_errors(params: dict[str, Any], parameter: str) -> None:
    with pytest.raises(MappingError) as info:
        build("put_record", [params])
    assert info.value.parameter == parameter


def test_a_long_visitor_id_falls_back_to_the_event_id() -> None:
    inputs = [ActionInput({"data": "d"}, {"tealium_visitor_id": "v" * 300}, "e-1", "e-1:k")]
    ctx = make_context(CONNECTOR, "put_record", CONFIG)
    [request] = CONNECTOR.actions[0].build(ctx, inputs)
    assert orjson.loads(request.body)["PartitionKey"] == "e-1"


@pytest.mark.parametrize(
    "stream",
    ["", "has space", "arn:aws:sqs:us-west-2:123456789012:q"],
    ids=["empty", "space", "sqs-arn"],
)
def test_a_bad_stream_is_fatal(stream: str) -> None:
    with pytest.raises(FatalDelivery) as info:
        build("put_record", [{}], {**CONFIG, "stream": stream})
    assert info.value.category == "mapping"


def test_partial_failures_become_per_record_outcomes() -> None:
    [request] = build("put_records", [{"data": f"r{i}"} for i in range(4)])
    answer = {
        "FailedRecordCount": 3,
        "Records": [
            {"SequenceNumber": "4960", "ShardId": "shardId-000000000000"},
            {
                "ErrorCode": "ProvisionedThroughputExceededException",
                "ErrorMessage": "Rate exceeded for shard shardId-000000000001 in stream "
                "clickstream under account 123456789012.",
            },
            {"ErrorCode": "InternalFailure", "ErrorMessage": "Internal service failure."},
            {"ErrorCode": "KMSAccessDeniedException", "ErrorMessage": "denied"},
        ],
    }
    ok, throttled, failed, denied = CONNECTOR.actions[1].classify(
        request, response(200, orjson.dumps(answer))
    )
    assert ok is None
    assert isinstance(throttled, RetryableDelivery)
    assert throttled.category == "rate_limit"
    assert "shardId-000000000001" in throttled.message
    assert isinstance(failed, RetryableDelivery)
    assert failed.category == "http_5xx"
    assert isinstance(denied, FatalDelivery)
    assert denied.category == "auth"


def test_an_answer_without_records_is_retried() -> None:
    [request] = build("put_records", [{"data": "a"}, {"data": "b"}])
    outcomes = CONNECTOR.actions[1].classify(request, response(200, b'{"FailedRecordCount": 0}'))
    assert isinstance(outcomes, list)
    assert all(isinstance(o, RetryableDelivery) for o in outcomes)


def test_an_invalid_record_in_a_batch_fails_alone() -> None:
    [request] = build("put_records", [{"data": "a"}, {"partition_key": "k" * 300}, {"data": "c"}])
    assert isinstance(request, AwsRequest)
    assert len(orjson.loads(request.body)["Records"]) == 2
    answer = {"FailedRecordCount": 0, "Records": [{"SequenceNumber": "1"}, {"SequenceNumber": "2"}]}
    first, bad, third = CONNECTOR.actions[1].classify(request, response(200, orjson.dumps(answer)))
    assert first is None
    assert third is None
    assert isinstance(bad, FatalDelivery)
    assert bad.category == "mapping"
    assert "partition_key" in bad.message


def _aws_error(status: int, type_: str, message: str) -> Any:
    return response(status, orjson.dumps({"__type": type_, "message": message}))


ERRORS = [
    ErrorCase(
        _aws_error(400, "ProvisionedThroughputExceededException", "Rate exceeded for shard"),
        RetryableDelivery,
        "rate_limit",
        id="throughput-exceeded",
    ),
    ErrorCase(
        _aws_error(400, "KMSThrottlingException", "throttled"),
        RetryableDelivery,
        "rate_limit",
        id="kms-throttled",
    ),
    ErrorCase(
        _aws_error(
            400, "ResourceNotFoundException", "Stream clickstream under account x not found."
        ),
        FatalDelivery,
        "http_4xx",
        message_contains="check the stream name",
        id="no-such-stream",
    ),
    ErrorCase(
        _aws_error(
            400,
            "InvalidArgumentException",
            "1 validation error detected: Value at 'partitionKey' failed to satisfy constraint",
        ),
        FatalDelivery,
        "http_4xx",
        message_contains="partitionKey",
        id="invalid-argument",
    ),
    ErrorCase(
        _aws_error(400, "AccessDeniedException", "User is not authorized to perform PutRecord"),
        FatalDelivery,
        "auth",
        message_contains="kinesis:PutRecord",
        id="access-denied",
    ),
    ErrorCase(
        _aws_error(400, "UnrecognizedClientException", "The security token is invalid."),
        FatalDelivery,
        "auth",
        id="unknown-key",
    ),
    ErrorCase(
        _aws_error(
            400, "ExpiredTokenException", "The security token included in the request is expired"
        ),
        FatalDelivery,
        "auth",
        id="expired-token",
    ),
    ErrorCase(
        _aws_error(500, "InternalFailureException", ""),
        RetryableDelivery,
        "http_5xx",
        id="internal-failure",
    ),
    ErrorCase(response(503, ""), RetryableDelivery, "http_5xx", id="503"),
    ErrorCase(
        response(429, "", {"Retry-After": "4"}), RetryableDelivery, "rate_limit", 4.0, id="429"
    ),
]


PUT = b'{"SequenceNumber": "4960", "ShardId": "shardId-000000000000"}'
PUT_ALL = b'{"FailedRecordCount": 0, "Records": [{"SequenceNumber": "4960", "ShardId": "s-0"}]}'


@pytest.mark.parametrize(("action", "answer"), [("put_record", PUT), ("put_records", PUT_ALL)])
def test_error_mapping(action: str, answer: bytes) -> None:
    check_error_mapping(CONNECTOR, action, [ErrorCase(response(200, answer), None), *ERRORS])


def test_every_field_is_documented() -> None:
    text = (
        Path(__file__).resolve().parents[2] / "docs" / "connectors" / "amazon_kinesis.md"
    ).read_text(encoding="utf-8")
    fields = [f for f in CONNECTOR.all_configuration() if f not in DELIVERY_FIELDS]
    names = [CONNECTOR.id, *(f.name for f in fields)]
    for action in CONNECTOR.actions:
        names.extend([action.id, *(p.name for p in action.parameters)])
    missing = [name for name in names if f"`{name}`" not in text]
    assert not missing, f"docs/connectors/amazon_kinesis.md does not mention {missing}"
