"""Amazon SQS: send each event as a message to a standard or FIFO queue.

Vendor docs used: the JSON protocol
https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-making-api-requests-json.html
and its answers .../sqs-json-api-responses.html (``__type``, ``x-amzn-query-error``);
message attributes .../sqs-message-metadata.html; the SendMessage and SendMessageBatch API
reference https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessageBatch.html
as shipped in botocore's service model (fields, 10 entries, sizes, allowed characters,
``Successful``/``Failed`` with ``SenderFault``, FIFO group and deduplication ids).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import orjson

from sluice.connectors import aws
from sluice.connectors.batching import pack, sent_positions, with_rejected
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
from sluice.connectors.helpers import dump_json, is_blank, is_http_url, map_param
from sluice.errors import FatalDelivery, MappingError, RetryableDelivery

SERVICE = "Amazon SQS"
BASE_URL = "https://sqs.{region}.amazonaws.com"
CONTENT_TYPE = "application/x-amz-json-1.0"
MAX_ENTRIES = 10  # messages per SendMessageBatch
# A message may be 1 MiB, but queues made before 2025 may still cap messages at 256 KiB,
# and so their batches: batches stay within 256 KiB, a larger message goes alone.
MAX_BATCH_BYTES = 262_144
MAX_MESSAGE_BYTES = 1_048_576
MAX_ATTRIBUTES = 10
# MessageDeduplicationId and MessageGroupId: up to 128 alphanumerics and punctuation.
_ID = re.compile(r"^[A-Za-z0-9!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~]+$")
_ATTRIBUTE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,256}$")
# What XML allows, which is what SQS accepts in a message.
_INVALID_CHARS = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

HINTS = {
    "NonExistentQueue": "check the queue URL and the Region",
    "QueueDoesNotExist": "check the queue URL and the Region",
    "InvalidSecurity": "the request must be made over HTTPS",
    "AccessDenied": "the IAM user or role needs sqs:SendMessage on this queue",
    "AccessDeniedException": "the IAM user or role needs sqs:SendMessage on this queue",
    "KmsAccessDenied": "the IAM user or role needs kms:GenerateDataKey and kms:Decrypt",
    "SignatureDoesNotMatch": "check the secret access key and the Region",
    "UnrecognizedClientException": "check the access key ID and session token",
    "InvalidClientTokenId": "check the access key ID",
}


def _queue_url(config: Mapping[str, Any]) -> str:
    url = str(config.get("queue_url") or "").strip()
    if not is_http_url(url):
        raise FatalDelivery("mapping", "the connector has no valid queue URL (configuration)")
    return url


def is_fifo(queue_url: str) -> bool:
    return urlsplit(queue_url).path.rstrip("/").endswith(".fifo")


def _body(event: ActionInput) -> str:
    value = aws.optional_text(event.params, "message_body")
    body = value if value is not None else dump_json(dict(event.data), "message_body").decode()
    bad = _INVALID_CHARS.search(body)
    if bad:
        raise MappingError("message_body", f"holds {bad.group()!r}, a character SQS refuses")
    return body


def _attributes(params: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    attributes: dict[str, dict[str, str]] = {}
    for name, value in map_param(params, "message_attributes").items():
        if is_blank(value):
            continue  # SQS refuses empty values: leave the attribute out
        lowered = name.lower()
        if (
            not _ATTRIBUTE_NAME.match(name)
            or lowered.startswith(("aws.", "amazon."))
            or name.startswith(".")
            or name.endswith(".")
            or ".." in name
        ):
            raise MappingError("message_attributes", f"{name[:60]!r} is not a valid attribute name")
        if isinstance(value, bool) or not isinstance(value, int | float):
            text = value if isinstance(value, str) else dump_json(value, name).decode()
            attributes[name] = {"DataType": "String", "StringValue": text}
        else:
            attributes[name] = {"DataType": "Number", "StringValue": orjson.dumps(value).decode()}
    if len(attributes) > MAX_ATTRIBUTES:
        raise MappingError(
            "message_attributes", f"{len(attributes)} attributes; SQS takes {MAX_ATTRIBUTES}"
        )
    return attributes


def _group_id(event: ActionInput) -> str:
    mapped = aws.optional_text(event.params, "message_group_id")
    if mapped is not None:
        if len(mapped) > 128 or not _ID.match(mapped):
            raise MappingError(
                "message_group_id", "must be 1-128 letters, digits or punctuation, no spaces"
            )
        return mapped
    # Messages of one visitor stay in order; events without one are grouped by themselves.
    fallback = event.data.get("tealium_visitor_id") or event.data.get("visitor_id")
    return aws.token(str(fallback or event.event_id), 128, _ID)


def _entry(event: ActionInput, fifo: bool) -> tuple[dict[str, Any], int]:
    """One SendMessage request body (without QueueUrl) and its size as SQS counts it."""
    body = _body(event)
    entry: dict[str, Any] = {"MessageBody": body}
    attributes = _attributes(event.params)
    if attributes:
        entry["MessageAttributes"] = attributes
    delay = event.params.get("delay_seconds")
    if not is_blank(delay):
        if fifo:
            raise MappingError("delay_seconds", "a FIFO queue takes no delay per message")
        if isinstance(delay, bool) or not isinstance(delay, int) or not 0 <= delay <= 900:
            raise MappingError("delay_seconds", "must be a whole number of seconds, 0 to 900")
        entry["DelaySeconds"] = delay
    if fifo:
        entry["MessageGroupId"] = _group_id(event)
        # A retry within SQS's 5-minute window is dropped by the queue, not delivered twice.
        entry["MessageDeduplicationId"] = aws.token(event.idempotency_key, 128, _ID)
    elif aws.optional_text(event.params, "message_group_id") is not None:
        entry["MessageGroupId"] = _group_id(event)  # fair queues on a standard queue
    size = aws.utf8_size(body) + sum(
        aws.utf8_size(name) + aws.utf8_size(a["DataType"]) + aws.utf8_size(a["StringValue"])
        for name, a in attributes.items()
    )
    if size > MAX_MESSAGE_BYTES:
        raise MappingError(
            "message_body", f"the message is {size} bytes; SQS takes at most {MAX_MESSAGE_BYTES}"
        )
    return entry, size


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def build_send_message(ctx: BuildContext, inputs: Sequence[ActionInput]) -> list[HttpRequest]:
    queue_url = _queue_url(ctx.config)
    fifo = is_fifo(queue_url)
    url = aws.endpoint(ctx, BASE_URL) + "/"
    requests: list[HttpRequest] = []
    batches = pack(
        inputs, lambda e: _entry(e, fifo), max_count=MAX_ENTRIES, max_bytes=MAX_BATCH_BYTES
    )
    for batch in batches:
        digests = {
            pos: _md5(entry["MessageBody"])
            for pos, entry in zip(batch.sent, batch.entries, strict=True)
        }
        if len(batch.entries) == 1:
            target, payload = "AmazonSQS.SendMessage", {"QueueUrl": queue_url, **batch.entries[0]}
        else:
            # Entry Ids only need to be unique in the request: the position says which event.
            entries = [
                {"Id": str(pos), **entry}
                for pos, entry in zip(batch.sent, batch.entries, strict=True)
            ]
            target, payload = (
                "AmazonSQS.SendMessageBatch",
                {"QueueUrl": queue_url, "Entries": entries},
            )
        requests.append(
            aws.signed_json(
                ctx,
                service="sqs",
                url=url,
                target=target,
                content_type=CONTENT_TYPE,
                payload=payload,
                batch=batch,
                digests=digests,
            )
        )
    return requests


def _received(request: HttpRequest, pos: int, md5: object) -> Outcome:
    """None when SQS's digest of the body it stored matches ours (or it sent none)."""
    expected = request.digests.get(pos) if isinstance(request, aws.AwsRequest) else None
    if isinstance(md5, str) and expected is not None and md5 != expected:
        return RetryableDelivery("http_5xx", f"{SERVICE}: the message arrived corrupted (MD5)")
    return None


