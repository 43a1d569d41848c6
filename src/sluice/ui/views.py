"""What pages show, computed from the services' JSON: labels, summaries, groupings."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sluice import timeutil
from sluice.config import data_sources, event_feeds
from sluice.config.profiles import Profile
from sluice.connectors.catalog_json import icon_data_uri
from sluice.connectors.definition import ConnectorType
from sluice.crypto import MASK
from sluice.reporting import reports
from sluice.reporting.counters import COUNTERS
from sluice.services import Services
from sluice.ui import pages_audiences

TRIGGER_LABELS = {
    "joined": "joined the audience",
    "left": "left the audience",
    "in_at_start_of_visit": "in the audience at the start of a visit",
    "in_at_end_of_visit": "in the audience at the end of a visit",
}


@dataclass
class Sources:
    """Names of what an action's source refers to, looked up once per page."""

    feeds: dict[str, str] = field(default_factory=dict)
    data_sources: dict[str, str] = field(default_factory=dict)
    audiences: dict[str, str] = field(default_factory=dict)

    def label(self, source: dict[str, Any] | None) -> str:
        if not source:
            return "—"
        if "audience" in source:
            name = self.audiences.get(str(source["audience"]), str(source["audience"]))
            trigger = TRIGGER_LABELS.get(str(source.get("trigger")), str(source.get("trigger")))
            return f"Audience “{name}”, {trigger}"
        feed = self.feeds.get(str(source.get("event_feed")), str(source.get("event_feed")))
        ds = source.get("data_source")
        if ds:
            return f"{feed} · from {self.data_sources.get(str(ds), str(ds))}"
        return feed


def load_sources(services: Services, profile: Profile) -> Sources:
    feeds = {f["id"]: f["name"] for f in event_feeds.list_feeds(services.db, profile.id)}
    sources = {d["id"]: d["name"] for d in data_sources.list_sources(services.db, profile.id)}
    audiences = {a["id"]: a["name"] for a in pages_audiences.list_audiences(services, profile)}
    return Sources(feeds, sources, audiences)


def type_of(services: Services, type_id: str) -> dict[str, Any]:
    """A connector type's name and icon; a type whose plugin is gone still gets a label."""
    ct = services.registry.get(type_id)
    if ct is None:
        return {"id": type_id, "name": type_id, "icon": None, "installed": False}
    return {"id": ct.id, "name": ct.name, "icon": icon_data_uri(ct), "installed": True}


def config_rows(ct: ConnectorType | None, configuration: dict[str, Any]) -> list[dict[str, Any]]:
    """Each configuration field with what is set; secrets only as set or not set."""
    if ct is None:
        return [
            {"name": k, "title": k, "value": v, "secret": v == MASK, "is_set": True}
            for k, v in configuration.items()
        ]
    rows = []
    for f in ct.all_configuration():
        value = configuration.get(f.name)
        rows.append(
            {
                "name": f.name,
                "title": f.title,
                "group": f.group or "Settings",
                "secret": f.secret,
                "is_set": value is not None,
                "value": None if f.secret else value,
                "default": f.default,
                "help": f.help,
                "required": f.required,
            }
        )
    return rows


def config_summary(ct: ConnectorType | None, configuration: dict[str, Any]) -> list[str]:
    """A few words per setting that differs from its default, for the landing page."""
    parts = []
    tuned = False
    for row in config_rows(ct, configuration):
        if not row["is_set"]:
            continue
        if row.get("group") == "Delivery":
            tuned = True
            continue
        if row["secret"]:
            parts.append(f"{row['title']}: set")
        elif row.get("default") is None or row["value"] != row.get("default"):
            value = row["value"]
            text = value if isinstance(value, str) else str(value)
            parts.append(f"{row['title']}: {text[:40]}")
    if tuned:
        parts.append("Custom delivery settings")
    return parts


def consent_of(ct: ConnectorType | None, action: dict[str, Any]) -> dict[str, Any]:
    """The categories an action needs, and whether the user chose them (webhook-style)."""
    action_type = ct.action(action["type"]) if ct is not None else None
    user_chosen = action_type.user_consent if action_type is not None else False
    return {"categories": list(action.get("consent_categories") or []), "user": user_chosen}


def action_type_name(ct: ConnectorType | None, type_id: str) -> str:
    action_type = ct.action(type_id) if ct is not None else None
    return action_type.name if action_type is not None else type_id


def group_by_type(services: Services, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = []
    for item in items:
        if not groups or groups[-1]["type"]["id"] != item["type"]:
            groups.append({"type": type_of(services, item["type"]), "connectors": []})
        groups[-1]["connectors"].append(item)
    return groups


def live_baseline(services: Services, profile: Profile) -> dict[str, dict[str, dict[str, int]]]:
    """Each action's counters of the current and the previous minute, by minute.

    The live stream sends a minute's counters whole; the page adds only what grew since
    these, so the totals it shows stay exact.
    """
    minute = int(time.time() // 60)
    found: dict[str, dict[str, dict[str, int]]] = {}
    with services.db.read() as conn:
        both = reports.totals_by_action(conn, profile.id, (minute - 1) * 60)
        current = reports.totals_by_action(conn, profile.id, minute * 60)
    for action_id, total in both.items():
        now = current.get(action_id) or dict.fromkeys(COUNTERS, 0)
        before = {c: total[c] - now[c] for c in COUNTERS}
        found[action_id] = {
            timeutil.iso(minute * 60) or "": now,
            timeutil.iso((minute - 1) * 60) or "": before,
        }
    return found
