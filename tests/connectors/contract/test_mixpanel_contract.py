"""Contract: Sluice against a strict stand-in for Mixpanel's ``/import`` endpoint, end to end.

The stand-in checks the request as documented: ``POST /import?strict=1&project_id=...`` with
a service account in HTTP Basic authentication, a JSON array of at most 2,000 events and
10 MB, each ``{"event", "properties"}`` with ``time``, ``distinct_id`` and a ``$insert_id`` of
at most 36 letters, digits or dashes. With ``strict=1`` it imports the valid events and
answers 400 with ``failed_records`` for the others (e.g. a time more than an hour ahead).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from sluice.connectors.catalog.mixpanel import CONNECTOR, insert_id
from sluice.connectors.helpers import basic_auth
from sluice.connectors.registry import Registry
from sluice.services import Services
from sluice.settings import Settings
from tests.conftest import Api
from tests.support.flows import FAST_RETRIES, add_connector, send, totals, wait_until
from tests.support.vendor import Recorded, Reply, VendorMock

PROJECT = "3141592"
USERNAME = "sluice.1a2b3c.mp-service-account"
SECRET = "s3cr3t-S3CR3T-s3cr3t"
INSERT_ID = re.compile(r"^[A-Za-z0-9-]{1,36}$")


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    """The real services, with Mixpanel in the catalog whether or not it is registered yet."""
    opened = Services.open(settings)
    if CONNECTOR.id not in opened.registry:
        opened.registry = Registry([*opened.registry.all(), CONNECTOR])
    yield opened
    opened.db.dispose()


class MixpanelApi:
    """Mixpanel's /import endpoint, strictly; ``deviations`` lists what Sluice got wrong."""

    def __init__(self, vendor: VendorMock) -> None:
        self.deviations: list[str] = []
        self.imported: dict[str, dict[str, Any]] = {}  # by $insert_id: duplicates are dropped
        vendor.respond("/", self.answer)

    def _failure(self, i: int, event: Any) -> tuple[str, str] | None:
        """A documented validation failure of one event, as (field, message), if any."""
        props = event.get("properties") if isinstance(event, dict) else None
        if not isinstance(props, dict) or not isinstance(event.get("event"), str):
            self.deviations.append(f"event {i}: must be {{'event': name, 'properties': {{...}}}}")
            return ("event", "'event' and 'properties' are required")
        if not isinstance(props.get("distinct_id"), str):
            self.deviations.append(f"event {i}: distinct_id must be a string")
        if not INSERT_ID.match(str(props.get("$insert_id", ""))):
            self.deviations.append(f"event {i}: $insert_id must be 1-36 letters, digits or -")
        if len(props) > 255:
            self.deviations.append(f"event {i}: more than 255 properties")
        moment = props.get("time")
        if not isinstance(moment, int):
            self.deviations.append(f"event {i}: time must be an integer")
            return ("properties.time", "'properties.time' is invalid")
        seconds = moment / 1000 if moment > 10**11 else moment
        if seconds > time.time() + 3600:
            return (
                "properties.time",
                "'properties.time' is invalid: more than 1 hour in the future",
            )
        return None

    def answer(self, r: Recorded) -> Reply:
        if r.method != "POST" or r.path != "/import":
            self.deviations.append(f"{r.method} {r.path}: expected POST /import")
            return Reply(404, {"code": 404, "error": "not found"})
        if r.query != {"strict": "1", "project_id": PROJECT}:
            self.deviations.append(f"/import: query must be strict=1&project_id, got {r.query}")
        if r.headers.get("authorization") != basic_auth(USERNAME, SECRET):
            return Reply(
                401, {"code": 401, "error": "Invalid credentials", "status": "Unauthorized"}
            )
        if r.headers.get("content-type", "").split(";")[0] != "application/json":
            self.deviations.append("/import: Content-Type must be application/json")
        if len(r.body) > 10_000_000:
            self.deviations.append("/import: more than 10 MB")
            return Reply(413, {"code": 413, "error": "request too large"})
        events = r.json()
        if not isinstance(events, list) or not 1 <= len(events) <= 2000:
            self.deviations.append("/import: the body must be an array of 1 to 2,000 events")
            return Reply(400, {"code": 400, "error": "invalid body", "status": "Bad Request"})
        failed = []
        for i, event in enumerate(events):
            failure = self._failure(i, event)
            if failure is None:
                self.imported.setdefault(event["properties"]["$insert_id"], event)
                continue
            field, message = failure
            record = {"index": i, "insert_id": event["properties"].get("$insert_id")}
            failed.append({**record, "field": field, "message": message})
        imported = len(events) - len(failed)
        if failed:
            return Reply(
                400,
                {
                    "code": 400,
                    "error": "some data points in the request failed validation",
                    "status": "Bad Request",
                    "num_records_imported": imported,
                    "failed_records": failed,
                },
            )
        return Reply(200, {"code": 200, "num_records_imported": imported, "status": "OK"})


