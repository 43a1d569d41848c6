from __future__ import annotations

import pytest

from sluice import timeutil
from tests.conftest import Api


def _make_changes(api: Api, profile: str, count: int) -> None:
    for i in range(count):
        response = api.post(f"{profile}/data-sources", {"name": f"s{i}", "platform": "web"})
        assert response.status_code == 201


def test_entries_newest_first(api: Api, profile: str) -> None:
    _make_changes(api, profile, 2)
    body = api.get(f"{profile}/audit").json()
    assert set(body) == {"entries", "next_cursor"}
    assert body["next_cursor"] is None
    entries = body["entries"]
    assert [e["action"] for e in entries] == [
        "data_source.create",
        "data_source.create",
        "profile.create",
    ]
    first = entries[0]
    assert set(first) == {"at", "actor", "action", "object", "details"}
    assert first["actor"] == "token:test-admin"
    assert first["at"].endswith("Z")
    assert first["details"]["name"] == "s1"


def test_pagination_with_cursor(api: Api, profile: str) -> None:
    _make_changes(api, profile, 5)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        body = api.get(f"{profile}/audit", params=params).json()
        seen.extend(e["details"].get("name", "profile") for e in body["entries"])
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == ["s4", "s3", "s2", "s1", "s0", "profile"]


def test_time_range(api: Api, profile: str) -> None:
    _make_changes(api, profile, 1)
    now = timeutil.now()
    past = api.get(f"{profile}/audit", params={"to": timeutil.iso(now - 3600)}).json()
    assert past["entries"] == []
    recent = api.get(
        f"{profile}/audit",
        params={"from": timeutil.iso(now - 3600), "to": timeutil.iso(now + 60)},
    ).json()
    assert len(recent["entries"]) == 2


@pytest.mark.parametrize(
    ("params", "field"),
    [({"from": "yesterday"}, "from"), ({"to": "2025-13-01T00:00:00Z"}, "to")],
    ids=["from", "to"],
)
def test_invalid_time_is_400_naming_the_param(
    api: Api, profile: str, params: dict[str, str], field: str
) -> None:
    response = api.get(f"{profile}/audit", params=params)
    assert response.status_code == 400
    assert response.json()["error"].startswith(field)
    assert response.json()["details"] == [{"field": field, "message": "not an ISO 8601 timestamp"}]


def test_from_after_to_is_400(api: Api, profile: str) -> None:
    response = api.get(
        f"{profile}/audit", params={"from": "2025-01-02T00:00:00Z", "to": "2025-01-01T00:00:00Z"}
    )
    assert response.status_code == 400


def test_invalid_cursor_is_400(api: Api, profile: str) -> None:
    assert api.get(f"{profile}/audit", params={"cursor": "abc"}).status_code == 400
