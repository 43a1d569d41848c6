"""Contract: Sluice against a strict stand-in for Amazon SQS's JSON API, end to end.

The stand-in checks every call against the documented AWS JSON protocol (``POST /``,
``application/x-amz-json-1.0``, ``X-Amz-Target``, a valid Signature Version 4 for the
configured Region), SendMessage and SendMessageBatch (required fields, attribute and id
rules, FIFO group and deduplication ids, 10 entries and 256 KiB per call), records each
deviation, and answers as SQS does: per-entry ``Successful``/``Failed``, errors with
``__type`` and ``x-amzn-query-error``. FIFO queues drop a repeated deduplication id.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from sluice.connectors.catalog.amazon_sqs import CONNECTOR
from sluice.connectors.registry import Registry
from sluice.services import Services
from sluice.settings import Settings
from tests.conftest import Api
from tests.connectors.test_amazon_sqs import KEY_ID, SECRET, sigv4_problems
from tests.support.flows import FAST_RETRIES, add_connector, send, totals, wait_until
from tests.support.vendor import Recorded, Reply, VendorMock

REGION = "eu-west-1"
ACCOUNT = "https://sqs.eu-west-1.amazonaws.com/123456789012"
QUEUE, FIFO = f"{ACCOUNT}/orders", f"{ACCOUNT}/orders.fifo"
MAX_BYTES = 262_144  # the queues here are older ones, still capped at 256 KiB
_ID = re.compile(r"^[A-Za-z0-9!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~]{1,128}$")
_ENTRY_ID = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
_NAME = re.compile(r"^(?!\.)(?!.*\.\.)(?!(?i:aws\.|amazon\.))[A-Za-z0-9_.-]{1,256}(?<!\.)$")
MESSAGE_KEYS = {
    "MessageBody",
    "DelaySeconds",
    "MessageAttributes",
    "MessageGroupId",
    "MessageDeduplicationId",
}


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    """The real services, with SQS in the catalog whether or not it is registered yet."""
    opened = Services.open(settings)
    if CONNECTOR.id not in opened.registry:
        opened.registry = Registry([*opened.registry.all(), CONNECTOR])
    yield opened
    opened.db.dispose()


def aws_error(status: int, code: str, message: str, query: str) -> Reply:
    headers = {
        "Content-Type": "application/x-amz-json-1.0",
        "x-amzn-RequestId": str(uuid.uuid4()),
        "x-amzn-query-error": query,
    }
    return Reply(status, {"__type": f"com.amazonaws.sqs#{code}", "message": message}, headers)


class SqsApi:
    """SQS's documented JSON API, strictly; ``deviations`` lists what Sluice got wrong."""

    def __init__(self, vendor: VendorMock) -> None:
        self.deviations: list[str] = []
        self.bad_signatures = 0
        self.queues: dict[str, list[dict[str, Any]]] = {QUEUE: [], FIFO: []}
        self.seen_dedup_ids: set[str] = set()
        self.fail_once: set[str] = set()  # SQS fails a body holding one of these, once
        vendor.respond("/", self.handle)

    def handle(self, r: Recorded) -> Reply:
        if r.method != "POST" or r.path != "/":
            self.deviations.append(f"{r.method} {r.path}: the JSON protocol is POST /")
        if r.headers.get("content-type") != "application/x-amz-json-1.0":
            self.deviations.append(f"Content-Type {r.headers.get('content-type')!r}")
        problems = sigv4_problems("POST", r.path, r.headers, r.body, service="sqs", region=REGION)
        if problems == ["the signature does not match the request"]:
            self.bad_signatures += 1
            message = (
                "The request signature we calculated does not match the signature you provided."
            )
            return aws_error(403, "SignatureDoesNotMatch", message, "SignatureDoesNotMatch;Sender")
        if problems:
            self.deviations.extend(problems)
            return aws_error(
                400, "IncompleteSignature", "bad signature", "IncompleteSignature;Sender"
            )
        try:
            body = orjson.loads(r.body)
        except orjson.JSONDecodeError:
            self.deviations.append("the body is not JSON")
            return aws_error(
                400, "SerializationException", "bad JSON", "SerializationException;Sender"
            )
        target = r.headers.get("x-amz-target")
        if target == "AmazonSQS.SendMessage":
            return self.send_message(body)
        if target == "AmazonSQS.SendMessageBatch":
            return self.send_message_batch(body)
        self.deviations.append(f"X-Amz-Target {target!r} is not SendMessage(Batch)")
        return aws_error(400, "UnknownOperationException", "", "UnknownOperationException;Sender")

    def _queue(self, body: Any, keys: set[str]) -> tuple[str | None, Reply | None]:
        if not isinstance(body, dict) or set(body) - keys:
            self.deviations.append(f"unexpected request fields {sorted(set(body or {}) - keys)}")
        url = body.get("QueueUrl") if isinstance(body, dict) else None
        if url not in self.queues:
            message = "The specified queue does not exist."
            return None, aws_error(
                400, "QueueDoesNotExist", message, "AWS.SimpleQueueService.NonExistentQueue;Sender"
            )
        return url, None

    def _check(self, where: str, queue: str, entry: dict[str, Any]) -> list[str]:
        problems = []
        body = entry.get("MessageBody")
        if not isinstance(body, str) or not body:
            problems.append(f"{where}: MessageBody is required")
            body = ""
        size = len(body.encode())
        attributes = entry.get("MessageAttributes", {})
        if not isinstance(attributes, dict) or len(attributes) > 10:
            problems.append(f"{where}: at most 10 MessageAttributes")
            attributes = {}
        for name, value in attributes.items():
            kind = value.get("DataType") if isinstance(value, dict) else None
            text = value.get("StringValue") if isinstance(value, dict) else None
            if not _NAME.match(name) or kind not in ("String", "Number") or not text:
                problems.append(f"{where}: attribute {name!r} is not valid")
                continue
            if kind == "Number" and not re.match(r"^-?\d+(\.\d+)?([eE][-+]?\d+)?$", text):
                problems.append(f"{where}: attribute {name!r} is not a number")
            size += len(name.encode()) + len(kind.encode()) + len(text.encode())
        if size > MAX_BYTES:
            problems.append(f"{where}: {size} bytes, over the queue's {MAX_BYTES}")
        fifo = queue.endswith(".fifo")
        if fifo and "DelaySeconds" in entry:
            problems.append(f"{where}: a FIFO queue takes no DelaySeconds per message")
        delay = entry.get("DelaySeconds", 0)
        if not isinstance(delay, int) or not 0 <= delay <= 900:
            problems.append(f"{where}: DelaySeconds must be 0-900")
        for key in ("MessageGroupId", "MessageDeduplicationId"):
            if fifo and not _ID.match(str(entry.get(key, ""))):
                problems.append(f"{where}: a FIFO queue needs a valid {key}")
        if not fifo and "MessageDeduplicationId" in entry:
            problems.append(f"{where}: MessageDeduplicationId is for FIFO queues only")
        return problems

    def _enqueue(self, queue: str, entry: dict[str, Any]) -> dict[str, Any]:
        dedup = entry.get("MessageDeduplicationId")
        if not (queue.endswith(".fifo") and dedup in self.seen_dedup_ids):
            self.queues[queue].append(entry)
            self.seen_dedup_ids.add(str(dedup))
        md5 = hashlib.md5(entry["MessageBody"].encode(), usedforsecurity=False).hexdigest()
        return {"MessageId": str(uuid.uuid4()), "MD5OfMessageBody": md5}

    def send_message(self, body: Any) -> Reply:
        queue, refused = self._queue(body, {"QueueUrl", *MESSAGE_KEYS})
        if refused or queue is None:
            return refused or Reply(500)
        problems = self._check("SendMessage", queue, body)
        if problems:
            self.deviations.extend(problems)
            return aws_error(
                400, "InvalidParameterValue", problems[0], "InvalidParameterValue;Sender"
            )
        return Reply(
            200, self._enqueue(queue, body), {"Content-Type": "application/x-amz-json-1.0"}
        )

    def send_message_batch(self, body: Any) -> Reply:
        queue, refused = self._queue(body, {"QueueUrl", "Entries"})
        if refused or queue is None:
            return refused or Reply(500)
        entries = body.get("Entries")
        if not isinstance(entries, list) or not 1 <= len(entries) <= 10:
            self.deviations.append("Entries must hold 1 to 10 messages")
            return aws_error(
                400,
                "TooManyEntriesInBatchRequest",
                "",
                "AWS.SimpleQueueService.TooManyEntriesInBatchRequest;Sender",
            )
        ids = [e.get("Id") for e in entries]
        if len(set(ids)) != len(ids) or not all(_ENTRY_ID.match(str(i)) for i in ids):
            self.deviations.append(f"entry Ids {ids} must be distinct and valid")
        successful, failed = [], []
        for entry in entries:
            if set(entry) - {"Id", *MESSAGE_KEYS}:
                self.deviations.append(f"unexpected entry fields {sorted(set(entry))}")
            problems = self._check(f"entry {entry.get('Id')}", queue, entry)
            self.deviations.extend(problems)
            trouble = [t for t in self.fail_once if t in str(entry.get("MessageBody"))]
            if trouble:
                self.fail_once.difference_update(trouble)
                failed.append({"Id": entry["Id"], "SenderFault": False, "Code": "InternalError"})
            elif problems:
                failed.append(
                    {
                        "Id": entry["Id"],
                        "SenderFault": True,
                        "Code": "InvalidParameterValue",
                        "Message": problems[0],
                    }
                )
            else:
                successful.append({"Id": entry["Id"], **self._enqueue(queue, entry)})
        answer = {"Successful": successful, "Failed": failed}
        return Reply(200, answer, {"Content-Type": "application/x-amz-json-1.0"})


