"""What is live: the published version of every connector, as the runtime reads it.

The runtime compiles these into its in-memory view (:mod:`sluice.engine.compiled`) whenever
the configuration revision moves; the event hot path never queries configuration tables.
Drafts are never read here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, and_, select

from sluice import jsonutil
from sluice.crypto import SecretBox
from sluice.storage.tables import connector_versions, connectors, profiles

__all__ = ["PublishedConnector", "load_published"]


@dataclass
class PublishedConnector:
    """One connector as its published version has it.

    ``configuration`` holds the non-secret values with the decrypted secrets of that
    version merged in (defaults are not filled in); ``actions`` are the snapshot's actions:
    ``{"id", "name", "type", "enabled", "source", "mappings", "consent_categories"}``.
    """

    id: str
    profile_id: str
    account: str
    profile: str
    type: str
    name: str
    version: int
    enabled: bool
    configuration: dict[str, Any] = field(default_factory=dict)
    actions: list[dict[str, Any]] = field(default_factory=list)


def load_published(
    conn: Connection, box: SecretBox, *, profile_id: str | None = None
) -> list[PublishedConnector]:
    """Every connector with a published version (of one profile, if given), in one query."""
    query = (
        select(
            connectors.c.id,
            connectors.c.profile_id,
            connectors.c.type,
            profiles.c.account,
            profiles.c.profile,
            connector_versions.c.version,
            connector_versions.c.snapshot,
            connector_versions.c.secrets,
        )
        .join(
            connector_versions,
            and_(
                connector_versions.c.connector_id == connectors.c.id,
                connector_versions.c.version == connectors.c.published_version,
            ),
        )
        .join(profiles, profiles.c.id == connectors.c.profile_id)
        .order_by(connectors.c.profile_id, connectors.c.id)
    )
    if profile_id is not None:
        query = query.where(connectors.c.profile_id == profile_id)
    found = []
    for row in conn.execute(query):
        snapshot = jsonutil.loads(row.snapshot)
        config = dict(snapshot.get("configuration") or {})
        config.update(box.decrypt(row.secrets))
        found.append(
            PublishedConnector(
                id=row.id,
                profile_id=row.profile_id,
                account=row.account,
                profile=row.profile,
                type=snapshot.get("type") or row.type,
                name=snapshot.get("name") or "",
                version=int(row.version),
                enabled=bool(snapshot.get("enabled")),
                configuration=config,
                actions=list(snapshot.get("actions") or []),
            )
        )
    return found
