"""Contract: Sluice against a strict stand-in for Amazon Kinesis Data Streams, end to end.

The stand-in checks every call against the documented AWS JSON 1.1 protocol (``POST /``,
``X-Amz-Target: Kinesis_20131202.PutRecord(s)``, a valid Signature Version 4 for the
configured Region), the PutRecord and PutRecords shapes (stream name or ARN, base64
``Data``, 1-256 character partition keys, 500 records and 5 MiB per call, 1 MiB per
record), records each deviation, and answers as Kinesis does, including per-record
``ErrorCode``s for records a shard throttles.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from sluice.connectors.catalog.amazon_kinesis import CONNECTOR
from sluice.connectors.registry import Registry
from sluice.services import Services
from sluice.settings import Settings
from tests.conftest import Api
from tests.connectors.test_amazon_sqs import KEY_ID, SECRET, sigv4_problems
from tests.support.flows import FAST_RETRIES, add_connector, send, totals, wait_until
from tests.support.vendor import Recorded, Reply, VendorMock

REGION = "us-west-2"
STREAM = "clickstream"
ARN = f"arn:aws:kinesis:{REGION}:123456789012:stream/{STREAM}"
JSON_1_1 = "application/x-amz-json-1.1"
_NAME = re.compile(r"^[a-zA-Z0-9_.-]{1,128}$")
_HASH_KEY = re.compile(r"^(0|[1-9]\d{0,38})$")
RECORD_KEYS = {"Data", "PartitionKey", "ExplicitHashKey"}


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    """The real services, with Kinesis in the catalog whether or not it is registered yet."""
    opened = Services.open(settings)
    if CONNECTOR.id not in opened.registry:
        opened.registry = Registry([*opened.registry.all(), CONNECTOR])
    yield opened
    opened.db.dispose()


def aws_error(status: int, code: str, message: str) -> Reply:
    headers = {"Content-Type": JSON_1_1, "x-amzn-RequestId": str(uuid.uuid4())}
    return Reply(status, {"__type": code, "message": message}, headers)


class KinesisApi:
    """Kinesis Data Streams' documented API, strictly; ``deviations`` lists Sluice's mistakes."""

    def __init__(self, vendor: VendorMock) -> None:
        self.deviations: list[str] = []
        self.stored: list[tuple[str, bytes]] = []  # (partition key, data)
        self.throttle_once: set[str] = set()  # partition keys a shard refuses, once
        self.sequence = 49_600_000_000_000_000_000
        vendor.respond("/", self.handle)

    def handle(self, r: Recorded) -> Reply:
        if r.method != "POST" or r.path != "/":
            self.deviations.append(f"{r.method} {r.path}: the JSON protocol is POST /")
        if r.headers.get("content-type") != JSON_1_1:
            self.deviations.append(f"Content-Type {r.headers.get('content-type')!r}")
        problems = sigv4_problems(
            "POST", r.path, r.headers, r.body, service="kinesis", region=REGION
        )
        if problems:
            self.deviations.extend(problems)
            return aws_error(400, "IncompleteSignatureException", "bad signature")
        try:
            body = orjson.loads(r.body)
        except orjson.JSONDecodeError:
            self.deviations.append("the body is not JSON")
            return aws_error(400, "SerializationException", "bad JSON")
        target = r.headers.get("x-amz-target")
        keys = {"StreamName", "StreamARN"}
        if target == "Kinesis_20131202.PutRecord":
            self._fields(body, keys | RECORD_KEYS)
            refused = self._stream(body)
            return refused or self.put_record(body)
        if target == "Kinesis_20131202.PutRecords":
            self._fields(body, keys | {"Records"})
            refused = self._stream(body)
            return refused or self.put_records(body)
        self.deviations.append(f"X-Amz-Target {target!r} is not PutRecord(s)")
        return aws_error(400, "UnknownOperationException", "")

    def _fields(self, body: Any, allowed: set[str]) -> None:
        if not isinstance(body, dict) or set(body) - allowed:
            self.deviations.append(f"unexpected fields {sorted(set(body or {}) - allowed)}")

    def _stream(self, body: dict[str, Any]) -> Reply | None:
        name, arn = body.get("StreamName"), body.get("StreamARN")
        if name is None and arn is None:
            self.deviations.append("StreamName or StreamARN is required")
        if name is not None and not _NAME.match(str(name)):
            self.deviations.append(f"StreamName {name!r} is not valid")
        if (name or STREAM) != STREAM or (arn or ARN) != ARN:
            message = f"Stream {name or arn} under account 123456789012 not found."
            return aws_error(400, "ResourceNotFoundException", message)
        return None

    def _record(self, where: str, record: Any) -> tuple[str, bytes] | None:
        if not isinstance(record, dict):
            self.deviations.append(f"{where}: not an object")
            return None
        try:
            data = base64.b64decode(record.get("Data", ""), validate=True)
        except (binascii.Error, TypeError):
            self.deviations.append(f"{where}: Data must be base64")
            return None
        key = record.get("PartitionKey")
        if not isinstance(key, str) or not 1 <= len(key) <= 256:
            self.deviations.append(f"{where}: PartitionKey must be 1-256 characters")
            return None
        if len(data) + len(key.encode()) > 1_048_576:
            self.deviations.append(f"{where}: a record holds at most 1 MiB")
        if "ExplicitHashKey" in record and not _HASH_KEY.match(str(record["ExplicitHashKey"])):
            self.deviations.append(f"{where}: ExplicitHashKey is not a 128-bit number")
        return key, data

    def _store(self, key: str, data: bytes) -> dict[str, str]:
        self.stored.append((key, data))
        self.sequence += 1
        return {"SequenceNumber": str(self.sequence), "ShardId": "shardId-000000000000"}

    def put_record(self, body: dict[str, Any]) -> Reply:
        record = self._record("PutRecord", body)
        if record is None:
            return aws_error(400, "InvalidArgumentException", "invalid record")
        return Reply(200, self._store(*record), {"Content-Type": JSON_1_1})

    def put_records(self, body: dict[str, Any]) -> Reply:
        records = body.get("Records")
        if not isinstance(records, list) or not 1 <= len(records) <= 500:
            self.deviations.append("Records must hold 1 to 500 records")
            return aws_error(400, "InvalidArgumentException", "Records has too many entries")
        decoded = [self._record(f"Records[{i}]", raw) for i, raw in enumerate(records)]
        if sum(len(r[0].encode()) + len(r[1]) for r in decoded if r) > 5 * 1_048_576:
            self.deviations.append("a PutRecords call holds at most 5 MiB")
        results: list[dict[str, Any]] = []
        for record in decoded:
            if record is None:
                results.append({"ErrorCode": "InternalFailure", "ErrorMessage": "invalid"})
            elif record[0] in self.throttle_once:
                self.throttle_once.discard(record[0])
                message = (
                    f"Rate exceeded for shard shardId-000000000000 in stream {STREAM} "
                    "under account 123456789012."
                )
                results.append(
                    {"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": message}
                )
            else:
                results.append(self._store(*record))
        failed = sum(1 for r in results if "ErrorCode" in r)
        answer = {"FailedRecordCount": failed, "Records": results, "EncryptionType": "NONE"}
        return Reply(200, answer, {"Content-Type": JSON_1_1})


def add_kinesis(api: Api, profile: str, vendor: VendorMock, *, action: str, **config: Any) -> Any:
    mappings: list[dict[str, Any]] = [
        {"parameter": "data", "template": "{{ tealium_event }},{{ order_id }}"},
        {"parameter": "partition_key", "attribute": "order_id"},
    ]
    if action == "put_records":
        mappings.append({"parameter": "max_batch_age_seconds", "value": 0.2})
    configuration = {
        "region": REGION,
        "access_key_id": KEY_ID,
        "secret_access_key": SECRET,
        "stream": STREAM,
        "base_url": vendor.url,
        **FAST_RETRIES,
        **config,
    }
    return add_connector(
        api,
        profile,
        type="amazon_kinesis",
        name="Clickstream",
        configuration=configuration,
        actions=[{"name": "Stream orders", "type": action, "mappings": mappings}],
    )


def errors(api: Api, profile: str) -> list[dict[str, Any]]:
    return list(api.get(f"{profile}/errors").json()["errors"])


def test_put_record_sends_the_documented_payload(
    api: Api, profile: str, vendor: VendorMock
) -> None:
    kinesis = KinesisApi(vendor)
    add_kinesis(api, profile, vendor, action="put_record", stream=ARN)
    send(api, {"tealium_event": "purchase", "order_id": "A-1001"})
    [request] = vendor.wait_for(1, "/")
    assert request.headers["x-amz-target"] == "Kinesis_20131202.PutRecord"
    assert request.json() == {
        "StreamARN": ARN,
        "Data": base64.b64encode(b"purchase,A-1001").decode(),
        "PartitionKey": "A-1001",
    }
    wait_until(lambda: totals(api, profile)["success"] == 1)
    assert kinesis.stored == [("A-1001", b"purchase,A-1001")]
    assert kinesis.deviations == []


def test_put_records_retries_only_the_throttled_record(
    api: Api, profile: str, vendor: VendorMock
) -> None:
    kinesis = KinesisApi(vendor)
    kinesis.throttle_once.add("A-2")
    add_kinesis(api, profile, vendor, action="put_records")
    events = [{"tealium_event": "purchase", "order_id": f"A-{i}"} for i in range(1, 4)]
    reply = api.client.post(
        "/bulk-event", json={"shared": {"tealium_account": "acme"}, "events": events}
    )
    assert reply.status_code == 200, reply.text
    counts = wait_until(lambda: (t := totals(api, profile)) and t["success"] == 3 and t)
    assert counts["retried"] == 1
    assert counts["error"] == 0
    first, second = vendor.received("/")
    assert len(first.json()["Records"]) == 3
    assert [r["PartitionKey"] for r in second.json()["Records"]] == ["A-2"]
    assert sorted(key for key, _ in kinesis.stored) == ["A-1", "A-2", "A-3"]
    assert kinesis.deviations == []


def test_an_unknown_stream_is_an_error_record(api: Api, profile: str, vendor: VendorMock) -> None:
    kinesis = KinesisApi(vendor)
    add_kinesis(api, profile, vendor, action="put_records", stream="no-such-stream")
    events = [{"tealium_event": "purchase", "order_id": f"A-{i}"} for i in range(2)]
    reply = api.client.post(
        "/bulk-event", json={"shared": {"tealium_account": "acme"}, "events": events}
    )
    assert reply.status_code == 200, reply.text
    records = wait_until(lambda: len(e := errors(api, profile)) == 2 and e)
    assert {r["category"] for r in records} == {"http_4xx"}
    assert all("check the stream name" in r["message"] for r in records)
    assert all(r["attempts"] == 1 for r in records)
    assert len(vendor.received("/")) == 1
    assert kinesis.deviations == []


def test_access_denied_is_an_auth_error(api: Api, profile: str, vendor: VendorMock) -> None:
    kinesis = KinesisApi(vendor)
    message = (
        "User: arn:aws:iam::123456789012:user/sluice is not authorized to perform: "
        f"kinesis:PutRecord on resource: {ARN}"
    )
    vendor.queue("/", aws_error(400, "AccessDeniedException", message))
    add_kinesis(api, profile, vendor, action="put_record")
    send(api, {"tealium_event": "purchase", "order_id": "A-1"})
    [record] = wait_until(lambda: errors(api, profile))
    assert record["category"] == "auth"
    assert "not authorized" in record["message"]
    assert kinesis.deviations == []
