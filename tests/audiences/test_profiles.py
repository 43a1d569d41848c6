"""Visitor profiles through the collect API: exact counters under concurrency, every
attribute type, consent from the profile, and the size cap."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from sluice.settings import Settings
from tests.audiences.conftest import SCALE
from tests.audiences.helpers import (
    PURCHASE,
    attribute,
    audience,
    gte,
    hook,
    purchase,
    purchase_counter,
    visitor,
    visitor_action,
    visitor_once,
)
from tests.conftest import Api
from tests.support.flows import event_data_action, send, totals, wait_until
from tests.support.vendor import VendorMock


def test_concurrent_events_of_one_visitor_keep_every_counter_exact(api: Api, profile: str) -> None:
    purchase_counter(api, profile)
    attribute(
        api,
        profile,
        "items",
        "tally",
        [{"when": PURCHASE, "operation": "increment", "attribute": "sku"}],
    )
    send(api, {"tealium_event": "warm_up"})  # the collect API knows the new profile
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda i: purchase(api, "v1", sku=f"s{i % 4}"), range(200)))
    shown = visitor_once(api, profile, "v1", lambda v: v["attributes"].get("purchase_count") == 200)
    assert shown["attributes"]["items"] == {"s0": 50, "s1": 50, "s2": 50, "s3": 50}
    assert shown["current_visit"]["event_count"] == 200


def test_every_type_through_the_collect_api(api: Api, profile: str) -> None:
    attribute(
        api,
        profile,
        "lifetime_value",
        "number",
        [{"operation": "increment", "attribute": "order_total"}],
    )
    attribute(
        api, profile, "first_city", "string", [{"operation": "set_first", "attribute": "city"}]
    )
    attribute(
        api,
        profile,
        "subscribed",
        "boolean",
        [{"when": [[{"attribute": "newsletter", "operator": "is_true"}]], "operation": "set_true"}],
    )
    attribute(
        api, profile, "VIP", "badge", [{"when": gte("order_total", 100), "operation": "assign"}]
    )
    attribute(api, profile, "last_seen", "date", [{"operation": "set_now"}])
    attribute(api, profile, "categories", "set", [{"operation": "add", "attribute": "category"}])
    attribute(
        api,
        profile,
        "category_views",
        "tally",
        [{"operation": "increment", "attribute": "category"}],
    )
    attribute(api, profile, "visit_views", "number", [{"operation": "increment"}], scope="visit")
    send(api, {"tealium_visitor_id": "v1", "order_total": 40, "city": "Oslo", "category": "shoes"})
    send(
        api,
        {
            "tealium_visitor_id": "v1",
            "order_total": 150,
            "city": "Rome",
            "category": ["hats", "shoes"],
            "newsletter": "yes",
        },
    )
    shown = visitor_once(api, profile, "v1", lambda v: v["current_visit"]["event_count"] == 2)
    attributes = shown["attributes"]
    assert attributes["lifetime_value"] == 190
    assert attributes["first_city"] == "Oslo"
    assert attributes["subscribed"] is True
    assert attributes["last_seen"].endswith("Z")
    assert attributes["categories"] == ["hats", "shoes"]
    assert attributes["category_views"] == {"shoes": 2, "hats": 1}
    assert shown["badges"] == ["VIP"]
    assert shown["current_visit"]["attributes"] == {"visit_views": 2}
    assert shown["current_visit"]["started_at"].endswith("Z")
    assert set(shown) == {
        "visitor_id",
        "attributes",
        "badges",
        "audiences",
        "current_visit",
        "updated_at",
    }
    # Events without a visitor id skip AudienceStream.
    send(api, {"order_total": 1000})
    assert api.get(f"{profile}/visitors/nobody").status_code == 404


def test_audiences_see_badges_visit_attributes_and_other_audiences(
    api: Api, profile: str, vendor: VendorMock
) -> None:
    attribute(
        api, profile, "VIP", "badge", [{"when": gte("order_total", 100), "operation": "assign"}]
    )
    attribute(api, profile, "visit_views", "number", [{"operation": "increment"}], scope="visit")
    vip = audience(
        api, profile, "VIPs", [[{"attribute": "badges", "operator": "contains", "value": "VIP"}]]
    )
    busy = audience(
        api,
        profile,
        "Busy VIPs",
        [
            [
                {"attribute": "audiences", "operator": "contains", "value": "VIPs"},
                {"attribute": "visit_views", "operator": "gte", "value": 3},
            ]
        ],
    )
    hook(api, profile, [visitor_action(vendor.url + "/busy", busy, "joined")])
    send(api, {"tealium_visitor_id": "v1", "order_total": 150})
    send(api, {"tealium_visitor_id": "v1"})
    send(api, {"tealium_visitor_id": "v1"})
    body = vendor.wait_for(1, "/busy")[0].json()
    assert body["badges"] == ["VIP"]
    assert body["visit_views"] == 3
    assert set(body["audiences"]) == {vip, busy}
    listed = {
        a["name"]: a["member_count"] for a in api.get(f"{profile}/audiences").json()["audiences"]
    }
    assert listed == {"VIPs": 1, "Busy VIPs": 1}


def test_consent_is_the_profiles_last_known(api: Api, profile: str, vendor: VendorMock) -> None:
    api.patch(profile, {"consent": {"enforcement": True}})
    purchase_counter(api, profile)
    buyers = audience(api, profile, "Buyers", gte("purchase_count", 1))
    action = visitor_action(vendor.url + "/joined", buyers, "joined")
    hook(api, profile, [{**action, "consent_categories": ["email"]}])
    send(api, {"tealium_visitor_id": "v1", "consent_categories": ["analytics"]})
    purchase(api, "v1")  # no categories on this event: the profile's last known count
    send(api, {"tealium_visitor_id": "v2", "consent_categories": "email, analytics"})
    purchase(api, "v2")
    vendor.wait_for(1, "/joined")
    counts = wait_until(lambda: (t := totals(api, profile))["success"] == 1 and t)
    assert counts["triggered"] == 2
    assert counts["filtered_consent"] == 1
    assert [r.json()["visitor_id"] for r in vendor.received("/joined")] == ["v2"]


class TestSizeCap:
    @pytest.fixture
    def settings(self, database_url: str) -> Settings:
        return Settings(
            database_url=database_url,
            secret_key="test-secret-key",
            allow_private_destinations=True,
            commit_window_ms=1.0,
            visit_timeout_scale=SCALE,
            visitor_profile_max_bytes=2000,
        )

    def test_an_event_that_would_pass_the_cap_leaves_the_profile_unchanged(
        self, api: Api, profile: str, vendor: VendorMock, caplog: pytest.LogCaptureFixture
    ) -> None:
        purchase_counter(api, profile)
        attribute(api, profile, "note", "string", [{"operation": "set", "attribute": "note"}])
        hook(api, profile, [event_data_action(vendor.url + "/events")])
        purchase(api, "v1", note="short")
        before = wait_until(lambda: api.get(f"{profile}/visitors/v1").json().get("attributes"))
        assert before == {"purchase_count": 1, "note": "short"}
        metrics_before = _over_size(api)
        purchase(api, "v1", note="x" * 3000)
        vendor.wait_for(2, "/events")  # event-sourced actions still get the event
        shown = wait_until(lambda: (v := visitor(api, profile, "v1")).get("over_size_limit") and v)
        assert shown["attributes"] == {"purchase_count": 1, "note": "short"}
        assert shown["current_visit"]["event_count"] == 1
        assert _over_size(api) == metrics_before + 1
        assert any("v1" in r.getMessage() for r in caplog.records if r.name == "sluice.audiences")
        purchase(api, "v1", note="fine again")
        shown = wait_until(
            lambda: (v := visitor(api, profile, "v1"))["attributes"]["purchase_count"] == 2 and v
        )
        assert shown["attributes"]["note"] == "fine again"
        assert "over_size_limit" not in shown


def _over_size(api: Api) -> float:
    text = api.client.get("/metrics").text
    for line in text.splitlines():
        if line.startswith("sluice_visitor_profile_over_size_total"):
            return float(line.split()[-1])
    return 0.0
