"""Audience triggers end to end: collect API in, vendor mock out, a real database."""

from __future__ import annotations

import time

from tests.audiences.helpers import (
    audience,
    hook,
    purchase,
    purchase_counter,
    visitor,
    visitor_action,
)
from tests.conftest import Api
from tests.support.flows import send, totals, wait_until
from tests.support.vendor import VendorMock


def test_joined_then_left_fire_exactly_once(api: Api, profile: str, vendor: VendorMock) -> None:
    purchase_counter(api, profile)
    api.post(
        f"{profile}/visitor-attributes",
        {
            "name": "refunded",
            "scope": "visitor",
            "type": "boolean",
            "rules": [
                {
                    "when": [
                        [{"attribute": "tealium_event", "operator": "equals", "value": "refund"}]
                    ],
                    "operation": "set_true",
                }
            ],
        },
    )
    buyers = audience(
        api,
        profile,
        "Repeat buyers",
        [
            [
                {"attribute": "purchase_count", "operator": "gte", "value": 2},
                {"attribute": "refunded", "operator": "not_equals", "value": True},
            ]
        ],
    )
    hook(
        api,
        profile,
        [
            visitor_action(vendor.url + "/joined", buyers, "joined"),
            visitor_action(vendor.url + "/left", buyers, "left"),
        ],
    )
    purchase(api, "v1", order_id="o1")
    purchase(api, "v1", order_id="o2")
    purchase(api, "v1", order_id="o3")
    joined = vendor.wait_for(1, "/joined")
    body = joined[0].json()
    assert body["visitor_id"] == "v1"
    assert body["purchase_count"] == 2
    assert body["event"]["order_id"] == "o2"
    assert body["audiences"][buyers]["name"] == "Repeat buyers"
    assert body["current_visit"]["event_count"] == 2
    send(api, {"tealium_event": "refund", "tealium_visitor_id": "v1"})
    vendor.wait_for(1, "/left")
    purchase(api, "v1", order_id="o4")
    time.sleep(1.5)
    assert len(vendor.received("/joined")) == 1
    assert len(vendor.received("/left")) == 1
    shown = visitor(api, profile, "v1")
    assert shown["attributes"] == {"purchase_count": 4, "refunded": True}
    assert shown["audiences"] == {}
    assert shown["current_visit"]["event_count"] == 5
    wait_until(lambda: totals(api, profile)["success"] == 2)
    assert totals(api, profile)["triggered"] == 2


def test_a_traced_event_shows_what_audiencestream_did(
    api: Api, profile: str, vendor: VendorMock
) -> None:
    purchase_counter(api, profile)
    buyers = audience(
        api, profile, "Buyers", [[{"attribute": "purchase_count", "operator": "gte", "value": 1}]]
    )
    connector = hook(api, profile, [visitor_action(vendor.url + "/joined", buyers, "joined")])
    purchase(api, "v1", tealium_trace_id="trace-1")
    vendor.wait_for(1, "/joined")
    steps = wait_until(lambda: api.get(f"{profile}/traces/trace-1").json().get("steps"))
    routed = next(s for s in steps if s["step"] == "routed")
    assert routed["data"]["audiencestream"] == {
        "visitor_id": "v1",
        "joined": [buyers],
        "left": [],
        "triggered": [{"action_id": connector["actions"][0]["id"], "name": f"joined {buyers}"}],
        "over_size_limit": False,
    }
