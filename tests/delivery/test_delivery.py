"""Delivery end to end: collect API → routing → webhook → a vendor mock over real HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api
from tests.support.flows import (
    FAST_RETRIES,
    add_connector,
    event_data_action,
    send,
    totals,
    wait_until,
)
from tests.support.vendor import Recorded, Reply, VendorMock


def test_event_is_delivered_with_idempotency_key_and_counted(
    api: Api, profile: str, vendor: VendorMock
) -> None:
    connector = add_connector(api, profile, actions=[event_data_action(vendor.url + "/hook")])
    action_id = connector["actions"][0]["id"]
    accepted = send(api, {"tealium_event": "purchase", "order_id": "A1"})
    event_id = accepted["event_ids"][0]
    [request] = vendor.wait_for(1, "/hook")
    body = request.json()
    assert body["order_id"] == "A1"
    assert body["event_id"] == event_id
    assert body["tealium_event"] == "purchase"
    assert request.headers["idempotency-key"] == f"{event_id}:{action_id}"
    counts = wait_until(lambda: (t := totals(api, profile)) and t["success"] == 1 and t)
    assert counts == {
        "triggered": 1,
        "success": 1,
        "error": 0,
        "retried": 0,
        "filtered_consent": 0,
        "dropped": 0,
    }


def test_retryable_failures_are_retried_then_succeed(
    api: Api, profile: str, vendor: VendorMock
) -> None:
    vendor.queue("/flaky", Reply(status=503), Reply(status=429, headers={"Retry-After": "0"}))
    add_connector(
        api,
        profile,
        configuration=FAST_RETRIES,
        actions=[event_data_action(vendor.url + "/flaky")],
    )
    send(api, {"tealium_event": "view"})
    vendor.wait_for(3, "/flaky")
    counts = wait_until(lambda: (t := totals(api, profile)) and t["success"] == 1 and t)
    assert counts["retried"] == 2
    assert counts["error"] == 0


def test_final_failure_becomes_an_error_record(api: Api, profile: str, vendor: VendorMock) -> None:
    vendor.respond("/denied", Reply(status=401, body={"message": "bad key"}))
    connector = add_connector(
        api,
        profile,
        configuration={"auth_type": "bearer", "token": "s3cr3t-token", **FAST_RETRIES},
        actions=[event_data_action(vendor.url + "/denied")],
    )
    event_id = send(api, {"tealium_event": "view"})["event_ids"][0]
    errors = wait_until(lambda: api.get(f"{profile}/errors").json()["errors"])
    assert len(vendor.received("/denied")) == 1  # auth errors are not retried
    [record] = errors
    assert record["category"] == "auth"
    assert record["status_code"] == 401
    assert record["event_id"] == event_id
    assert record["connector_id"] == connector["id"]
    assert record["attempts"] == 1
    assert record["request"]["headers"]["Authorization"] == "Bearer ********"
    assert "s3cr3t-token" not in api.get(f"{profile}/errors.csv").text
    assert record["response"]["status"] == 401


def test_exhausted_retries_end_in_the_error_log(api: Api, profile: str, vendor: VendorMock) -> None:
    vendor.respond("/down", Reply(status=500))
    add_connector(
        api, profile, configuration=FAST_RETRIES, actions=[event_data_action(vendor.url + "/down")]
    )
    send(api, {"tealium_event": "view"})
    [record] = wait_until(lambda: api.get(f"{profile}/errors").json()["errors"])
    assert record["category"] == "http_5xx"
    assert record["attempts"] == 3
    assert len(vendor.received("/down")) == 3
    counts = totals(api, profile)
    assert counts["triggered"] == 1
    assert counts["error"] == 1
    assert counts["retried"] == 2


def test_replay_sends_failed_events_again(api: Api, profile: str, vendor: VendorMock) -> None:
    vendor.respond("/later", Reply(status=400, body={"error": "not yet"}))
    connector = add_connector(
        api, profile, configuration=FAST_RETRIES, actions=[event_data_action(vendor.url + "/later")]
    )
    send(api, {"tealium_event": "view", "n": 1})
    send(api, {"tealium_event": "view", "n": 2})
    wait_until(lambda: len(api.get(f"{profile}/errors").json()["errors"]) == 2)
    vendor.respond("/later", Reply(status=200))
    replayed = api.post(f"{profile}/errors/replay", {"connector": connector["id"]})
    assert replayed.status_code == 202
    assert replayed.json() == {"replayed": 2}
    vendor.wait_for(4, "/later")
    again = api.post(f"{profile}/errors/replay", {"connector": connector["id"]})
    assert again.json() == {"replayed": 0}
    counts = wait_until(lambda: (t := totals(api, profile)) and t["success"] == 2 and t)
    assert counts["triggered"] == 4
    assert counts["error"] == 2


def test_timeout_of_a_non_idempotent_action_is_not_retried(
    api: Api, profile: str, vendor: VendorMock
) -> None:
    vendor.respond("/slow", Reply(delay=2.0))
    add_connector(
        api,
        profile,
        type="slack",
        name="Alerts",
        configuration={"timeout_seconds": 0.3, **FAST_RETRIES},
        actions=[
            {
                "name": "Alert",
                "type": "post_channel_message",
                "mappings": [
                    {"parameter": "webhook_url", "value": vendor.url + "/slow"},
                    {"parameter": "message", "template": "Order {{ order_id }}"},
                ],
            }
        ],
    )
    send(api, {"order_id": "Z9"})
    [record] = wait_until(lambda: api.get(f"{profile}/errors").json()["errors"])
    assert record["category"] == "timeout"
    assert record["attempts"] == 1
    assert len(vendor.received("/slow")) == 1
    assert vendor.received("/slow")[0].json() == {"text": "Order Z9"}


def test_batched_data_sends_one_request_per_batch(
    api: Api, profile: str, vendor: VendorMock
) -> None:
    add_connector(
        api,
        profile,
        actions=[
            {
                "name": "Batch",
                "type": "send_batched_data",
                "mappings": [
                    {"parameter": "url", "value": vendor.url + "/batch"},
                    {"parameter": "max_batch_size", "value": 10},
                    {"parameter": "max_batch_age_seconds", "value": 0.5},
                ],
            }
        ],
    )
    events = [{"tealium_account": "acme", "n": i} for i in range(25)]
    assert api.client.post("/bulk-event", json={"events": events}).status_code == 200
    wait_until(lambda: sum(len(r.json()["events"]) for r in vendor.received("/batch")) == 25)
    sizes = sorted(len(r.json()["events"]) for r in vendor.received("/batch"))
    assert sizes == [5, 10, 10]
    counts = wait_until(lambda: (t := totals(api, profile)) and t["success"] == 25 and t)
    assert counts["triggered"] == 25


def test_a_hanging_vendor_does_not_delay_a_healthy_one(
    api: Api, profile: str, vendor: VendorMock
) -> None:
    vendor.respond("/hang", Reply(hang=True))
    add_connector(
        api,
        profile,
        name="Hanging",
        configuration={"timeout_seconds": 30, "max_concurrency": 2},
        actions=[event_data_action(vendor.url + "/hang")],
    )
    add_connector(api, profile, name="Healthy", actions=[event_data_action(vendor.url + "/ok")])
    for i in range(40):
        send(api, {"n": i})
    healthy = vendor.wait_for(40, "/ok", timeout=5)
    assert len(healthy) == 40
    assert len(vendor.received("/hang")) == 2  # its concurrency, all stuck


def test_private_destinations_are_refused_without_the_setting(
    api: Api, profile: str, vendor: VendorMock
) -> None:
    api.client.app.state.services.pipeline.transport.allow_private = False  # type: ignore[attr-defined]
    add_connector(api, profile, actions=[event_data_action(vendor.url + "/private")])
    send(api, {"n": 1})
    [record] = wait_until(lambda: api.get(f"{profile}/errors").json()["errors"])
    assert record["category"] == "connection"
    assert "private" in record["message"]
    assert vendor.received("/private") == []


def test_events_after_the_newest_ones_were_erased_are_still_routed(
    api: Api, profile: str, vendor: VendorMock
) -> None:
    """Erasing a visitor deletes their events; new events must not reuse their seqs."""
    from sluice.storage.tables import events

    add_connector(api, profile, actions=[event_data_action(vendor.url + "/after")])
    for i in range(3):
        send(api, {"n": i})
    vendor.wait_for(3, "/after")
    services = api.client.app.state.services  # type: ignore[attr-defined]
    with services.db.begin() as conn:
        conn.execute(events.delete())
    send(api, {"n": "new"})
    got = vendor.wait_for(4, "/after")
    assert got[-1].json()["n"] == "new"


def test_a_routing_transaction_that_fails_is_routed_again(
    api: Api, profile: str, vendor: VendorMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The router must not move past events whose transaction did not commit."""
    from sluice.pipeline import Pipeline

    add_connector(api, profile, actions=[event_data_action(vendor.url + "/again")])
    original = Pipeline._observe
    failures: list[int] = []

    def fail_once(*args: Any, **kwargs: Any) -> Any:
        if not failures:
            failures.append(1)
            raise RuntimeError("injected failure inside the routing transaction")
        return original(*args, **kwargs)

    # _observe runs last in the routing transaction: the failure rolls all of it back.
    monkeypatch.setattr(Pipeline, "_observe", fail_once)
    send(api, {"n": 1})
    [got] = vendor.wait_for(1, "/again")
    assert got.json()["n"] == 1
    assert failures == [1]


