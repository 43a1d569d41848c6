"""The error log's replay route: what it refuses (listing and export: tests/reporting)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"connector": {}}, "connector", "must be an id (a string) or null"),
        ({"action": [1]}, "action", "must be an id (a string) or null"),
        ({"from": {}}, "from", "must be an ISO 8601 timestamp (a string) or null"),
        ({"to": [1]}, "to", "must be an ISO 8601 timestamp (a string) or null"),
        ({"from": 5}, "from", "must be an ISO 8601 timestamp (a string) or null"),
    ],
    ids=["connector-object", "action-list", "from-object", "to-list", "from-number"],
)
def test_replay_refuses_fields_that_are_not_strings(
    api: Api, profile: str, body: dict[str, Any], field: str, message: str
) -> None:
    # Found by probing beside the management API fuzz: these answered 500.
    response = api.post(f"{profile}/errors/replay", body)
    assert response.status_code == 422, response.text
    assert response.json()["details"] == [{"field": field, "message": message}]


def test_replay_with_nothing_to_replay(api: Api, profile: str) -> None:
    response = api.post(f"{profile}/errors/replay", {"connector": None, "from": None})
    assert response.status_code == 202, response.text
    assert response.json() == {"replayed": 0}
