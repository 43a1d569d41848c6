"""A structured diff of two connector snapshots (``GET .../versions/{a}/diff/{b}``).

Actions are matched by id, so a renamed action is one change of ``actions[act_x].name``
rather than a removal and an addition. Paths: ``name``, ``enabled``,
``configuration.<field>``, ``actions[<id>]`` (added or removed whole) and
``actions[<id>].<field>``.
"""

from __future__ import annotations

from typing import Any

from sluice.crypto import MASK

TOP_LEVEL = ("type", "name", "enabled")
ACTION_FIELDS = ("name", "type", "enabled", "source", "mappings", "consent_categories")


def _change(path: str, before: Any, after: Any) -> dict[str, Any]:
    if before is None:
        kind = "added"
    elif after is None:
        kind = "removed"
    else:
        kind = "changed"
    return {"change": kind, "path": path, "before": before, "after": after}


def _dict_changes(
    prefix: str, before: dict[str, Any], after: dict[str, Any]
) -> list[dict[str, Any]]:
    changes = []
    for key in [*before, *(k for k in after if k not in before)]:
        old, new = before.get(key), after.get(key)
        if old != new:
            changes.append(_change(f"{prefix}.{key}", old, new))
    return changes


def diff_snapshots(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    changes = []
    for key in TOP_LEVEL:
        if before.get(key) != after.get(key):
            changes.append(
                {
                    "change": "changed",
                    "path": key,
                    "before": before.get(key),
                    "after": after.get(key),
                }
            )
    changes.extend(
        _dict_changes(
            "configuration", before.get("configuration") or {}, after.get("configuration") or {}
        )
    )
    old_actions = {a["id"]: a for a in before.get("actions") or []}
    new_actions = {a["id"]: a for a in after.get("actions") or []}
    for action_id, old in old_actions.items():
        new = new_actions.get(action_id)
        path = f"actions[{action_id}]"
        if new is None:
            changes.append(_change(path, old, None))
            continue
        for field in ACTION_FIELDS:
            if old.get(field) != new.get(field):
                changes.append(
                    {
                        "change": "changed",
                        "path": f"{path}.{field}",
                        "before": old.get(field),
                        "after": new.get(field),
                    }
                )
    for action_id, new in new_actions.items():
        if action_id not in old_actions:
            changes.append(_change(f"actions[{action_id}]", None, new))
    return changes


def secret_changes(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """Which secrets were set, cleared or changed: the values only ever as the mask."""
    changes = []
    for key in sorted({*before, *after}):
        old, new = before.get(key), after.get(key)
        if old != new:
            changes.append(
                _change(
                    f"configuration.{key}",
                    MASK if old is not None else None,
                    MASK if new is not None else None,
                )
            )
    return changes
