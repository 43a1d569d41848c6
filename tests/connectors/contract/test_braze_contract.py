"""Contract: Sluice against a strict stand-in for Braze's REST API, end to end.

The stand-in checks every request against Braze's documented /users/track and
/users/identify (method, path, bearer key, JSON body, object schemas, 75/50 limits), records
each deviation, and answers as Braze does: 201 ``success`` (with per-object ``errors`` for
objects it refuses), 401 for an unknown key. A test fails on any deviation.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from sluice.connectors.catalog.braze import CONNECTOR
from sluice.connectors.registry import Registry
from sluice.services import Services
from sluice.settings import Settings
from tests.conftest import Api
from tests.support.flows import FAST_RETRIES, add_connector, send, totals, wait_until
from tests.support.vendor import Recorded, Reply, VendorMock

KEY = "b1a2c3d4-0000-4000-8000-000000000001"
IDENTIFIERS = ("external_id", "user_alias", "braze_id", "email", "phone")
BLOCKED = "provided external_id is blacklisted and disallowed"


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    """The real services, with Braze in the catalog whether or not it is registered yet."""
    opened = Services.open(settings)
    if CONNECTOR.id not in opened.registry:
        opened.registry = Registry([*opened.registry.all(), CONNECTOR])
    yield opened
    opened.db.dispose()


def _is_time(value: Any) -> bool:
    try:
        datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return False
    return True


class BrazeApi:
    """Braze's documented REST API, strictly; ``deviations`` lists what Sluice got wrong."""

    def __init__(self, vendor: VendorMock, blocked: tuple[str, ...] = ()) -> None:
        self.deviations: list[str] = []
        self.blocked = blocked
        vendor.respond("/", self.unknown)
        vendor.respond("/users/track", self.track)
        vendor.respond("/users/identify", self.identify)

    def unknown(self, r: Recorded) -> Reply:
        self.deviations.append(f"{r.method} {r.path}: no such Braze endpoint")
        return Reply(404, {"message": "Not Found"})

    def _common(self, r: Recorded, path: str) -> tuple[Reply | None, Any]:
        if r.method != "POST" or r.path != path:
            self.deviations.append(f"{r.method} {r.path}: expected POST {path}")
        if r.headers.get("content-type", "").split(";")[0] != "application/json":
            self.deviations.append(f"{path}: Content-Type must be application/json")
        auth = r.headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            self.deviations.append(f"{path}: the REST API key must be sent as a Bearer token")
        if auth != f"Bearer {KEY}":
            return Reply(401, {"message": "Invalid API key"}), None
        try:
            return None, r.json()
        except ValueError:
            self.deviations.append(f"{path}: the body is not JSON")
            return Reply(400, {"message": "Bad Request"}), None

    def _object(self, kind: str, i: int, obj: Any) -> list[str]:
        where = f"{kind}[{i}]"
        if not isinstance(obj, dict):
            return [f"{where}: not an object"]
        problems = []
        if not any(k in obj for k in IDENTIFIERS):
            problems.append(f"{where}: one of {', '.join(IDENTIFIERS)} is required")
        alias = obj.get("user_alias")
        if alias is not None and not (
            isinstance(alias, dict)
            and isinstance(alias.get("alias_name"), str)
            and isinstance(alias.get("alias_label"), str)
        ):
            problems.append(f"{where}: user_alias needs alias_name and alias_label")
        if "_update_existing_only" in obj and not isinstance(obj["_update_existing_only"], bool):
            problems.append(f"{where}: _update_existing_only must be a boolean")
        if kind in ("events", "purchases"):
            if not _is_time(obj.get("time")):
                problems.append(f"{where}: time must be an ISO 8601 string")
            props = obj.get("properties", {})
            if not isinstance(props, dict) or any(k.startswith("$") for k in props):
                problems.append(f"{where}: properties must be an object without $ names")
        if kind == "events" and not (isinstance(obj.get("name"), str) and obj["name"]):
            problems.append(f"{where}: name is required")
        if kind == "purchases":
            if not isinstance(obj.get("product_id"), str):
                problems.append(f"{where}: product_id is required")
            currency = obj.get("currency")
            if not (isinstance(currency, str) and len(currency) == 3 and currency.isupper()):
                problems.append(f"{where}: currency must be an ISO 4217 code")
            if isinstance(obj.get("price"), bool) or not isinstance(obj.get("price"), int | float):
                problems.append(f"{where}: price must be a number")
            quantity = obj.get("quantity", 1)
            if not (isinstance(quantity, int) and 1 <= quantity <= 100):
                problems.append(f"{where}: quantity must be an integer up to 100")
        return problems

    def track(self, r: Recorded) -> Reply:
        refused, body = self._common(r, "/users/track")
        if refused:
            return refused
        if (
            not isinstance(body, dict)
            or not body
            or set(body) - {"attributes", "events", "purchases"}
        ):
            self.deviations.append(f"/users/track: unexpected body keys {sorted(body or {})}")
            return Reply(400, {"message": "Bad Request"})
        answer: dict[str, Any] = {"message": "success"}
        errors = []
        for kind, objects in body.items():
            if not isinstance(objects, list) or not 1 <= len(objects) <= 75:
                self.deviations.append(f"/users/track: {kind} must hold 1 to 75 objects")
                return Reply(400, {"message": "Max Input Length Exceeded"})
            for i, obj in enumerate(objects):
                self.deviations.extend(self._object(kind, i, obj))
                if obj.get("external_id") in self.blocked:
                    errors.append({"type": BLOCKED, "input_array": kind, "index": i})
            answer[f"{kind}_processed"] = len(objects)
        if errors:
            answer["errors"] = errors
        return Reply(201, answer)

    def identify(self, r: Recorded) -> Reply:
        refused, body = self._common(r, "/users/identify")
        if refused:
            return refused
        aliases = body.get("aliases_to_identify") if isinstance(body, dict) else None
        if not isinstance(aliases, list) or not 1 <= len(aliases) <= 50:
            self.deviations.append("/users/identify: aliases_to_identify must hold 1 to 50")
            return Reply(
                400,
                {"message": "The max number of external_ids and aliases per request was exceeded"},
            )
        for i, alias in enumerate(aliases):
            if not isinstance(alias, dict) or not isinstance(alias.get("external_id"), str):
                self.deviations.append(f"aliases_to_identify[{i}]: external_id is required")
            self.deviations.extend(self._object("aliases_to_identify", i, alias))
        return Reply(201, {"aliases_processed": len(aliases), "message": "success"})