def add_sqs(
    api: Api, profile: str, vendor: VendorMock, *, queue: str = QUEUE, **config: Any
) -> Any:
    action = {
        "name": "Queue orders",
        "type": "send_message",
        "mappings": [
            {"parameter": "message_attributes", "key": "event_name", "attribute": "tealium_event"},
            {"parameter": "message_attributes", "key": "order_total", "attribute": "order_total"},
            {"parameter": "message_group_id", "attribute": "group"},
            {"parameter": "max_batch_age_seconds", "value": 0.2},
        ],
    }
    configuration = {
        "region": REGION,
        "access_key_id": KEY_ID,
        "secret_access_key": SECRET,
        "queue_url": queue,
        "base_url": vendor.url,
        **FAST_RETRIES,
        **config,
    }
    return add_connector(
        api,
        profile,
        type="amazon_sqs",
        name="Orders queue",
        configuration=configuration,
        actions=[action],
    )


def errors(api: Api, profile: str) -> list[dict[str, Any]]:
    return list(api.get(f"{profile}/errors").json()["errors"])


def test_send_message_puts_the_whole_event_on_the_queue(
    api: Api, profile: str, vendor: VendorMock
) -> None:
    sqs = SqsApi(vendor)
    add_sqs(api, profile, vendor)
    accepted = send(api, {"tealium_event": "purchase", "order_id": "A-1001", "order_total": 42.5})
    [request] = vendor.wait_for(1, "/")
    assert request.headers["x-amz-target"] == "AmazonSQS.SendMessage"
    body = request.json()
    assert set(body) == {"QueueUrl", "MessageBody", "MessageAttributes"}
    assert body["QueueUrl"] == QUEUE
    event = orjson.loads(body["MessageBody"])
    assert event["event_id"] == accepted["event_ids"][0]
    assert (event["order_id"], event["order_total"]) == ("A-1001", 42.5)
    assert body["MessageAttributes"] == {
        "event_name": {"DataType": "String", "StringValue": "purchase"},
        "order_total": {"DataType": "Number", "StringValue": "42.5"},
    }
    wait_until(lambda: totals(api, profile)["success"] == 1)
    assert len(sqs.queues[QUEUE]) == 1
    assert sqs.deviations == []


