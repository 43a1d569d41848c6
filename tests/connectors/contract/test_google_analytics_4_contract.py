"""Contract: Sluice against a strict stand-in for the GA4 Measurement Protocol, end to end.

The stand-in checks ``POST /mp/collect`` and ``/debug/mp/collect`` as documented: the
``measurement_id`` and ``api_secret`` query parameters, a JSON body under 130 kB with a
``client_id`` and 1 to 25 events, event and parameter names (40 characters, letters, digits
and _, not reserved), at most 25 parameters, user properties as ``{name: {"value"}}``,
consent as GRANTED/DENIED, times in microseconds within the last 72 hours. Like Google, the
collection endpoint answers 204 to anything it receives; the validation server answers 200
with ``validationMessages`` (a parameter value over 100 characters is refused there).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from sluice.connectors.catalog.google_analytics_4 import CONNECTOR, RESERVED_EVENTS
from sluice.connectors.registry import Registry
from sluice.services import Services
from sluice.settings import Settings
from tests.conftest import Api
from tests.support.flows import FAST_RETRIES, add_connector, totals, wait_until
from tests.support.vendor import Recorded, Reply, VendorMock

MEASUREMENT_ID = "G-TEST12345"
SECRET = "mp-secret-Zq81xY"
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,39}$")
BODY_KEYS = {
    "client_id",
    "user_id",
    "timestamp_micros",
    "user_properties",
    "user_data",
    "consent",
    "non_personalized_ads",
    "user_location",
    "ip_override",
    "device",
    "validation_behavior",
    "events",
}


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    """The real services, with GA4 in the catalog whether or not it is registered yet."""
    opened = Services.open(settings)
    if CONNECTOR.id not in opened.registry:
        opened.registry = Registry([*opened.registry.all(), CONNECTOR])
    yield opened
    opened.db.dispose()


class MeasurementProtocol:
    """The documented collection and validation endpoints; ``deviations`` lists mistakes."""

    def __init__(self, vendor: VendorMock) -> None:
        self.deviations: list[str] = []
        vendor.respond("/", self.answer)

    def _event(self, i: int, event: Any) -> list[str]:
        if not isinstance(event, dict) or set(event) - {"name", "params", "timestamp_micros"}:
            return [f"events[{i}]: not {{name, params, timestamp_micros}}: {event!r}"]
        problems = []
        name = event.get("name")
        if not isinstance(name, str) or not NAME.match(name) or name in RESERVED_EVENTS:
            problems.append(f"events[{i}]: invalid or reserved name {name!r}")
        params = event.get("params", {})
        if not isinstance(params, dict) or len(params) > 25:
            problems.append(f"events[{i}]: params must be an object of at most 25")
        bad = [k for k in params if not NAME.match(k) or k.startswith(("ga_", "google_"))]
        problems.extend(f"events[{i}]: invalid parameter name {k!r}" for k in bad)
        micros = event.get("timestamp_micros")
        now = time.time() * 1e6
        if micros is not None and not (
            isinstance(micros, int) and now - 72 * 3600e6 < micros <= now
        ):
            problems.append(f"events[{i}]: timestamp_micros {micros!r} not in the last 72 h")
        return problems

    def _check(self, r: Recorded) -> list[str]:
        problems = []
        if r.method != "POST":
            problems.append(f"{r.method}: only POST is supported")
        if r.query != {"measurement_id": MEASUREMENT_ID, "api_secret": SECRET}:
            problems.append(f"query {r.query!r}: measurement_id and api_secret expected")
        if r.headers.get("content-type", "").split(";")[0] != "application/json":
            problems.append("Content-Type must be application/json")
        if len(r.body) >= 130_000:
            problems.append(f"{len(r.body)} bytes: the body must be under 130 kB")
        body = r.json()
        if not isinstance(body, dict) or set(body) - BODY_KEYS:
            return [*problems, f"unexpected body keys: {sorted(set(body) - BODY_KEYS)}"]
        if not isinstance(body.get("client_id"), str) or not body["client_id"]:
            problems.append("client_id is required for a web stream")
        events = body.get("events")
        if not isinstance(events, list) or not 1 <= len(events) <= 25:
            return [*problems, "events must hold 1 to 25 events"]
        for i, event in enumerate(events):
            problems.extend(self._event(i, event))
        for name, prop in (body.get("user_properties") or {}).items():
            if len(name) > 24 or not isinstance(prop, dict) or set(prop) != {"value"}:
                problems.append(f"user property {name!r}: must be {{'value': ...}}")
        for key, value in (body.get("consent") or {}).items():
            if key not in ("ad_user_data", "ad_personalization") or value not in (
                "GRANTED",
                "DENIED",
            ):
                problems.append(f"consent {key}={value!r} is not documented")
        return problems

    def answer(self, r: Recorded) -> Reply:
        if r.path not in ("/mp/collect", "/debug/mp/collect"):
            self.deviations.append(f"{r.method} {r.path}: not a Measurement Protocol endpoint")
            return Reply(404, "")
        self.deviations.extend(self._check(r))
        if r.path == "/mp/collect":
            return Reply(204, b"")  # Google answers 2xx to whatever it received
        messages = [
            {
                "fieldPath": "events",
                "description": f"Event at index: [{i}] has parameter [{k}] with a value over "
                "100 characters.",
                "validationCode": "VALUE_INVALID",
            }
            for i, event in enumerate(r.json()["events"])
            for k, v in event.get("params", {}).items()
            if isinstance(v, str) and len(v) > 100
        ]
        return Reply(200, {"validationMessages": messages})


ACTION = {
    "name": "GA4 events",
    "type": "send_event",
    "mappings": [
        {"parameter": "event_name", "attribute": "tealium_event"},
        {"parameter": "client_id", "attribute": "ga_client_id"},
        {"parameter": "user_id", "attribute": "customer_id"},
        {"parameter": "event_time", "attribute": "ts"},
        {"parameter": "event_params", "key": "transaction_id", "attribute": "order_id"},
        {"parameter": "event_params", "key": "value", "attribute": "order_total"},
        {"parameter": "event_params", "key": "note", "attribute": "note"},
        {"parameter": "user_properties", "key": "tier", "attribute": "tier"},
        {"parameter": "consent_ad_user_data", "value": "GRANTED"},
        {"parameter": "max_batch_age_seconds", "value": 0.3},
    ],
}


def add_ga4(api: Api, profile: str, vendor: VendorMock, **config: Any) -> Any:
    configuration = {
        "measurement_id": MEASUREMENT_ID,
        "api_secret": SECRET,
        "base_url": vendor.url,
        **FAST_RETRIES,
        **config,
    }
    return add_connector(
        api,
        profile,
        type="google_analytics_4",
        name="GA4",
        configuration=configuration,
        actions=[ACTION],
    )


def bulk(api: Api, events: list[dict[str, Any]]) -> list[str]:
    reply = api.client.post(
        "/bulk-event", json={"shared": {"tealium_account": "acme"}, "events": events}
    )
    assert reply.status_code == 200, reply.text
    return list(reply.json()["event_ids"])


def errors(api: Api, profile: str) -> list[dict[str, Any]]:
    return list(api.get(f"{profile}/errors").json()["errors"])


def test_events_of_one_client_share_a_request(api: Api, profile: str, vendor: VendorMock) -> None:
    ga = MeasurementProtocol(vendor)
    add_ga4(api, profile, vendor)
    ts = int(time.time()) - 60
    shared = {"ga_client_id": "111.222", "customer_id": "user-42", "tier": "gold", "ts": ts}
    bulk(
        api,
        [
            {**shared, "tealium_event": "view_item"},
            {"tealium_event": "view_item", "ga_client_id": "333.444", "ts": ts},
            {**shared, "tealium_event": "purchase", "order_id": "A-1001", "order_total": 42.5},
        ],
    )
    wait_until(lambda: totals(api, profile)["success"] == 3)
    bodies = sorted(
        (r.json() for r in vendor.received("/mp/collect")), key=lambda b: b["client_id"]
    )
    micros = ts * 1_000_000
    assert bodies == [
        {
            "client_id": "111.222",
            "user_id": "user-42",
            "user_properties": {"tier": {"value": "gold"}},
            "consent": {"ad_user_data": "GRANTED"},
            "events": [
                {"name": "view_item", "params": {}, "timestamp_micros": micros},
                {
                    "name": "purchase",
                    "params": {"transaction_id": "A-1001", "value": 42.5},
                    "timestamp_micros": micros,
                },
            ],
        },
        {
            "client_id": "333.444",
            "consent": {"ad_user_data": "GRANTED"},
            "events": [{"name": "view_item", "params": {}, "timestamp_micros": micros}],
        },
    ]
    assert ga.deviations == []


def test_a_reserved_event_name_never_reaches_google(
    api: Api, profile: str, vendor: VendorMock
) -> None:
    ga = MeasurementProtocol(vendor)
    add_ga4(api, profile, vendor)
    ids = bulk(
        api,
        [
            {"tealium_event": "sign_up", "ga_client_id": "111.222"},
            {"tealium_event": "session_start", "ga_client_id": "111.222"},
        ],
    )
    [record] = wait_until(lambda: errors(api, profile))
    assert record["event_id"] == ids[1]
    assert record["category"] == "mapping"
    assert "reserved" in record["message"]
    wait_until(lambda: totals(api, profile)["success"] == 1)
    [request] = vendor.received("/mp/collect")
    assert [e["name"] for e in request.json()["events"]] == ["sign_up"]
    assert ga.deviations == []


def test_validation_messages_fail_the_event_they_name(
    api: Api, profile: str, vendor: VendorMock
) -> None:
    ga = MeasurementProtocol(vendor)
    add_ga4(api, profile, vendor, validate_with_debug_endpoint=True)
    events = [
        {"tealium_event": "generate_lead", "ga_client_id": "111.222", "note": n}
        for n in ("ok", "x" * 101)
    ]
    ids = bulk(api, events)
    [record] = wait_until(lambda: errors(api, profile))
    assert record["event_id"] == ids[1]
    assert record["category"] == "http_4xx"
    assert "VALUE_INVALID" in record["message"]
    assert SECRET not in record["request"]["url"]  # the secret in the query is masked
    assert record["request"]["url"].endswith("api_secret=********")
    wait_until(lambda: totals(api, profile)["success"] == 1)
    assert len(vendor.received("/debug/mp/collect")) == 1
    assert vendor.received("/mp/collect") == []
    assert ga.deviations == []


def test_a_server_error_is_retried(api: Api, profile: str, vendor: VendorMock) -> None:
    ga = MeasurementProtocol(vendor)
    vendor.queue("/mp/collect", Reply(503, "Service Unavailable"))
    add_ga4(api, profile, vendor)
    bulk(api, [{"tealium_event": "purchase", "ga_client_id": "111.222"}])
    wait_until(lambda: totals(api, profile)["success"] == 1)
    counts = totals(api, profile)
    assert counts["retried"] == 1
    assert len(vendor.received("/mp/collect")) == 2
    assert ga.deviations == []