ACTION = {
    "name": "Import",
    "type": "import_events",
    "mappings": [
        {"parameter": "event_name", "attribute": "tealium_event"},
        {"parameter": "distinct_id", "attribute": "customer_id"},
        {"parameter": "time", "attribute": "ts"},
        {"parameter": "properties", "key": "order_id", "attribute": "order_id"},
        {"parameter": "properties", "key": "order_total", "attribute": "order_total"},
        {"parameter": "max_batch_age_seconds", "value": 0.3},
    ],
}


def add_mixpanel(api: Api, profile: str, vendor: VendorMock, secret: str = SECRET) -> Any:
    configuration = {
        "project_id": PROJECT,
        "username": USERNAME,
        "secret": secret,
        "base_url": vendor.url,
        **FAST_RETRIES,
    }
    return add_connector(
        api,
        profile,
        type="mixpanel",
        name="Mixpanel",
        configuration=configuration,
        actions=[ACTION],
    )


def errors(api: Api, profile: str) -> list[dict[str, Any]]:
    return list(api.get(f"{profile}/errors").json()["errors"])


def test_an_event_is_imported_as_documented(api: Api, profile: str, vendor: VendorMock) -> None:
    mixpanel = MixpanelApi(vendor)
    connector = add_mixpanel(api, profile, vendor)
    action_id = connector["actions"][0]["id"]
    event = {"tealium_event": "Purchase", "customer_id": "user-42", "ts": "1714564800"}
    event_id = send(api, {**event, "order_id": "A-1001", "order_total": 42.5})["event_ids"][0]
    [request] = vendor.wait_for(1, "/import")
    assert request.json() == [
        {
            "event": "Purchase",
            "properties": {
                "order_id": "A-1001",
                "order_total": 42.5,
                "time": 1714564800000,
                "distinct_id": "user-42",
                "$insert_id": insert_id(f"{event_id}:{action_id}"),
            },
        }
    ]
    wait_until(lambda: totals(api, profile)["success"] == 1)
    assert mixpanel.deviations == []


def test_failed_records_fail_alone(api: Api, profile: str, vendor: VendorMock) -> None:
    mixpanel = MixpanelApi(vendor)
    add_mixpanel(api, profile, vendor)
    future = str(int(time.time() + 3 * 86400))
    times = ["1714564800", future, "1714564801"]
    events = [{"tealium_event": "Viewed", "customer_id": "u-1", "ts": t} for t in times]
    reply = api.client.post(
        "/bulk-event", json={"shared": {"tealium_account": "acme"}, "events": events}
    )
    assert reply.status_code == 200, reply.text
    failed = reply.json()["event_ids"][1]
    [record] = wait_until(lambda: errors(api, profile))
    assert record["event_id"] == failed
    assert record["category"] == "http_4xx"
    assert "properties.time" in record["message"]
    counts = wait_until(lambda: (t := totals(api, profile)) and t["success"] == 2 and t)
    assert counts["error"] == 1
    assert counts["retried"] == 0  # Mixpanel imported the others already
    assert len(vendor.received("/import")) == 1
    assert len(mixpanel.imported) == 2
    assert mixpanel.deviations == []


def test_invalid_credentials_are_an_auth_error(api: Api, profile: str, vendor: VendorMock) -> None:
    mixpanel = MixpanelApi(vendor)
    add_mixpanel(api, profile, vendor, secret="wrong-secret-9999")
    send(api, {"tealium_event": "Viewed", "customer_id": "u-1"})
    [record] = wait_until(lambda: errors(api, profile))
    assert record["category"] == "auth"
    assert record["status_code"] == 401
    assert record["request"]["headers"]["Authorization"] == "Basic ********"
    assert mixpanel.deviations == []


def test_server_errors_are_retried(api: Api, profile: str, vendor: VendorMock) -> None:
    mixpanel = MixpanelApi(vendor)
    vendor.queue("/import", Reply(503, {"code": 503, "error": "unavailable"}))
    add_mixpanel(api, profile, vendor)
    send(api, {"tealium_event": "Viewed", "customer_id": "u-1"})
    counts = wait_until(lambda: (t := totals(api, profile)) and t["success"] == 1 and t)
    assert counts["retried"] == 1
    assert len(mixpanel.imported) == 1
    assert mixpanel.deviations == []
