"""The frequency cap (one action per cooldown group and visit, by priority) and delayed
end-of-visit actions, which re-check membership when they fire (with a fake clock)."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import func, select, update

from sluice import timeutil
from sluice.services import Services
from sluice.storage.tables import deliveries, scheduled_jobs
from tests.audiences.helpers import (
    attribute,
    audience,
    gte,
    hook,
    purchase,
    purchase_counter,
    visitor,
    visitor_action,
)
from tests.conftest import Api
from tests.support.flows import send, totals, wait_until
from tests.support.vendor import VendorMock


def _capped(url: str, audience_id: str, trigger: str, group: str, priority: int) -> dict[str, Any]:
    cap = {"cooldown_group": group, "priority": priority}
    return visitor_action(url, audience_id, trigger, name=url.rsplit("/", 1)[1], frequency_cap=cap)


def test_one_action_per_cooldown_group_and_visit(
    api: Api, profile: str, vendor: VendorMock
) -> None:
    api.patch(profile, {"visit_timeout_minutes": 3})  # 1.8 s here: two quick events, one visit
    purchase_counter(api, profile)
    a = audience(api, profile, "A", gte("purchase_count", 1))
    b = audience(api, profile, "B", gte("purchase_count", 1))
    c = audience(api, profile, "C", gte("purchase_count", 2))
    url = vendor.url
    connector = hook(
        api,
        profile,
        [
            _capped(url + "/promo-a", a, "joined", "promo", 2),
            _capped(url + "/promo-b", b, "joined", "promo", 1),
            _capped(url + "/promo-c", c, "joined", "promo", 1),
            visitor_action(url + "/plain", a, "joined", name="plain"),
            _capped(url + "/welcome-a", a, "in_at_start_of_visit", "welcome", 5),
            _capped(url + "/welcome-b", b, "in_at_start_of_visit", "welcome", 3),
        ],
    )
    purchase(api, "v1")  # joins A and B: promo-b wins the group, welcome-b too
    purchase(api, "v1")  # joins C: the promo group is used in this visit
    vendor.wait_for(3)
    wait_until(lambda: visitor(api, profile, "v1")["current_visit"] is None)
    send(api, {"tealium_visitor_id": "v1"})  # a new visit: the welcome group is free again
    vendor.wait_for(2, "/welcome-b")
    time.sleep(1.0)
    received = sorted(r.path for r in vendor.received())
    assert received == ["/plain", "/promo-b", "/welcome-b", "/welcome-b"]
    ids = {action["name"]: action["id"] for action in connector["actions"]}
    dropped = {name: totals(api, profile, action=ids[name])["dropped"] for name in ids}
    assert dropped == {
        "promo-a": 1,
        "promo-b": 0,
        "promo-c": 1,
        "plain": 0,
        "welcome-a": 2,
        "welcome-b": 0,
    }
    assert totals(api, profile)["triggered"] == 8


def _jobs(services: Services) -> int:
    with services.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(scheduled_jobs)).scalar() or 0)


def test_a_delayed_action_fires_only_if_still_in_the_audience(
    api: Api, profile: str, services: Services, vendor: VendorMock
) -> None:
    api.patch(profile, {"visit_timeout_minutes": 1})
    purchase_counter(api, profile)
    refund = [[{"attribute": "tealium_event", "operator": "equals", "value": "refund"}]]
    attribute(api, profile, "refunded", "boolean", [{"when": refund, "operation": "set_true"}])
    buyers = audience(
        api,
        profile,
        "Happy buyers",
        [
            [
                {"attribute": "purchase_count", "operator": "gte", "value": 1},
                {"attribute": "refunded", "operator": "not_equals", "value": True},
            ]
        ],
    )
    action = visitor_action(vendor.url + "/later", buyers, "in_at_end_of_visit", delay_hours=2)
    hook(api, profile, [action])
    purchase(api, "v1", order_id="o1")
    purchase(api, "v2", order_id="o2")
    wait_until(lambda: _jobs(services) == 2)  # both visits ended; both actions wait
    send(api, {"tealium_event": "refund", "tealium_visitor_id": "v2"})  # v2 leaves
    wait_until(lambda: visitor(api, profile, "v2")["audiences"] == {})
    time.sleep(1.0)
    assert vendor.received() == []
    pipeline = services.pipeline
    assert pipeline is not None
    stage = pipeline.audiences
    assert stage is not None
    later = time.time() + 2 * 3600 + 60  # the fake clock: two hours on
    pipeline.writer.run_sync(lambda conn: stage.run_due(conn, pipeline.config, later))
    assert _jobs(services) == 0
    # What fired is due at the fake clock's time: make it due now.
    pipeline.writer.run_sync(lambda conn: conn.execute(update(deliveries).values(next_at=0)))
    body = vendor.wait_for(1, "/later")[0].json()
    assert body["visitor_id"] == "v1"
    assert body["event"]["tealium_event"] == "visit_end"
    assert body["current_visit"]["event_count"] == 1  # as it stood at the visit's end
    # Counted at the fake clock's minute, hence the window reaching past it.
    window = {
        "from": timeutil.iso(time.time() - 3600) or "",
        "to": timeutil.iso(later + 3600) or "",
    }
    counts = wait_until(lambda: (t := totals(api, profile, **window))["success"] == 1 and t)
    assert counts["triggered"] == 2
    assert counts["dropped"] == 1
    time.sleep(1.0)
    assert len(vendor.received()) == 1
