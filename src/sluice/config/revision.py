"""The runtime configuration revision: bumped with every change the runtime must see."""

from __future__ import annotations

from sqlalchemy import Connection, insert, select, update

from sluice import timeutil
from sluice.storage.db import CONFIG_CHANGED
from sluice.storage.tables import config_revisions


def bump(conn: Connection) -> None:
    """Tell every process (through the database) that the runtime config changed."""
    conn.info[CONFIG_CHANGED] = True
    result = conn.execute(
        update(config_revisions)
        .where(config_revisions.c.id == 1)
        .values(revision=config_revisions.c.revision + 1, updated_at=timeutil.now())
    )
    if result.rowcount == 0:
        conn.execute(insert(config_revisions).values(id=1, revision=1, updated_at=timeutil.now()))


def current(conn: Connection) -> int:
    value = conn.execute(
        select(config_revisions.c.revision).where(config_revisions.c.id == 1)
    ).scalar()
    return int(value or 0)