def _batch_outcomes(
    request: HttpRequest, body: Mapping[str, Any], sent: Sequence[int]
) -> list[Outcome]:
    by_id: dict[str, Outcome] = {}
    for ok in body.get("Successful") or []:
        if isinstance(ok, dict):
            pos = str(ok.get("Id"))
            by_id[pos] = (
                _received(request, int(pos), ok.get("MD5OfMessageBody")) if pos.isdigit() else None
            )
    for failed in body.get("Failed") or []:
        if not isinstance(failed, dict):
            continue
        code, message = str(failed.get("Code") or "Failed"), str(failed.get("Message") or "")
        outcome = aws.classify_code(SERVICE, code, message, 200, HINTS)
        if (
            not failed.get("SenderFault")
            and isinstance(outcome, FatalDelivery)
            and outcome.category != "auth"
        ):
            # Not the sender's fault: SQS could not take it now, so it is worth another try.
            outcome = RetryableDelivery("http_5xx", outcome.message, status_code=200)
        by_id[str(failed.get("Id"))] = outcome
    missing = RetryableDelivery("http_5xx", f"{SERVICE}: the answer does not report this message")
    return [by_id.get(str(pos), missing) for pos in sent]


def _target(request: HttpRequest) -> str:
    if isinstance(request, aws.AwsRequest):
        return request.target
    return next((v for k, v in request.headers.items() if k.lower() == "x-amz-target"), "")


