from __future__ import annotations

import re

import pytest

from sluice.config import data_sources
from sluice.services import Services
from tests.api.usage import add_connector_using
from tests.conftest import Api


def test_create_list_get_patch_delete(api: Api, profile: str) -> None:
    created = api.post(
        f"{profile}/data-sources", {"name": "Web shop", "platform": "web", "description": "d"}
    )
    assert created.status_code == 201, created.text
    source = created.json()
    assert set(source) == {
        "id",
        "name",
        "platform",
        "key",
        "description",
        "created_at",
        "updated_at",
    }
    assert source["name"] == "Web shop"
    assert source["platform"] == "web"
    assert re.fullmatch(r"[a-z0-9]{6}", source["key"])
    assert source["created_at"].endswith("Z")

    listed = api.get(f"{profile}/data-sources").json()
    assert listed == {"data_sources": [source]}
    assert api.get(f"{profile}/data-sources/{source['id']}").json() == source

    patched = api.patch(
        f"{profile}/data-sources/{source['id']}", {"name": "Shop", "platform": "mobile"}
    )
    assert patched.status_code == 200
    assert patched.json()["name"] == "Shop"
    assert patched.json()["platform"] == "mobile"
    assert patched.json()["key"] == source["key"]
    assert patched.json()["description"] == "d"

    assert api.delete(f"{profile}/data-sources/{source['id']}").status_code == 204
    missing = api.get(f"{profile}/data-sources/{source['id']}")
    assert missing.status_code == 404
    assert api.delete(f"{profile}/data-sources/{source['id']}").status_code == 404


def test_keys_are_unique_and_never_patched(api: Api, profile: str) -> None:
    keys = {
        api.post(f"{profile}/data-sources", {"name": f"s{i}", "platform": "http_api"}).json()["key"]
        for i in range(20)
    }
    assert len(keys) == 20
    source = api.get(f"{profile}/data-sources").json()["data_sources"][0]
    response = api.patch(f"{profile}/data-sources/{source['id']}", {"key": "abcdef"})
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == "key"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"platform": "web"}, "name"),
        ({"name": "x"}, "platform"),
        ({"name": "x", "platform": "tv"}, "platform"),
        ({"name": "x", "platform": "web", "colour": "red"}, "colour"),
        ({"name": "   ", "platform": "web"}, "name"),
    ],
    ids=["no-name", "no-platform", "bad-platform", "unknown-key", "blank-name"],
)
def test_validation_names_the_field(
    api: Api, profile: str, body: dict[str, str], field: str
) -> None:
    response = api.post(f"{profile}/data-sources", body)
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == field


def test_duplicate_name_is_409(api: Api, profile: str) -> None:
    assert (
        api.post(f"{profile}/data-sources", {"name": "App", "platform": "mobile"}).status_code
        == 201
    )
    again = api.post(f"{profile}/data-sources", {"name": "app", "platform": "web"})
    assert again.status_code == 409


def test_find_by_key(api: Api, profile: str, services: Services) -> None:
    source = api.post(f"{profile}/data-sources", {"name": "S", "platform": "file"}).json()
    with services.db.read() as conn:
        row = data_sources.find_by_key(conn, source["key"])
        assert row is not None
        assert row.id == source["id"]
        assert data_sources.find_by_key(conn, "nope00") is None


def test_other_profile_cannot_see_it(api: Api, profile: str) -> None:
    source = api.post(f"{profile}/data-sources", {"name": "S", "platform": "web"}).json()
    api.post("/profiles", {"account": "acme", "profile": "other"})
    assert api.get(f"/profiles/acme/other/data-sources/{source['id']}").status_code == 404
    assert api.get("/profiles/acme/other/data-sources").json() == {"data_sources": []}


@pytest.mark.parametrize("published", [False, True], ids=["draft", "published"])
def test_delete_in_use_is_409_naming_the_connector(
    api: Api, profile: str, services: Services, published: bool
) -> None:
    source = api.post(f"{profile}/data-sources", {"name": "S", "platform": "web"}).json()
    add_connector_using(
        services,
        "acme",
        "main",
        {"event_feed": "all_events", "data_source": source["id"]},
        name="Webhook Prod",
        published=published,
    )
    response = api.delete(f"{profile}/data-sources/{source['id']}")
    assert response.status_code == 409
    assert "Webhook Prod" in response.json()["error"]
    assert response.json()["details"][0]["connector_name"] == "Webhook Prod"


def test_changes_are_audited(api: Api, profile: str) -> None:
    source = api.post(f"{profile}/data-sources", {"name": "S", "platform": "web"}).json()
    api.patch(f"{profile}/data-sources/{source['id']}", {"description": "x"})
    api.delete(f"{profile}/data-sources/{source['id']}")
    actions = [e["action"] for e in api.get(f"{profile}/audit").json()["entries"]]
    assert actions[:3] == ["data_source.delete", "data_source.update", "data_source.create"]
