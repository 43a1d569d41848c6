"""Which connectors use a data source or an event feed, in their draft or published actions.

Versions refer to data sources and feeds by id, so deleting one that an action uses
(published, or only in a draft that could be published) must be refused (SPEC §4 Drafts).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, and_, select

from sluice import jsonutil
from sluice.errors import Conflict
from sluice.storage.tables import actions, connector_versions, connectors


def connectors_using(
    conn: Connection, profile_id: str, key: str, value: str
) -> list[dict[str, str]]:
    """The connectors (``id``, ``name``) with an action whose ``source[key]`` is ``value``."""
    found: dict[str, str] = {}
    drafts = conn.execute(
        select(connectors.c.id, connectors.c.name, actions.c.source)
        .join(connectors, connectors.c.id == actions.c.connector_id)
        .where(actions.c.profile_id == profile_id)
    )
    for connector_id, name, source in drafts:
        if _uses(jsonutil.loads(source), key, value):
            found[connector_id] = name
    published = conn.execute(
        select(connectors.c.id, connectors.c.name, connector_versions.c.snapshot)
        .join(
            connector_versions,
            and_(
                connector_versions.c.connector_id == connectors.c.id,
                connector_versions.c.version == connectors.c.published_version,
            ),
        )
        .where(connectors.c.profile_id == profile_id)
    )
    for connector_id, name, snapshot in published:
        document = jsonutil.loads(snapshot) or {}
        for action in document.get("actions") or []:
            if isinstance(action, dict) and _uses(action.get("source"), key, value):
                found[connector_id] = name
    return [{"id": i, "name": n} for i, n in sorted(found.items(), key=lambda item: item[1])]


def refuse_if_used(conn: Connection, profile_id: str, key: str, value: str, what: str) -> None:
    """Raise 409 naming the connectors when any action uses ``value`` as its ``key``."""
    users = connectors_using(conn, profile_id, key, value)
    if users:
        listed = ", ".join(repr(c["name"]) for c in users)
        raise Conflict(
            f"{what} is used by actions of the connectors {listed}; change those actions first",
            [{"connector_id": c["id"], "connector_name": c["name"]} for c in users],
        )


def _uses(source: Any, key: str, value: str) -> bool:
    return isinstance(source, dict) and source.get(key) == value