TRACK_MAPPINGS = [
    {"parameter": "user_id", "attribute": "customer_id"},
    {"parameter": "attributes", "key": "first_name", "attribute": "first_name"},
    {"parameter": "event_name", "attribute": "tealium_event"},
    {"parameter": "event_properties", "key": "order_id", "attribute": "order_id"},
    {"parameter": "event_time", "attribute": "ts"},
    {"parameter": "product_id", "attribute": "product"},
    {"parameter": "currency", "attribute": "currency"},
    {"parameter": "price", "attribute": "order_total"},
    {"parameter": "max_batch_age_seconds", "value": 0.3},
]


def add_braze(api: Api, profile: str, vendor: VendorMock, key: str = KEY, **action: Any) -> Any:
    track = {"name": "Track purchases", "type": "track_user", "mappings": TRACK_MAPPINGS}
    return add_connector(
        api,
        profile,
        type="braze",
        name="Braze Prod",
        configuration={"api_key": key, "base_url": vendor.url, **FAST_RETRIES},
        actions=[{**track, **action}],
    )


def errors(api: Api, profile: str) -> list[dict[str, Any]]:
    return list(api.get(f"{profile}/errors").json()["errors"])


def test_track_user_sends_the_documented_payload(
    api: Api, profile: str, vendor: VendorMock
) -> None:
    braze = BrazeApi(vendor)
    add_braze(api, profile, vendor)
    send(
        api,
        {
            "tealium_event": "purchase",
            "customer_id": "user-42",
            "first_name": "Ada",
            "order_id": "A-1001",
            "ts": "2024-05-01T12:00:00Z",
            "product": "backpack",
            "currency": "eur",
            "order_total": "42.50",
        },
    )
    [request] = vendor.wait_for(1, "/users/track")
    assert request.json() == {
        "attributes": [{"external_id": "user-42", "first_name": "Ada"}],
        "events": [
            {
                "external_id": "user-42",
                "time": "2024-05-01T12:00:00Z",
                "name": "purchase",
                "properties": {"order_id": "A-1001"},
            }
        ],
        "purchases": [
            {
                "external_id": "user-42",
                "time": "2024-05-01T12:00:00Z",
                "product_id": "backpack",
                "currency": "EUR",
                "price": 42.5,
            }
        ],
    }
    wait_until(lambda: totals(api, profile)["success"] == 1)
    assert braze.deviations == []