def test_a_fifo_batch_reports_and_retries_each_message(
    api: Api, profile: str, vendor: VendorMock
) -> None:
    sqs = SqsApi(vendor)
    sqs.fail_once.add('"tealium_event":"e3"')
    add_sqs(api, profile, vendor, queue=FIFO)
    events = [
        {"tealium_event": "e1", "tealium_visitor_id": "v-1"},
        {"tealium_event": "e2", "tealium_visitor_id": "v-2", "group": "not valid"},
        {"tealium_event": "e3", "tealium_visitor_id": "v-3"},
        {"tealium_event": "e4", "tealium_visitor_id": "v-1"},
    ]
    reply = api.client.post(
        "/bulk-event", json={"shared": {"tealium_account": "acme"}, "events": events}
    )
    assert reply.status_code == 200, reply.text
    ids = reply.json()["event_ids"]
    counts = wait_until(lambda: (t := totals(api, profile)) and t["success"] == 3 and t)
    assert counts["error"] == 1
    [record] = errors(api, profile)
    assert record["event_id"] == ids[1]
    assert record["category"] == "mapping"
    assert "message_group_id" in record["message"]
    assert [orjson.loads(m["MessageBody"])["tealium_event"] for m in sqs.queues[FIFO]] == [
        "e1",
        "e4",
        "e3",
    ]
    assert [m["MessageGroupId"] for m in sqs.queues[FIFO]] == ["v-1", "v-1", "v-3"]
    calls = vendor.received("/")
    assert [c.headers["x-amz-target"] for c in calls] == [
        "AmazonSQS.SendMessageBatch",
        "AmazonSQS.SendMessage",
    ]
    retried = calls[1].json()
    assert (
        retried["MessageDeduplicationId"] == calls[0].json()["Entries"][1]["MessageDeduplicationId"]
    )
    assert counts["retried"] == 1
    assert sqs.deviations == []


