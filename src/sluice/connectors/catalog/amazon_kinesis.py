"""Amazon Kinesis Data Streams: put each event as a record into a data stream.

Vendor docs used: the PutRecord and PutRecords API reference
https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecords.html (as shipped in
botocore's service model: shapes, 500 records per call, per-record ``ErrorCode``
ProvisionedThroughputExceededException or InternalFailure, the errors of each operation);
the AWS common errors https://docs.aws.amazon.com/kinesis/latest/APIReference/CommonErrors.html.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from sluice.connectors import aws
from sluice.connectors.batching import Batch, pack, sent_positions, with_rejected
from sluice.connectors.definition import (
    ActionInput,
    ActionType,
    Batching,
    BuildContext,
    ConnectorType,
    Field,
    HttpRequest,
    HttpResponse,
    Outcome,
    Resource,
)
from sluice.connectors.helpers import dump_json
from sluice.errors import FatalDelivery, MappingError, RetryableDelivery

SERVICE = "Amazon Kinesis"
BASE_URL = "https://kinesis.{region}.amazonaws.com"
CONTENT_TYPE = "application/x-amz-json-1.1"
MAX_RECORDS = 500  # records per PutRecords call
# Streams accept 1 MiB records (data plus partition key) unless set higher, and
# PutRecords 5 MiB per call: these limits hold for every stream.
MAX_RECORD_BYTES = 1_048_576
MAX_REQUEST_BYTES = 5_242_880
MAX_PARTITION_KEY = 256  # Unicode characters
_STREAM_NAME = re.compile(r"^[a-zA-Z0-9_.-]{1,128}$")
_STREAM_ARN = re.compile(r"^arn:aws[a-z-]*:kinesis:[a-z0-9-]+:\d{12}:stream/\S+$")
_HASH_KEY = re.compile(r"^(0|[1-9]\d{0,38})$")

HINTS = {
    "ResourceNotFoundException": "check the stream name and the Region",
    "AccessDeniedException": "the IAM user or role needs kinesis:PutRecord and kinesis:PutRecords",
    "KMSAccessDeniedException": "the IAM user or role needs kms:GenerateDataKey",
    "ProvisionedThroughputExceededException": "the stream's shards are at their write limit",
    "SignatureDoesNotMatch": "check the secret access key and the Region",
    "UnrecognizedClientException": "check the access key ID and session token",
}


def _stream(config: Mapping[str, Any]) -> dict[str, str]:
    """``StreamName`` or ``StreamARN``, from the one configuration field."""
    value = str(config.get("stream") or "").strip()
    if _STREAM_ARN.match(value):
        return {"StreamARN": value}
    if _STREAM_NAME.match(value):
        return {"StreamName": value}
    raise FatalDelivery("mapping", "the connector has no valid stream name or ARN (configuration)")


def _partition_key(event: ActionInput) -> str:
    mapped = aws.optional_text(event.params, "partition_key")
    if mapped is not None:
        if len(mapped) > MAX_PARTITION_KEY:
            raise MappingError("partition_key", f"is longer than {MAX_PARTITION_KEY} characters")
        return mapped
    # One visitor's events land on one shard, in order; without a visitor, spread them.
    visitor = event.data.get("tealium_visitor_id") or event.data.get("visitor_id")
    if isinstance(visitor, str) and 0 < len(visitor) <= MAX_PARTITION_KEY:
        return visitor
    return event.event_id


def _record(event: ActionInput) -> tuple[dict[str, Any], int]:
    """One record (Data, PartitionKey, ExplicitHashKey?) and its size as Kinesis counts it."""
    text = aws.optional_text(event.params, "data")
    data = text.encode("utf-8") if text is not None else dump_json(dict(event.data), "data")
    key = _partition_key(event)
    size = len(data) + aws.utf8_size(key)
    if size > MAX_RECORD_BYTES:
        raise MappingError("data", f"the record is {size} bytes; Kinesis takes {MAX_RECORD_BYTES}")
    record: dict[str, Any] = {"Data": base64.b64encode(data).decode("ascii"), "PartitionKey": key}
    hash_key = event.params.get("explicit_hash_key")
    if hash_key is not None and hash_key != "":
        if isinstance(hash_key, str) and _HASH_KEY.match(hash_key.strip()):
            hash_key = int(hash_key)
        if (
            isinstance(hash_key, bool)
            or not isinstance(hash_key, int)
            or not 0 <= hash_key < 2**128
        ):
            raise MappingError("explicit_hash_key", "must be a whole number from 0 to 2^128 - 1")
        record["ExplicitHashKey"] = str(hash_key)
    return record, size


def _request(
    ctx: BuildContext, target: str, payload: dict[str, Any], batch: Batch[dict[str, Any]]
) -> HttpRequest:
    return aws.signed_json(
        ctx,
        service="kinesis",
        url=aws.endpoint(ctx, BASE_URL) + "/",
        target=target,
        content_type=CONTENT_TYPE,
        payload=payload,
        batch=batch,
    )


def build_put_record(ctx: BuildContext, inputs: Sequence[ActionInput]) -> list[HttpRequest]:
    stream = _stream(ctx.config)
    requests = []
    for index, event in enumerate(inputs):
        record, size = _record(event)
        batch = Batch[dict[str, Any]]()
        batch.add(index, record, size)
        target = "Kinesis_20131202.PutRecord"
        requests.append(_request(ctx, target, {**stream, **record}, batch))
    return requests


def build_put_records(ctx: BuildContext, inputs: Sequence[ActionInput]) -> list[HttpRequest]:
    stream = _stream(ctx.config)
    return [
        _request(ctx, "Kinesis_20131202.PutRecords", {**stream, "Records": batch.entries}, batch)
        for batch in pack(inputs, _record, max_count=MAX_RECORDS, max_bytes=MAX_REQUEST_BYTES)
    ]


def _record_outcomes(body: Mapping[str, Any], count: int) -> list[Outcome]:
    """Per-record outcomes of PutRecords: its answer lists the records in request order."""
    results = body.get("Records")
    if not isinstance(results, list) or len(results) != count:
        unknown = RetryableDelivery("http_5xx", f"{SERVICE}: the answer does not report records")
        return [unknown] * count
    outcomes: list[Outcome] = []
    for result in results:
        code = str(result.get("ErrorCode") or "") if isinstance(result, dict) else ""
        if not code:
            outcomes.append(None)
            continue
        message = str(result.get("ErrorMessage") or "")
        outcome = aws.classify_code(SERVICE, code, message, 200, HINTS)
        outcomes.append(outcome)
    return outcomes


def classify(request: HttpRequest, response: HttpResponse) -> Outcome | list[Outcome]:
    sent = sent_positions(request)
    if not 200 <= response.status < 300:
        return with_rejected(request, [aws.classify_error(SERVICE, response, HINTS)] * len(sent))
    target = request.target if isinstance(request, aws.AwsRequest) else ""
    if target != "Kinesis_20131202.PutRecords":
        return with_rejected(request, [None] * len(sent))
    try:
        body = orjson.loads(response.body) if response.body else {}
    except orjson.JSONDecodeError:
        body = {}
    outcomes = _record_outcomes(body if isinstance(body, dict) else {}, len(sent))
    return aws.per_item(request, outcomes)


def _parameters(batching: bool) -> tuple[Field, ...]:
    fields = (
        Field(
            "data",
            "Data",
            "text",
            group="Record",
            help="The record's content, usually a template; empty puts the whole event as JSON.",
        ),
        Field(
            "partition_key",
            "Partition key",
            group="Record",
            help=(
                "Picks the shard; records with one key keep their order. By default the "
                "visitor ID, else the event ID (at most 256 characters)."
            ),
        ),
        Field(
            "explicit_hash_key",
            "Explicit hash key",
            "integer",
            group="Record",
            help="A 128-bit hash key (a decimal number) that picks the shard instead.",
        ),
    )
    if not batching:
        return fields
    return (
        *fields,
        Field(
            "max_batch_size",
            "Maximum batch size",
            "integer",
            group="Batching",
            help=f"Records per PutRecords call, at most {MAX_RECORDS}.",
        ),
        Field(
            "max_batch_age_seconds",
            "Maximum batch age (s)",
            "number",
            group="Batching",
            help="Send a batch at the latest this long after its first event (at most 5).",
        ),
    )


PUT_RECORD = ActionType(
    id="put_record",
    name="Put Record",
    description="Put each event into the stream as one record, one PutRecord call each.",
    parameters=_parameters(batching=False),
    build=build_put_record,
    classify=classify,
    consent_categories=("big data",),
)

PUT_RECORDS = ActionType(
    id="put_records",
    name="Put Records",
    description=(
        "Put events into the stream in batches of up to 500 records per PutRecords call; "
        "records the stream refuses are retried one by one."
    ),
    parameters=_parameters(batching=True),
    build=build_put_records,
    classify=classify,
    consent_categories=("big data",),
    batching=Batching(max_count=MAX_RECORDS, max_bytes=MAX_REQUEST_BYTES, max_age_seconds=5),
)

ICON_SVG = """\
<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64" width="64" height="64">
  <rect width="64" height="64" rx="14" fill="#8c4fff"/>
  <path d="M12 22c8-6 16 6 24 0s12-4 16-2M12 32c8-6 16 6 24 0s12-4 16-2
           M12 42c8-6 16 6 24 0s12-4 16-2"
        fill="none" stroke="#ffffff" stroke-width="4" stroke-linecap="round"/>