def classify(request: HttpRequest, response: HttpResponse) -> Outcome | list[Outcome]:
    sent = sent_positions(request)
    if not 200 <= response.status < 300:
        outcome = aws.classify_error(SERVICE, response, HINTS)
        return with_rejected(request, [outcome] * len(sent))
    try:
        body = orjson.loads(response.body) if response.body else {}
    except orjson.JSONDecodeError:
        body = {}
    body = body if isinstance(body, dict) else {}
    if _target(request) == "AmazonSQS.SendMessageBatch":
        outcomes = _batch_outcomes(request, body, sent)
    else:
        outcomes = [_received(request, pos, body.get("MD5OfMessageBody")) for pos in sent]
    return aws.per_item(request, outcomes)


SEND_MESSAGE = ActionType(
    id="send_message",
    name="Send Message",
    description=(
        "Send each event to the queue as one message: the whole event as JSON, or a body "
        "you write; up to 10 messages go in one SendMessageBatch call."
    ),
    parameters=(
        Field(
            "message_body",
            "Message body",
            "text",
            group="Message",
            help="What the message says, usually a template; empty sends the whole event as JSON.",
        ),
        Field(
            "message_attributes",
            "Message attributes",
            "map",
            group="Message",
            help=(
                f"Up to {MAX_ATTRIBUTES} attributes consumers can read without parsing the body; "
                "numbers are sent as Number, everything else as String."
            ),
        ),
        Field(
            "message_group_id",
            "Message group ID",
            group="Message",
            help=(
                "FIFO queues keep the messages of one group in order; by default the visitor "
                "ID. On a standard queue it sets the tenant of a fair queue."
            ),
        ),
        Field(
            "delay_seconds",
            "Delay (seconds)",
            "integer",
            group="Message",
            help="Hide the message from consumers this long (0-900); standard queues only.",
        ),
        Field(
            "max_batch_size",
            "Maximum batch size",
            "integer",
            group="Batching",
            help=f"Messages per call, at most {MAX_ENTRIES} (SQS's limit).",
        ),
        Field(
            "max_batch_age_seconds",
            "Maximum batch age (s)",
            "number",
            group="Batching",
            help="Send a batch at the latest this long after its first event (at most 5).",
        ),
    ),
    build=build_send_message,
    classify=classify,
    consent_categories=("big data",),
    batching=Batching(max_count=MAX_ENTRIES, max_bytes=MAX_BATCH_BYTES, max_age_seconds=5),
)

ICON_SVG = """\
<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64" width="64" height="64">
  <rect width="64" height="64" rx="14" fill="#e7157b"/>
  <rect x="14" y="22" width="36" height="20" rx="3" fill="none" stroke="#ffffff" stroke-width="4"/>
  <path d="M22 32h20M36 26l6 6-6 6" fill="none" stroke="#ffffff" stroke-width="4"
        stroke-linecap="round" stroke-linejoin="round"/>
</svg>
"""

CONNECTOR = ConnectorType(
    id="amazon_sqs",
    name="Amazon SQS",
    description=(
        "Send events as messages to an Amazon SQS queue, standard or FIFO, for your own "
        "services, Lambda functions or data pipelines to consume."
    ),
    configuration=(
        *aws.credential_fields("queue", "sqs.<region>.amazonaws.com"),
        Field(
            "queue_url",
            "Queue URL",
            "url",
            required=True,
            group="Queue",
            help=(
                "The queue's URL from the SQS console, https://sqs.<region>.amazonaws.com/"
                "<account>/<queue>; a name ending in .fifo makes it a FIFO queue."
            ),
        ),
    ),
    actions=(SEND_MESSAGE,),
    what_you_need=(
        "An AWS account with an SQS queue (standard or FIFO) in a Region of your choice.",
        "An IAM user or role allowed sqs:SendMessage on that queue (and kms:GenerateDataKey "
        "and kms:Decrypt when the queue is encrypted with a customer managed KMS key).",
        "Its access key ID and secret access key (plus a session token for temporary credentials).",
    ),
    resources=(
        Resource(
            "SendMessageBatch API reference",
            "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessageBatch.html",
        ),
        Resource(
            "Message attributes",
            "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-message-metadata.html",
        ),
        Resource(
            "FIFO queues: exactly-once processing",
            "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/FIFO-queues-exactly-once-processing.html",
        ),
        Resource(
            "Amazon SQS endpoints and quotas",
            "https://docs.aws.amazon.com/general/latest/gr/sqs-service.html",
        ),
    ),
    icon_svg=ICON_SVG,
    base_url=BASE_URL,
)
