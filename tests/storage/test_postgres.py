"""The same product on PostgreSQL: migrations, the API, and the pipeline end to end.

Runs in the ``pg`` tier (``make test-pg`` starts a throwaway PostgreSQL 15 and sets
``SLUICE_TEST_PG_URL``). On PostgreSQL every delivery is a row claimed with
``FOR UPDATE SKIP LOCKED`` and numbered with ``RETURNING``: a different code path from
SQLite's, so it is exercised here end to end.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from sluice.app import create_app
from sluice.services import Services
from sluice.settings import Settings
from sluice.storage import migrate
from tests.conftest import Api, make_token
from tests.support.flows import (
    FAST_RETRIES,
    add_connector,
    event_data_action,
    send,
    totals,
    wait_until,
)
from tests.support.vendor import Reply, VendorMock

pytestmark = pytest.mark.pg


@pytest.fixture
def pg_api(migrated_pg_url: str) -> Iterator[Api]:
    settings = Settings(
        database_url=migrated_pg_url, secret_key="test-secret-key", allow_private_destinations=True
    )
    services = Services.open(settings)
    app = create_app(services=services)
    with TestClient(app) as client:
        yield Api(client, make_token(services, "admin"))
    services.db.dispose()


def test_migrations_are_idempotent_and_current(pg_url: str) -> None:
    services = Services.open(Settings(database_url=pg_url, secret_key="k"))
    assert not migrate.is_current(services.db)
    migrate.upgrade(services.db)
    migrate.upgrade(services.db)
    assert migrate.is_current(services.db)
    services.db.dispose()


def test_pipeline_end_to_end_on_postgres(pg_api: Api) -> None:
    api = pg_api
    vendor = VendorMock().start()
    try:
        assert api.post("/profiles", {"account": "acme", "profile": "main"}).status_code == 201
        profile = "/profiles/acme/main"
        vendor.queue("/pg", Reply(status=503))
        connector = add_connector(
            api,
            profile,
            configuration=FAST_RETRIES,
            actions=[event_data_action(vendor.url + "/pg")],
        )
        ids = [send(api, {"n": i, "tealium_event": "purchase"})["event_ids"][0] for i in range(30)]
        wait_until(lambda: len({r.json()["event_id"] for r in vendor.received("/pg")}) == 30)
        counts = wait_until(lambda: (t := totals(api, profile)) and t["success"] == 30 and t)
        assert counts["triggered"] == 30
        assert counts["retried"] == 1
        assert {r.json()["event_id"] for r in vendor.received("/pg")} == set(ids)

        vendor.respond("/pg", Reply(status=400))
        send(api, {"n": 99})
        [record] = wait_until(lambda: api.get(f"{profile}/errors").json()["errors"])
        assert record["category"] == "http_4xx"
        vendor.respond("/pg", Reply(status=200))
        replay = api.post(f"{profile}/errors/replay", {"connector": connector["id"]})
        assert replay.json() == {"replayed": 1}
        wait_until(lambda: totals(api, profile)["success"] == 31)
        versions = api.get(f"{profile}/connectors/{connector['id']}/versions").json()
        assert versions["versions"][0]["version"] == 1
    finally:
        vendor.stop()
