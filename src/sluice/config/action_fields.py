"""The checks of an action's fields: type, source, consent categories and completeness.

A source is an event feed (optionally one data source) or, for action types that take
visitor data, an audience with a trigger (SPEC §4, §8). Feeds, data sources and audiences
take effect at once and are referred to by id, so each must exist in the profile.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from sluice.config.event_feeds import ALL_EVENTS_ID
from sluice.connectors.definition import CONSENT_CATEGORIES, ActionType, ConnectorType
from sluice.engine.mapping import compute_status
from sluice.errors import ValidationFailed
from sluice.storage.tables import audiences, data_sources, event_feeds

TRIGGERS = ("joined", "left", "in_at_start_of_visit", "in_at_end_of_visit")
FEED_KEYS = ("event_feed", "data_source")
AUDIENCE_KEYS = ("audience", "trigger", "delay_hours", "frequency_cap")
DEFAULT_SOURCE: dict[str, Any] = {"event_feed": ALL_EVENTS_ID, "data_source": None}


def _normal(category: str) -> str:
    return "".join(c for c in category.lower() if c not in " _-")


_CANONICAL = {_normal(c): c for c in CONSENT_CATEGORIES}


def action_type_of(ct: ConnectorType, type_id: Any) -> ActionType:
    action_type = ct.action(type_id) if isinstance(type_id, str) else None
    if action_type is None:
        valid = [a.id for a in ct.actions]
        raise ValidationFailed(
            f"type: unknown action type {type_id!r} for {ct.name}; valid types: {', '.join(valid)}",
            [{"field": "type", "message": "unknown action type", "valid": valid}],
        )
    return action_type


def _exists(conn: Connection, table: Any, profile_id: str, object_id: Any) -> bool:
    if not isinstance(object_id, str):
        return False
    query = select(table.c.id).where(table.c.id == object_id, table.c.profile_id == profile_id)
    return conn.execute(query).first() is not None


def check_source(
    conn: Connection, profile_id: str, action_type: ActionType, raw: Any
) -> dict[str, Any]:
    if raw is None:
        raw = dict(DEFAULT_SOURCE)
    if not isinstance(raw, dict):
        raise ValidationFailed.field("source", "must be an object")
    if "audience" in raw:
        return _audience_source(conn, profile_id, action_type, raw)
    if "event_feed" not in raw:
        raise ValidationFailed.field("source", "needs an event_feed or an audience")
    for key in raw:
        if key not in FEED_KEYS:
            raise ValidationFailed.field(f"source.{key}", "unknown field of an event feed source")
    if "event" not in action_type.data_types:
        raise ValidationFailed.field(
            "source.event_feed", f"{action_type.name} takes visitor data: use an audience source"
        )
    feed = raw["event_feed"]
    if feed != ALL_EVENTS_ID and not _exists(conn, event_feeds, profile_id, feed):
        raise ValidationFailed.field("source.event_feed", f"no event feed {feed!r} in this profile")
    data_source = raw.get("data_source")
    if data_source is not None and not _exists(conn, data_sources, profile_id, data_source):
        raise ValidationFailed.field(
            "source.data_source", f"no data source {data_source!r} in this profile"
        )
    return {"event_feed": feed, "data_source": data_source}


def _audience_source(
    conn: Connection, profile_id: str, action_type: ActionType, raw: dict[str, Any]
) -> dict[str, Any]:
    for key in raw:
        if key not in AUDIENCE_KEYS:
            raise ValidationFailed.field(f"source.{key}", "unknown field of an audience source")
    if "visitor" not in action_type.data_types:
        raise ValidationFailed.field(
            "source.audience", f"{action_type.name} takes event data only: use an event feed"
        )
    audience = raw["audience"]
    if not _exists(conn, audiences, profile_id, audience):
        raise ValidationFailed.field("source.audience", f"no audience {audience!r} in this profile")
    trigger = raw.get("trigger")
    if trigger not in TRIGGERS:
        raise ValidationFailed.field("source.trigger", f"must be one of {', '.join(TRIGGERS)}")
    source: dict[str, Any] = {"audience": audience, "trigger": trigger}
    delay = raw.get("delay_hours")
    if delay is not None:
        if trigger != "in_at_end_of_visit":
            raise ValidationFailed.field(
                "source.delay_hours", "is only allowed with the trigger in_at_end_of_visit"
            )
        if isinstance(delay, bool) or not isinstance(delay, int) or not 1 <= delay <= 8760:
            raise ValidationFailed.field("source.delay_hours", "must be a whole number, 1 to 8760")
        source["delay_hours"] = delay
    cap = raw.get("frequency_cap")
    if cap is not None:
        source["frequency_cap"] = _frequency_cap(cap)
    return source


def _frequency_cap(cap: Any) -> dict[str, Any]:
    if not isinstance(cap, dict):
        raise ValidationFailed.field("source.frequency_cap", "must be an object")
    for key in cap:
        if key not in ("priority", "cooldown_group"):
            raise ValidationFailed.field(f"source.frequency_cap.{key}", "unknown field")
    priority = cap.get("priority")
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise ValidationFailed.field("source.frequency_cap.priority", "must be a whole number")
    group = cap.get("cooldown_group")
    if not isinstance(group, str) or not group.strip():
        raise ValidationFailed.field("source.frequency_cap.cooldown_group", "is required")
    return {"priority": priority, "cooldown_group": group.strip()}


def check_consent(action_type: ActionType, raw: Any, *, given: bool) -> list[str]:
    """The user's categories for webhook-style types; the fixed list for the others."""
    fixed = list(action_type.consent_categories)
    if not given or raw is None:
        return [] if action_type.user_consent else fixed
    if not isinstance(raw, list) or not all(isinstance(c, str) for c in raw):
        raise ValidationFailed.field("consent_categories", "must be a list of category names")
    chosen: list[str] = []
    for index, category in enumerate(raw):
        canonical = _CANONICAL.get(_normal(category))
        if canonical is None:
            raise ValidationFailed.field(
                f"consent_categories[{index}]",
                f"unknown category {category!r}; use {', '.join(CONSENT_CATEGORIES)}",
            )
        if canonical not in chosen:
            chosen.append(canonical)
    if action_type.user_consent:
        return chosen
    if set(chosen) != {_CANONICAL.get(_normal(c), c) for c in fixed}:
        raise ValidationFailed.field(
            "consent_categories",
            f"are fixed for {action_type.name} ({', '.join(fixed) or 'none'}) "
            "and cannot be changed",
        )
    return fixed


def require_complete(
    action_type: ActionType, mappings: list[dict[str, Any]], label: str = ""
) -> None:
    """An action switched on must have every required parameter mapped (SPEC §2.7)."""
    status = compute_status(action_type, mappings)
    if status["state"] != "INCOMPLETE":
        return
    missing = list(status.get("missing") or [])
    who = f"the action {label!r}" if label else "the action"
    raise ValidationFailed(
        f"enabled: {who} is INCOMPLETE and cannot be switched on; "
        f"map the required parameters: {', '.join(missing)}",
        [{"field": "enabled", "message": "INCOMPLETE", "missing": missing}],
    )