</svg>
"""

CONNECTOR = ConnectorType(
    id="amazon_kinesis",
    name="Amazon Kinesis Data Streams",
    description=(
        "Put events into an Amazon Kinesis data stream, for real-time processing by your "
        "consumers, Lambda functions, Amazon Data Firehose or analytics applications."
    ),
    configuration=(
        *aws.credential_fields("stream", "kinesis.<region>.amazonaws.com"),
        Field(
            "stream",
            "Stream name or ARN",
            required=True,
            group="Stream",
            help=(
                "The data stream's name, or its ARN (arn:aws:kinesis:<region>:<account>:"
                "stream/<name>), which AWS recommends."
            ),
        ),
    ),
    actions=(PUT_RECORD, PUT_RECORDS),
    what_you_need=(
        "An AWS account with a Kinesis data stream (on-demand or provisioned).",
        "An IAM user or role allowed kinesis:PutRecord and kinesis:PutRecords on the stream "
        "(and kms:GenerateDataKey when it is encrypted with a customer managed KMS key).",
        "Its access key ID and secret access key (plus a session token for temporary credentials).",
    ),
    resources=(
        Resource(
            "PutRecords API reference",
            "https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecords.html",
        ),
        Resource(
            "PutRecord API reference",
            "https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecord.html",
        ),
        Resource(
            "Quotas and limits",
            "https://docs.aws.amazon.com/streams/latest/dev/service-sizes-and-limits.html",
        ),
        Resource(
            "Amazon Kinesis Data Streams endpoints",
            "https://docs.aws.amazon.com/general/latest/gr/ak.html",
        ),
    ),
    icon_svg=ICON_SVG,
    base_url=BASE_URL,
)
