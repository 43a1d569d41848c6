"""The collect API (SPEC §3): every validation, limit and status code."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from sluice.storage.tables import events
from tests.conftest import Api, make_token
from tests.support.flows import reload_config, wait_until


def stored_payloads(api: Api) -> list[dict[str, object]]:
    services = api.client.app.state.services  # type: ignore[attr-defined]
    with services.db.read() as conn:
        rows = conn.execute(events.select().order_by(events.c.seq)).all()
    return [json.loads(r.payload) for r in rows]


def test_post_json_event_is_stored_flat_with_id_and_time(api: Api, profile: str) -> None:
    response = api.client.post(
        "/event",
        json={"tealium_account": "acme", "tealium_event": "purchase", "cart": {"total": 12.5}},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] == 1
    [event_id] = body["event_ids"]
    [stored] = stored_payloads(api)
    assert stored["event_id"] == event_id
    assert stored["tealium_event"] == "purchase"
    assert stored["cart"] == {"total": 12.5}
    assert str(stored["received_at"]).endswith("Z")


def test_event_ids_are_uuid7_in_time_order(api: Api, profile: str) -> None:
    before_ms = time.time_ns() // 1_000_000
    ids = []
    for n in range(3):
        response = api.client.post("/event", json={"tealium_account": "acme", "n": n})
        ids += response.json()["event_ids"]
        time.sleep(0.002)
    after_ms = time.time_ns() // 1_000_000
    parsed = [uuid.UUID(i) for i in ids]
    assert [p.version for p in parsed] == [7, 7, 7]
    assert all(p.variant == uuid.RFC_4122 for p in parsed)
    stamps = [p.int >> 80 for p in parsed]  # the first 48 bits: Unix time in ms
    assert before_ms <= stamps[0] < stamps[1] < stamps[2] <= after_ms
    assert ids == sorted(ids)
    assert len(set(ids)) == 3


def test_form_encoded_and_get_pixel(api: Api, profile: str) -> None:
    form = api.client.post(
        "/event",
        content="tealium_account=acme&tealium_event=signup&consent_categories=email",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert form.status_code == 200
    pixel = api.client.get("/event", params={"tealium_account": "acme", "page": "home"})
    assert pixel.status_code == 200
    assert pixel.headers["content-type"] == "image/gif"
    assert pixel.content.startswith(b"GIF89a")
    stored = stored_payloads(api)
    assert [e.get("tealium_event") for e in stored] == ["signup", None]
    assert stored[1]["page"] == "home"


def test_bulk_events_merge_shared_in_order(api: Api, profile: str) -> None:
    response = api.client.post(
        "/bulk-event",
        json={
            "shared": {"tealium_account": "acme", "site": "shop"},
            "events": [{"n": 1}, {"n": 2, "site": "blog"}, {"n": 3}],
        },
    )
    assert response.status_code == 200
    assert response.json()["accepted"] == 3
    ids = response.json()["event_ids"]
    stored = stored_payloads(api)
    assert [e["event_id"] for e in stored] == ids
    assert [e["site"] for e in stored] == ["shop", "blog", "shop"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param({"tealium_event": "x"}, "tealium_account is required", id="no-account"),
        pytest.param(
            {"tealium_account": "nobody"}, "unknown account/profile", id="unknown-account"
        ),
        pytest.param(
            {"tealium_account": "acme", "tealium_profile": "other"},
            "unknown account/profile",
            id="unknown-profile",
        ),
        pytest.param(
            {"tealium_account": "acme", "tealium_datasource": "zzzzzz"},
            "unknown data source",
            id="unknown-data-source",
        ),
        pytest.param({"tealium_account": "acme", "a.b": 1}, "contains a '.'", id="dot-in-key"),
        pytest.param(
            {"tealium_account": "acme", "x": [{"y": {"c.d": 1}}]}, "contains a '.'", id="deep-dot"
        ),
    ],
)
def test_bad_events_are_400_with_x_error(
    api: Api, profile: str, body: dict[str, object], message: str
) -> None:
    response = api.client.post("/event", json=body)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert message in response.headers["x-error"]


def test_nesting_deeper_than_32_is_refused(api: Api, profile: str) -> None:
    deep: dict[str, object] = {"leaf": 1}
    for _ in range(32):
        deep = {"n": deep}
    response = api.client.post("/event", json={"tealium_account": "acme", "d": deep})
    assert response.status_code == 400
    assert "deeper than 32" in response.json()["error"]
    ok: dict[str, object] = {"leaf": 1}
    for _ in range(30):
        ok = {"n": ok}
    assert api.client.post("/event", json={"tealium_account": "acme", "d": ok}).status_code == 200


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(b"{not json", "malformed JSON", id="malformed"),
        pytest.param(b"[1, 2]", "must be a JSON object", id="array"),
        pytest.param(b'"text"', "must be a JSON object", id="string"),
        pytest.param(b"", "empty", id="empty"),
        pytest.param(b"\xff\xfe{}", "malformed JSON", id="invalid-utf8"),
    ],
)
def test_malformed_bodies(api: Api, profile: str, content: bytes, message: str) -> None:
    response = api.client.post(
        "/event", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_bulk_validation(api: Api, profile: str) -> None:
    missing = api.client.post("/bulk-event", json={"shared": {"tealium_account": "acme"}})
    assert missing.status_code == 400
    assert "events is missing" in missing.json()["error"]
    too_many = api.client.post(
        "/bulk-event", json={"shared": {"tealium_account": "acme"}, "events": [{}] * 1001}
    )
    assert too_many.status_code == 400
    assert "more than 1000" in too_many.json()["error"]
    bad_item = api.client.post(
        "/bulk-event", json={"shared": {"tealium_account": "acme"}, "events": [{}, 3]}
    )
    assert bad_item.status_code == 400
    assert "events[1]" in bad_item.json()["error"]
    assert stored_payloads(api) == []


def test_body_limits_are_413(api: Api, profile: str) -> None:
    big = {"tealium_account": "acme", "blob": "x" * 1_000_001}
    response = api.client.post("/event", json=big)
    assert response.status_code == 413
    assert "larger than" in response.headers["x-error"]
    bulk = {"shared": {"tealium_account": "acme"}, "events": [{"b": "y" * 500_000}] * 9}
    assert api.client.post("/bulk-event", json=bulk).status_code == 413


def test_get_errors_have_status_and_header_but_no_body(api: Api, profile: str) -> None:
    response = api.client.get("/event", params={"tealium_event": "x"})
    assert response.status_code == 400
    assert response.content == b""
    assert "tealium_account" in response.headers["x-error"]


def test_data_source_key_is_accepted(api: Api, profile: str) -> None:
    source = api.post(f"{profile}/data-sources", {"name": "Web", "platform": "web"}).json()
    response = api.client.post(
        "/event", json={"tealium_account": "acme", "tealium_datasource": source["key"]}
    )
    assert response.status_code == 200


def test_rate_limit_is_429_with_retry_after(api: Api, profile: str) -> None:
    assert api.patch(profile, {"rate_limit_per_second": 5}).status_code == 200
    reload_config(api)
    statuses = []
    for _ in range(4):
        bulk = {"shared": {"tealium_account": "acme"}, "events": [{}, {}]}
        statuses.append(api.client.post("/bulk-event", json=bulk))
    assert [r.status_code for r in statuses[:2]] == [200, 200]
    refused = statuses[-1]
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert len(stored_payloads(api)) == 4  # counted per event, refused ones not stored


def test_collect_token_required(api: Api, profile: str) -> None:
    services = api.client.app.state.services  # type: ignore[attr-defined]
    assert api.patch(profile, {"collect_token_required": True}).status_code == 200
    reload_config(api)
    body = {"tealium_account": "acme"}
    assert api.client.post("/event", json=body).status_code == 401
    other = make_token(services, "viewer", ["other/main"])
    refused = api.client.post("/event", json=body, headers={"Authorization": f"Bearer {other}"})
    assert refused.status_code == 401
    mine = make_token(services, "viewer", ["acme/main"])
    accepted = api.client.post("/event", json=body, headers={"Authorization": f"Bearer {mine}"})
    assert accepted.status_code == 200


def test_full_queue_is_503_with_retry_after(api: Api, profile: str) -> None:
    pipeline = api.client.app.state.services.pipeline  # type: ignore[attr-defined]
    pipeline.services.settings.queue_bound = 0
    response = api.client.post("/event", json={"tealium_account": "acme"})
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert stored_payloads(api) == []


def test_disk_full_is_503_and_recovers(api: Api, profile: str, backend: str) -> None:
    import sqlite3

    import psycopg
    from sqlalchemy.exc import OperationalError

    pipeline = api.client.app.state.services.pipeline  # type: ignore[attr-defined]
    # What each driver raises when the disk is full.
    orig: Exception = sqlite3.OperationalError("database or disk is full")
    if backend == "postgresql":
        orig = psycopg.errors.DiskFull(
            'could not extend file "base/5/16384": No space left on device'
        )

    def disk_full() -> None:
        raise OperationalError("INSERT", {}, orig)

    pipeline.writer.fault = disk_full
    refused = api.client.post("/event", json={"tealium_account": "acme"})
    assert refused.status_code == 503
    assert "retry-after" in refused.headers
    pipeline.writer.fault = None
    assert api.client.post("/event", json={"tealium_account": "acme"}).status_code == 200
    assert len(stored_payloads(api)) == 1


def test_new_profile_is_usable_at_once(api: Api) -> None:
    assert api.post("/profiles", {"account": "fresh", "profile": "web"}).status_code == 201
    response = api.client.post(
        "/event", json={"tealium_account": "fresh", "tealium_profile": "web"}
    )
    assert response.status_code == 200


def test_attributes_are_discovered(api: Api, profile: str) -> None:
    api.client.post(
        "/event", json={"tealium_account": "acme", "order_total": 9.5, "customer": {"phone": "+1"}}
    )
    pipeline = api.client.app.state.services.pipeline  # type: ignore[attr-defined]

    def discovered() -> dict[str, str]:
        api.client.portal.call(pipeline._flush_observations)  # type: ignore[attr-defined]
        found = api.get(f"{profile}/attributes").json()["attributes"]
        return {a["name"]: a["type"] for a in found}

    names = wait_until(lambda: (d := discovered()) and "order_total" in d and d)
    assert names["order_total"] == "number"
    assert names["customer.phone"] == "string"
