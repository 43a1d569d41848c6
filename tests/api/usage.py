"""Test helper: a connector whose draft (or published) action uses a given source."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from sluice import jsonutil, timeutil
from sluice.ids import new_id
from sluice.services import Services
from sluice.storage.tables import actions, connector_versions, connectors, profiles


def add_connector_using(
    services: Services,
    account: str,
    profile: str,
    source: dict[str, Any],
    *,
    name: str = "Webhook Prod",
    published: bool = False,
) -> str:
    """Rows written straight to the tables, so these tests need no connector routes.

    ``published``: only the published snapshot uses ``source``; the draft action does not.
    """
    now = timeutil.now()
    connector_id = new_id("con")
    action = {
        "id": new_id("act"),
        "connector_id": connector_id,
        "name": "Send",
        "type": "send_event_data",
        "enabled": True,
        "source": source,
        "mappings": [],
    }
    with services.db.begin() as conn:
        profile_id = conn.execute(
            select(profiles.c.id).where(
                profiles.c.account == account, profiles.c.profile == profile
            )
        ).scalar_one()
        conn.execute(
            connectors.insert().values(
                id=connector_id,
                profile_id=profile_id,
                type="webhook",
                name=name,
                configuration="{}",
                enabled=True,
                published_version=1 if published else None,
                has_unpublished_changes=not published,
                created_at=now,
                updated_at=now,
            )
        )
        draft_source = {"event_feed": "all_events", "data_source": None} if published else source
        conn.execute(
            actions.insert().values(
                id=action["id"],
                connector_id=connector_id,
                profile_id=profile_id,
                name="Send",
                type="send_event_data",
                enabled=True,
                source=jsonutil.dumps(draft_source),
                mappings="[]",
                consent_categories="[]",
                position=0,
                created_at=now,
                updated_at=now,
            )
        )
        if published:
            snapshot = {"id": connector_id, "name": name, "actions": [action]}
            conn.execute(
                connector_versions.insert().values(
                    connector_id=connector_id,
                    version=1,
                    author="test",
                    created_at=now,
                    note="",
                    snapshot=jsonutil.dumps(snapshot),
                )
            )
    return connector_id