def test_retries_go_out_when_due_not_at_the_next_poll(
    api: Api, profile: str, vendor: VendorMock
) -> None:
    """A retry row is claimable once the outcome write that makes it commits: its
    connector is woken for it then, rather than at a poll up to seconds later."""
    seen: set[str] = set()

    def first_fails(request: Recorded) -> Reply:
        # One event in ten fails its first attempt: few enough not to pause the connector.
        event = request.json()
        if event["n"] % 10 or event["event_id"] in seen:
            return Reply()
        seen.add(event["event_id"])
        return Reply(status=503)

    vendor.respond("/retry", first_fails)
    add_connector(
        api,
        profile,
        configuration={"first_retry_seconds": 0.02, "max_attempts": 3},
        actions=[event_data_action(vendor.url + "/retry")],
    )
    for start in range(0, 400, 100):
        events = [{"tealium_event": "view", "n": n} for n in range(start, start + 100)]
        response = api.client.post(
            "/bulk-event", json={"shared": {"tealium_account": "acme"}, "events": events}
        )
        assert response.status_code == 200
    requests = vendor.wait_for(440, "/retry", timeout=30)
    attempts: dict[str, list[float]] = {}
    for request in requests:
        attempts.setdefault(request.json()["event_id"], []).append(request.at)
    gaps = sorted(times[1] - times[0] for times in attempts.values() if len(times) > 1)
    assert len(gaps) == 40
    # Backoff (0.02 s ± 20 %) plus the outcome write (every 0.05 s) and a claim: well under
    # the dispatcher's one-second look at a connector whose next row is not due yet.
    assert gaps[-1] < 0.6, gaps[-10:]
    counts = wait_until(lambda: (t := totals(api, profile)) and t["success"] == 400 and t)
    assert counts["retried"] == 40


@pytest.mark.sqlite_only("SQLite moves its own route mark; PostgreSQL: storage.datasets")
def test_routed_events_are_recorded_by_route_and_mark_not_rewritten(
    api: Api, profile: str, vendor: VendorMock
) -> None:
    """Routing appends each event's route and the route mark follows within a second or
    two, dropping the routes below it; no event row is rewritten to mark it."""
    from sqlalchemy import func, select

    from sluice.storage import queue
    from sluice.storage.tables import event_routes, events

    add_connector(api, profile, actions=[event_data_action(vendor.url + "/marked")])
    for i in range(5):
        send(api, {"n": i})
    vendor.wait_for(5, "/marked")
    services = api.client.app.state.services  # type: ignore[attr-defined]
    with services.db.read() as conn:
        newest = conn.execute(select(func.max(events.c.seq))).scalar()

    def mark_past_them() -> bool:
        with services.db.read() as conn:
            return bool(queue.route_low(conn) > newest)

    wait_until(mark_past_them, timeout=5)
    with services.db.read() as conn:
        assert conn.execute(select(func.count()).select_from(event_routes)).scalar() == 0
        assert conn.execute(select(func.count()).where(events.c.routed)).scalar() == 0
        assert queue.count_unrouted(conn) == 0
