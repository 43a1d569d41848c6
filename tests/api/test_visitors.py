"""``GET`` and ``DELETE P/visitors/{visitor_id}``: the profile, and erasure of everything
stored about the visitor (profile, events, pending deliveries, traces, error records)."""

from __future__ import annotations

from sqlalchemy import func, or_, select

from sluice.services import Services
from sluice.storage.tables import deliveries, error_records, events, traces, visitors
from tests.conftest import Api
from tests.support.flows import add_connector, event_data_action, send, wait_until
from tests.support.vendor import Reply, VendorMock


def _count(services: Services, table: object, *where: object) -> int:
    query = select(func.count()).select_from(table).where(*where)  # type: ignore[arg-type]
    with services.db.read() as conn:
        return int(conn.execute(query).scalar() or 0)


def _stored(services: Services, visitor: str) -> dict[str, int]:
    ids = select(events.c.id).where(events.c.visitor_id == visitor)
    seqs = select(events.c.seq).where(events.c.visitor_id == visitor)
    return {
        "profile": _count(services, visitors, visitors.c.visitor_id == visitor),
        "events": _count(services, events, events.c.visitor_id == visitor),
        "deliveries": _count(services, deliveries, deliveries.c.event_seq.in_(seqs)),
        "traces": _count(
            services, traces, or_(traces.c.visitor_id == visitor, traces.c.event_id.in_(ids))
        ),
        "errors": _count(services, error_records, error_records.c.visitor_id == visitor),
    }


def test_get_a_visitor(api: Api, profile: str) -> None:
    counter = {
        "name": "views",
        "scope": "visitor",
        "type": "number",
        "rules": [{"operation": "increment"}],
    }
    assert api.post(f"{profile}/visitor-attributes", counter).status_code == 201
    send(api, {"tealium_visitor_id": "visitor/with:odd chars"})
    shown = wait_until(
        lambda: (
            (r := api.get(f"{profile}/visitors/visitor%2Fwith%3Aodd%20chars")).status_code == 200
            and r.json()
        )
    )
    assert shown["visitor_id"] == "visitor/with:odd chars"
    assert shown["attributes"] == {"views": 1}
    assert api.get(f"{profile}/visitors/unknown").status_code == 404


def test_erasure_removes_everything_of_the_visitor_only(
    api: Api, profile: str, services: Services, vendor: VendorMock
) -> None:
    counter = {
        "name": "views",
        "scope": "visitor",
        "type": "number",
        "rules": [{"operation": "increment"}],
    }
    assert api.post(f"{profile}/visitor-attributes", counter).status_code == 201
    vendor.respond("/fail", Reply(status=400))
    vendor.respond("/later", Reply(status=503))
    add_connector(api, profile, name="Failing", actions=[event_data_action(vendor.url + "/fail")])
    add_connector(
        api,
        profile,
        name="Retrying",
        configuration={"first_retry_seconds": 3600},
        actions=[event_data_action(vendor.url + "/later")],
    )
    for visitor in ("v1", "v2"):
        send(api, {"tealium_visitor_id": visitor, "tealium_trace_id": f"t-{visitor}"})
    for visitor in ("v1", "v2"):
        wait_until(lambda v=visitor: all(_stored(services, v).values()))  # type: ignore[misc]
    response = api.delete(f"{profile}/visitors/v1")
    assert response.status_code == 204
    assert _stored(services, "v1") == {
        "profile": 0,
        "events": 0,
        "deliveries": 0,
        "traces": 0,
        "errors": 0,
    }
    assert all(_stored(services, "v2").values())
    assert api.get(f"{profile}/visitors/v1").status_code == 404
    assert api.get(f"{profile}/traces/t-v1").status_code == 404
    assert api.get(f"{profile}/traces/t-v2").status_code == 200
    assert api.delete(f"{profile}/visitors/v1").status_code == 204  # idempotent
    entries = api.get(f"{profile}/audit").json()["entries"]
    assert any(e["action"] == "visitor.erase" and e["object"] == "v1" for e in entries)
    # The visitor starts afresh with the next event.
    send(api, {"tealium_visitor_id": "v1"})
    fresh = wait_until(
        lambda: (r := api.get(f"{profile}/visitors/v1")).status_code == 200 and r.json()
    )
    assert fresh["attributes"] == {"views": 1}
