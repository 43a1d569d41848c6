"""AudienceStream on PostgreSQL: the same behaviour in one process, and exact counters
when two worker processes route the events of one visitor at the same time."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sluice.app import create_app
from sluice.services import Services
from sluice.settings import Settings
from tests.audiences.conftest import SCALE
from tests.audiences.helpers import (
    audience,
    gte,
    hook,
    purchase,
    purchase_counter,
    visitor,
    visitor_action,
)
from tests.conftest import Api, make_token
from tests.support.flows import send, wait_until
from tests.support.server import SluiceProcess, base_env, cli, http
from tests.support.vendor import VendorMock

pytestmark = pytest.mark.pg


@pytest.fixture
def pg_api(migrated_pg_url: str) -> Iterator[Api]:
    settings = Settings(
        database_url=migrated_pg_url,
        secret_key="test-secret-key",
        allow_private_destinations=True,
        visit_timeout_scale=SCALE,
    )
    services = Services.open(settings)
    with TestClient(create_app(services=services)) as client:
        yield Api(client, make_token(services, "admin"))
    services.db.dispose()


def test_audiences_end_to_end_on_postgres(pg_api: Api, vendor: VendorMock) -> None:
    api = pg_api
    assert api.post("/profiles", {"account": "acme", "profile": "main"}).status_code == 201
    profile = "/profiles/acme/main"
    api.patch(profile, {"visit_timeout_minutes": 1})
    purchase_counter(api, profile)
    buyers = audience(api, profile, "Buyers", gte("purchase_count", 2))
    hook(
        api,
        profile,
        [
            visitor_action(vendor.url + "/joined", buyers, "joined"),
            visitor_action(vendor.url + "/end", buyers, "in_at_end_of_visit"),
        ],
    )
    purchase(api, "v1")
    purchase(api, "v1")
    assert vendor.wait_for(1, "/joined")[0].json()["purchase_count"] == 2
    assert vendor.wait_for(1, "/end")[0].json()["event"]["tealium_event"] == "visit_end"
    assert api.get(f"{profile}/audiences/{buyers}").json()["member_count"] == 1
    assert visitor(api, profile, "v1")["attributes"] == {"purchase_count": 2}
    assert api.delete(f"{profile}/visitors/v1").status_code == 204
    assert api.get(f"{profile}/visitors/v1").status_code == 404
    send(api, {"tealium_visitor_id": "v1", "tealium_event": "purchase"})
    wait_until(lambda: api.get(f"{profile}/visitors/v1").status_code == 200)
    assert visitor(api, profile, "v1")["attributes"] == {"purchase_count": 1}


def test_two_workers_keep_one_visitors_counters_exact(tmp_path: Path, pg_url: str) -> None:
    env = base_env()
    cli(pg_url, "migrate", env=env)
    token = cli(pg_url, "tokens", "create", "--name", "t", "--role", "admin", env=env)
    token = token.strip().splitlines()[-1]
    server = SluiceProcess(tmp_path, pg_url, env=env).start()
    worker = SluiceProcess(tmp_path, pg_url, command="worker", env=env).start()
    try:
        base = server.url + "/api/v1/profiles/acme/main"
        assert http("POST", server.url + "/api/v1/profiles", {"account": "acme"}, token)[0] == 201
        rule = {"operation": "increment"}
        body = {"name": "n", "scope": "visitor", "type": "number", "rules": [rule]}
        assert http("POST", base + "/visitor-attributes", body, token)[0] == 201
        event = {"tealium_account": "acme", "tealium_visitor_id": "v1"}
        wait_until(
            lambda: http("POST", server.url + "/event", {"tealium_account": "acme"})[0] == 200
        )

        def post(_: int) -> int:
            return http("POST", server.url + "/bulk-event", {"shared": event, "events": [{}] * 5})[
                0
            ]

        with ThreadPoolExecutor(max_workers=16) as pool:
            assert set(pool.map(post, range(40))) == {200}

        def count() -> object:
            status, shown = http("GET", base + "/visitors/v1", token=token)
            return status == 200 and shown["attributes"]["n"] == 200 and shown

        shown = wait_until(count, timeout=30)
        assert shown["current_visit"]["event_count"] == 200
    finally:
        worker.stop()
        server.stop()