def test_a_batch_reports_each_event_on_its_own(api: Api, profile: str, vendor: VendorMock) -> None:
    braze = BrazeApi(vendor, blocked=("user-blocked",))
    add_braze(api, profile, vendor)
    users = ["user-1", "user-blocked", "user-3"]
    events = [
        {"customer_id": u, "tealium_event": "viewed", "ts": "2024-05-01T12:00:00Z"} for u in users
    ]
    reply = api.client.post(
        "/bulk-event", json={"shared": {"tealium_account": "acme"}, "events": events}
    )
    assert reply.status_code == 200, reply.text
    blocked_event = reply.json()["event_ids"][1]
    [record] = wait_until(lambda: errors(api, profile))
    assert len(vendor.received("/users/track")) == 1  # one call carried the whole batch
    assert len(vendor.received("/users/track")[0].json()["events"]) == 3
    assert record["event_id"] == blocked_event
    assert record["category"] == "http_4xx"
    assert "blacklisted" in record["message"]
    counts = wait_until(lambda: (t := totals(api, profile)) and t["success"] == 2 and t)
    assert counts["error"] == 1
    assert counts["retried"] == 0
    assert braze.deviations == []


def test_an_unknown_key_is_an_auth_error(api: Api, profile: str, vendor: VendorMock) -> None:
    braze = BrazeApi(vendor)
    add_braze(api, profile, vendor, key="wrong-key-0000")
    send(api, {"tealium_event": "viewed", "customer_id": "user-1"})
    [record] = wait_until(lambda: errors(api, profile))
    assert record["category"] == "auth"
    assert record["status_code"] == 401
    assert record["attempts"] == 1
    assert record["request"]["headers"]["Authorization"] == "Bearer ********"
    assert braze.deviations == []


def test_rate_limits_wait_for_the_window_to_reset(
    api: Api, profile: str, vendor: VendorMock
) -> None:
    braze = BrazeApi(vendor)
    reset = str(int(time.time()))
    vendor.queue(
        "/users/track", Reply(429, {"message": "Rate limited"}, {"X-RateLimit-Reset": reset})
    )
    add_braze(api, profile, vendor)
    send(api, {"tealium_event": "viewed", "customer_id": "user-1"})
    counts = wait_until(lambda: (t := totals(api, profile)) and t["success"] == 1 and t)
    assert counts["retried"] == 1
    assert len(vendor.received("/users/track")) == 2
    assert braze.deviations == []


def test_identify_user_batches_aliases(api: Api, profile: str, vendor: VendorMock) -> None:
    braze = BrazeApi(vendor)
    add_braze(
        api,
        profile,
        vendor,
        name="Identify",
        type="identify_user",
        mappings=[
            {"parameter": "external_id", "attribute": "customer_id"},
            {"parameter": "alias_name", "attribute": "tealium_visitor_id"},
            {"parameter": "alias_label", "value": "tealium_visitor_id"},
            {"parameter": "max_batch_age_seconds", "value": 0.3},
        ],
    )
    events = [{"customer_id": f"user-{i}", "tealium_visitor_id": f"visitor-{i}"} for i in range(2)]
    reply = api.client.post(
        "/bulk-event", json={"shared": {"tealium_account": "acme"}, "events": events}
    )
    assert reply.status_code == 200, reply.text
    [request] = vendor.wait_for(1, "/users/identify")
    assert request.json() == {
        "aliases_to_identify": [
            {
                "external_id": f"user-{i}",
                "user_alias": {"alias_name": f"visitor-{i}", "alias_label": "tealium_visitor_id"},
            }
            for i in range(2)
        ]
    }
    wait_until(lambda: totals(api, profile)["success"] == 2)
    assert braze.deviations == []