def test_an_unknown_queue_is_an_error_record_without_secrets(
    api: Api, profile: str, vendor: VendorMock
) -> None:
    sqs = SqsApi(vendor)
    token = "FwoGZXIvYXdzEXAMPLEsessionTOKEN"
    add_sqs(api, profile, vendor, queue=f"{ACCOUNT}/gone", session_token=token)
    send(api, {"tealium_event": "purchase"})
    [record] = wait_until(lambda: errors(api, profile))
    assert record["category"] == "http_4xx"
    assert record["status_code"] == 400
    assert "NonExistentQueue" in record["message"]
    assert "check the queue URL" in record["message"]
    assert record["attempts"] == 1
    headers = record["request"]["headers"]
    assert headers["Authorization"].endswith("********")
    assert KEY_ID not in headers["Authorization"]
    assert headers["X-Amz-Security-Token"] == "********"
    assert token not in orjson.dumps(record).decode()
    assert SECRET not in orjson.dumps(record).decode()
    assert sqs.deviations == []


def test_a_wrong_secret_is_an_auth_error(api: Api, profile: str, vendor: VendorMock) -> None:
    sqs = SqsApi(vendor)
    add_sqs(api, profile, vendor, secret_access_key="not-the-secret-key")
    send(api, {"tealium_event": "purchase"})
    [record] = wait_until(lambda: errors(api, profile))
    assert record["category"] == "auth"
    assert "SignatureDoesNotMatch" in record["message"]
    assert record["attempts"] == 1
    assert sqs.bad_signatures == 1
    assert sqs.deviations == []


def test_throttling_is_retried(api: Api, profile: str, vendor: VendorMock) -> None:
    sqs = SqsApi(vendor)
    throttled = aws_error(400, "RequestThrottled", "Rate exceeded", "RequestThrottled;Sender")
    vendor.queue("/", throttled)
    add_sqs(api, profile, vendor)
    send(api, {"tealium_event": "purchase"})
    counts = wait_until(lambda: (t := totals(api, profile)) and t["success"] == 1 and t)
    assert counts["retried"] == 1
    assert len(vendor.received("/")) == 2
    assert len(sqs.queues[QUEUE]) == 1
    assert sqs.deviations == []
