from __future__ import annotations

from typing import Any

from sluice.config.diffing import diff_snapshots, secret_changes


def _snapshot(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "con_1",
        "type": "webhook",
        "name": "Hook",
        "configuration": {"auth_type": "none"},
        "enabled": False,
        "actions": [
            {
                "id": "act_1",
                "name": "A",
                "type": "send_event_data",
                "enabled": False,
                "source": {"event_feed": "all_events", "data_source": None},
                "mappings": [],
                "consent_categories": [],
            }
        ],
    }
    base.update(overrides)
    return base


def test_identical_snapshots_have_no_changes() -> None:
    assert diff_snapshots(_snapshot(), _snapshot()) == []


def test_action_order_is_not_a_change() -> None:
    two = _snapshot()
    two["actions"].append({**two["actions"][0], "id": "act_2"})
    swapped = _snapshot(actions=list(reversed(two["actions"])))
    assert diff_snapshots(two, swapped) == []


def test_configuration_keys_added_removed_changed() -> None:
    before = _snapshot(configuration={"auth_type": "none", "username": "u"})
    after = _snapshot(configuration={"auth_type": "basic", "timeout_seconds": 5})
    assert diff_snapshots(before, after) == [
        {
            "change": "changed",
            "path": "configuration.auth_type",
            "before": "none",
            "after": "basic",
        },
        {"change": "removed", "path": "configuration.username", "before": "u", "after": None},
        {"change": "added", "path": "configuration.timeout_seconds", "before": None, "after": 5},
    ]


def test_enabled_false_to_true_is_a_change() -> None:
    assert diff_snapshots(_snapshot(), _snapshot(enabled=True)) == [
        {"change": "changed", "path": "enabled", "before": False, "after": True}
    ]


def test_action_fields_are_matched_by_id() -> None:
    after = _snapshot()
    after["actions"][0] = {**after["actions"][0], "name": "B", "enabled": True}
    assert [c["path"] for c in diff_snapshots(_snapshot(), after)] == [
        "actions[act_1].name",
        "actions[act_1].enabled",
    ]


def test_secret_changes_show_only_the_mask() -> None:
    changes = secret_changes({"token": "a", "password": "p"}, {"token": "b"})
    assert changes == [
        {
            "change": "removed",
            "path": "configuration.password",
            "before": "********",
            "after": None,
        },
        {
            "change": "changed",
            "path": "configuration.token",
            "before": "********",
            "after": "********",
        },
    ]
    assert secret_changes({"token": "a"}, {"token": "a"}) == []
