"""Overload protection (SPEC §5): pause at >40 % of 100 failing, probe 50, unhealthy after 5."""

from __future__ import annotations

from sluice.delivery.health import Health, HealthState
from tests.conftest import Api
from tests.support.flows import add_connector, event_data_action, send, wait_until
from tests.support.vendor import Recorded, Reply, VendorMock


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def attempts(health: Health, ok: int, failed: int) -> None:
    for _ in range(ok):
        assert health.may_send()
        health.record(True)
    for _ in range(failed):
        assert health.may_send()
        health.record(False)


def test_judged_only_once_there_are_100_attempts() -> None:
    health = Health(clock=Clock())
    attempts(health, 0, 99)
    assert health.state.state == "ok"
    attempts(health, 0, 1)
    assert health.state.state == "paused"


def test_forty_percent_is_fine_forty_one_pauses() -> None:
    changes: list[HealthState] = []
    health = Health(on_change=changes.append, clock=Clock())
    attempts(health, 60, 40)
    assert health.state.state == "ok"
    attempts(health, 0, 1)  # the window now holds 41 failures of 100
    assert health.state.state == "paused"
    assert "41 of the last 100" in (health.state.reason or "")
    assert [c.state for c in changes] == ["paused"]


def test_paused_waits_then_probes_50_and_resumes() -> None:
    clock = Clock()
    health = Health(clock=clock)
    attempts(health, 0, 100)
    assert not health.may_send()  # waiting is not an attempt
    clock.now += 61
    for _ in range(50):
        assert health.may_send()
    assert not health.may_send()  # the probe is at most 50 deliveries
    for i in range(50):
        health.record(i >= 10)  # 10 of 50 failed: 20 %, not more
    assert health.state.state == "ok"
    assert health.may_send()


def test_a_failing_probe_pauses_again_and_five_pauses_make_it_unhealthy() -> None:
    clock = Clock()
    health = Health(clock=clock)
    attempts(health, 0, 100)
    for pause in range(2, 6):
        clock.now += 61
        for _ in range(50):
            assert health.may_send()
        for _ in range(11):
            health.record(False)
        for _ in range(39):
            health.record(True)
        assert health.state.pauses == pause
    assert health.state.state == "unhealthy"
    health.resume()
    assert health.state.state == "ok"
    assert health.may_send()


def test_a_failing_vendor_shows_as_paused_and_resume_clears_it(
    api: Api, profile: str, vendor: VendorMock
) -> None:
    vendor.respond("/broken", Reply(status=400))
    connector = add_connector(
        api,
        profile,
        configuration={"max_attempts": 1},
        actions=[event_data_action(vendor.url + "/broken")],
    )
    bulk = {"shared": {"tealium_account": "acme"}, "events": [{"n": i} for i in range(150)]}
    assert api.client.post("/bulk-event", json=bulk).status_code == 200
    url = f"{profile}/connectors/{connector['id']}"
    health = wait_until(lambda: (h := api.get(url).json()["health"])["state"] == "paused" and h)
    assert "of the last 100 attempts failed" in health["reason"]
    assert health["since"].endswith("Z")
    assert len(vendor.received("/broken")) < 150  # the rest wait: paused
    assert api.post(f"{url}/resume", {}).status_code == 200
    assert api.get(url).json()["health"]["state"] == "ok"
    wait_until(lambda: len(vendor.received("/broken")) >= 150)
    send(api, {"n": "after"})


def test_a_paused_connector_hands_back_its_attempts_so_others_retries_are_not_held(
    api: Api, profile: str, vendor: VendorMock
) -> None:
    # Every event goes to both connectors. "broken" fails everything and pauses; "flaky"
    # fails the first attempt of every fifth event. An event's retry rows are written
    # once all its first attempts have an outcome, so the paused connector must hand
    # back the attempts queued in memory rather than hold them for its 60 s pause.
    vendor.respond("/broken", Reply(status=500))
    attempts: dict[str, int] = {}
    ok: set[str] = set()

    def flaky(request: Recorded) -> Reply:
        body = request.json()
        attempts[body["event_id"]] = attempts.get(body["event_id"], 0) + 1
        if body["n"] % 5 == 0 and attempts[body["event_id"]] == 1:
            return Reply(status=503)
        ok.add(body["event_id"])
        return Reply(status=200)

    vendor.respond("/flaky", flaky)
    retries = {"first_retry_seconds": 0.05, "max_attempts": 5}
    broken = add_connector(
        api,
        profile,
        configuration={**retries, "max_concurrency": 1},  # a long queue when it pauses
        actions=[event_data_action(vendor.url + "/broken")],
    )
    add_connector(
        api, profile, configuration=retries, actions=[event_data_action(vendor.url + "/flaky")]
    )
    bulk = {"shared": {"tealium_account": "acme"}, "events": [{"n": i} for i in range(400)]}
    response = api.client.post("/bulk-event", json=bulk)
    assert response.status_code == 200
    ids = set(response.json()["event_ids"])
    url = f"{profile}/connectors/{broken['id']}"
    wait_until(lambda: api.get(url).json()["health"]["state"] == "paused")
    wait_until(lambda: ok >= ids, timeout=15)
    assert max(attempts.values()) == 2
    assert api.get(url).json()["health"]["state"] == "paused"  # all while it is paused
