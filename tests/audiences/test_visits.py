"""Visits end after the profile's inactivity timeout, and end-of-visit actions fire once,
also when the visit was due while ``sluice serve`` was stopped."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from sluice.audiences.model import Visit
from tests.audiences.helpers import (
    audience,
    gte,
    hook,
    purchase,
    purchase_counter,
    visitor,
    visitor_action,
)
from tests.conftest import Api
from tests.support.flows import wait_until
from tests.support.server import SluiceProcess, base_env, cli, http
from tests.support.vendor import VendorMock


def test_a_visit_ends_after_the_timeout_or_24_hours() -> None:
    visit = Visit(started_at=0.0, last_event_at=100.0)
    assert visit.ends_at(1800.0, 86400.0) == 1900.0
    visit.last_event_at = 86000.0
    assert visit.ends_at(1800.0, 86400.0) == 86400.0


def test_in_at_end_of_visit_fires_once_when_the_visit_times_out(
    api: Api, profile: str, vendor: VendorMock
) -> None:
    assert api.patch(profile, {"visit_timeout_minutes": 1}).status_code == 200  # 0.6 s here
    purchase_counter(api, profile)
    buyers = audience(api, profile, "Buyers", gte("purchase_count", 1))
    hook(
        api,
        profile,
        [
            visitor_action(vendor.url + "/end", buyers, "in_at_end_of_visit"),
            visitor_action(vendor.url + "/start", buyers, "in_at_start_of_visit"),
        ],
    )
    purchase(api, "v1", order_id="o1")
    purchase(api, "v1", order_id="o2")
    ended = vendor.wait_for(1, "/end")[0].json()
    assert ended["event"]["tealium_event"] == "visit_end"
    assert ended["visitor_id"] == "v1"
    assert ended["purchase_count"] == 2
    assert ended["current_visit"]["event_count"] == 2
    wait_until(lambda: visitor(api, profile, "v1")["current_visit"] is None)
    started = vendor.wait_for(1, "/start")[0].json()
    assert started["event"]["order_id"] == "o1"
    # The next event opens a second visit: one more start, and later one more end.
    purchase(api, "v1", order_id="o3")
    vendor.wait_for(2, "/start")
    vendor.wait_for(2, "/end")
    time.sleep(1.5)
    assert len(vendor.received("/end")) == 2
    assert len(vendor.received("/start")) == 2


@pytest.mark.parametrize("how", ["sigterm", "kill-9"])
def test_a_visit_due_while_sluice_was_down_ends_after_a_restart(
    tmp_path: Path, vendor: VendorMock, how: str
) -> None:
    database = f"sqlite:///{tmp_path / 'sluice.db'}"
    # One minute of visit timeout lasts 3 s in this server.
    env = base_env(SLUICE_VISIT_TIMEOUT_SCALE="0.05")
    token = cli(database, "tokens", "create", "--name", "t", "--role", "admin", env=env)
    token = token.strip().splitlines()[-1]
    server = SluiceProcess(tmp_path, database, env=env).start()
    try:
        base = server.url + "/api/v1/profiles/acme/main"

        def call(method: str, path: str, body: object = None) -> object:
            status, answer = http(method, base + path, body, token)
            assert status < 300, (status, answer)
            return answer

        assert http("POST", server.url + "/api/v1/profiles", {"account": "acme"}, token)[0] == 201
        call("PATCH", "", {"visit_timeout_minutes": 1})
        rule = {"when": [], "operation": "increment"}
        call(
            "POST",
            "/visitor-attributes",
            {"name": "n", "scope": "visitor", "type": "number", "rules": [rule]},
        )
        members = call("POST", "/audiences", {"name": "Everyone", "conditions": gte("n", 1)})
        assert isinstance(members, dict)
        connector = call(
            "POST",
            "/connectors",
            {"type": "webhook", "name": "Hook", "enabled": True, "configuration": {}},
        )
        assert isinstance(connector, dict)
        action = visitor_action(vendor.url + "/end", members["id"], "in_at_end_of_visit")
        call("POST", f"/connectors/{connector['id']}/actions", {**action, "enabled": True})
        call("POST", f"/connectors/{connector['id']}/publish", {})
        event = {"tealium_account": "acme", "tealium_visitor_id": "v1", "tealium_event": "view"}
        assert http("POST", server.url + "/event", event)[0] == 200
        wait_until(lambda: http("GET", base + "/visitors/v1", token=token)[0] == 200)
        if how == "sigterm":
            assert server.stop() == 0
        else:
            server.kill()
        time.sleep(4)  # past the visit's end, with Sluice down
        assert vendor.received("/end") == []
        server.start()
        ended = vendor.wait_for(1, "/end", timeout=15)
        assert ended[0].json()["visitor_id"] == "v1"
        time.sleep(2)
        assert len(vendor.received("/end")) == 1
        status, shown = http("GET", base + "/visitors/v1", token=token)
        assert status == 200
        assert shown["current_visit"] is None
    finally:
        server.stop()
