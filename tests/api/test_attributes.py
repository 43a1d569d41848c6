from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select

from sluice import timeutil
from sluice.auth.principals import SYSTEM
from sluice.config import attributes, profiles
from sluice.services import Services
from sluice.storage.db import Database
from sluice.storage.tables import profiles as profiles_table
from tests.conftest import Api

T0 = 1_700_000_000.0


def _profile_id(services: Services, account: str = "acme", name: str = "main") -> str:
    with services.db.read() as conn:
        return str(
            conn.execute(
                select(profiles_table.c.id).where(
                    profiles_table.c.account == account, profiles_table.c.profile == name
                )
            ).scalar_one()
        )


def _observe(services: Services, observations: dict[str, Any]) -> None:
    with services.db.begin() as conn:
        attributes.record_observations(conn, _profile_id(services), observations)


def test_define_and_list(api: Api, profile: str) -> None:
    created = api.post(
        f"{profile}/attributes", {"name": "order_total", "type": "number", "description": "$"}
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert set(body) == {
        "id",
        "name",
        "type",
        "sample",
        "description",
        "defined",
        "first_seen",
        "last_seen",
    }
    assert body["defined"] is True
    assert body["sample"] is None
    assert body["first_seen"] is None
    assert api.get(f"{profile}/attributes").json() == {"attributes": [body]}
    again = api.post(f"{profile}/attributes", {"name": "order_total", "type": "string"})
    assert again.status_code == 409


def test_record_observations_upserts(api: Api, profile: str, services: Services) -> None:
    _observe(
        services,
        {
            "order_id": ("string", "A1", T0, T0 + 10),
            "order_total": ("number", 12.5, T0, T0 + 10),
            "items": ("array", [{"sku": "x"}], T0, T0),
        },
    )
    _observe(
        services,
        {
            # An older batch (written late) moves first_seen back but not the sample.
            "order_id": ("string", "OLD", T0 - 100, T0 - 50),
            "order_total": ("number", 99, T0 + 20, T0 + 30),
        },
    )
    found = {a["name"]: a for a in api.get(f"{profile}/attributes").json()["attributes"]}
    assert list(found) == ["items", "order_id", "order_total"]
    assert found["order_id"]["sample"] == "A1"
    assert found["order_id"]["first_seen"] == "2023-11-14T22:11:40.000Z"
    assert found["order_id"]["last_seen"] == "2023-11-14T22:13:30.000Z"
    assert found["order_total"]["sample"] == 99
    assert found["items"]["sample"] == [{"sku": "x"}]
    assert all(a["defined"] is False for a in found.values())


def test_defining_a_discovered_attribute_upgrades_it(
    api: Api, profile: str, services: Services
) -> None:
    _observe(services, {"coupon": ("string", "SAVE10", T0, T0)})
    discovered = api.get(f"{profile}/attributes").json()["attributes"][0]
    defined = api.post(f"{profile}/attributes", {"name": "coupon", "type": "string"})
    assert defined.status_code == 201
    assert defined.json()["id"] == discovered["id"]
    assert defined.json()["defined"] is True
    assert defined.json()["sample"] == "SAVE10"
    # Traffic of another type does not change a defined attribute's type.
    _observe(services, {"coupon": ("number", 10, T0 + 1, T0 + 1)})
    after = api.get(f"{profile}/attributes").json()["attributes"][0]
    assert after["type"] == "string"
    assert after["sample"] == 10
    assert after["defined"] is True


def test_discovered_type_follows_traffic(api: Api, profile: str, services: Services) -> None:
    _observe(services, {"flag": ("string", "yes", T0, T0)})
    _observe(services, {"flag": ("boolean", True, T0 + 1, T0 + 1)})
    assert api.get(f"{profile}/attributes").json()["attributes"][0]["type"] == "boolean"


def test_many_observations_in_chunks(api: Api, profile: str, services: Services) -> None:
    _observe(services, {f"attr_{i:04d}": ("number", i, T0, T0) for i in range(1200)})
    assert len(api.get(f"{profile}/attributes").json()["attributes"]) == 1200
    assert len(api.get(f"{profile}/attributes?limit=10").json()["attributes"]) == 10


def test_huge_sample_is_cut(api: Api, profile: str, services: Services) -> None:
    _observe(services, {"blob": ("string", "x" * 10_000, T0, T0)})
    sample = api.get(f"{profile}/attributes").json()["attributes"][0]["sample"]
    assert isinstance(sample, str)
    assert len(sample) < 2100


def test_prefix_filter_ignores_case_and_like_wildcards(
    api: Api, profile: str, services: Services
) -> None:
    _observe(
        services,
        dict.fromkeys(
            ("Order_id", "order_total", "orderXtotal", "customer.email", "page"),
            ("string", "v", T0, T0),
        ),
    )
    names = [a["name"] for a in api.get(f"{profile}/attributes?q=ORDER").json()["attributes"]]
    assert names == ["Order_id", "orderXtotal", "order_total"]
    names = [a["name"] for a in api.get(f"{profile}/attributes?q=order_").json()["attributes"]]
    assert names == ["Order_id", "order_total"]
    names = [a["name"] for a in api.get(f"{profile}/attributes?q=customer.").json()["attributes"]]
    assert names == ["customer.email"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "number"}, "name"),
        ({"name": "x", "type": "date"}, "type"),
        ({"name": "x", "colour": "red"}, "colour"),
    ],
    ids=["no-name", "bad-type", "unknown-key"],
)
def test_validation_names_the_field(
    api: Api, profile: str, body: dict[str, Any], field: str
) -> None:
    response = api.post(f"{profile}/attributes", body)
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == field


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "null"),
        (True, "boolean"),
        (1, "number"),
        (1.5, "number"),
        ("s", "string"),
        ([1], "array"),
        ({"a": 1}, "object"),
    ],
    ids=["null", "bool", "int", "float", "str", "list", "dict"],
)
def test_json_type(value: Any, expected: str) -> None:
    assert attributes.json_type(value) == expected


@pytest.mark.pg
def test_record_observations_on_postgresql(migrated_pg_url: str) -> None:
    db = Database(migrated_pg_url)
    try:
        profile = profiles.create(db, SYSTEM, f"pg{uuid.uuid4().hex[:12]}")
        with db.begin() as conn:
            attributes.record_observations(
                conn, profile.id, {f"a{i:04d}": ("number", i, T0, T0 + 1) for i in range(1200)}
            )
        with db.begin() as conn:
            attributes.record_observations(
                conn,
                profile.id,
                {
                    "a0001": ("string", "new", T0 - 5, T0 + 5),
                    "a0002": ("string", "old", T0 - 9, T0),
                },
            )
        found = {a["name"]: a for a in attributes.list_attributes(db, profile.id, prefix="A000")}
        assert len(found) == 10
        assert (found["a0001"]["type"], found["a0001"]["sample"]) == ("string", "new")
        assert found["a0002"]["sample"] == 2  # the older observation keeps the newer sample
        assert found["a0002"]["first_seen"] == timeutil.iso(T0 - 9)
        profiles.remove(db, SYSTEM, profile)
    finally:
        db.dispose()
