"""``sluice migrate``: bring the database schema up to date (idempotent)."""

from __future__ import annotations

import click

from sluice.cli._base import database_option
from sluice.storage import migrate as migrations
from sluice.storage.db import Database


@click.command()
@database_option
def migrate(database: str) -> None:
    """Bring the database schema to the newest revision; safe to run again."""
    db = Database(database)
    try:
        db.check()
        before = migrations.current_revision(db)
        migrations.upgrade(db)
        after = migrations.current_revision(db)
    finally:
        db.dispose()
    if before == after:
        click.echo(f"the schema is up to date at revision {after}")
    else:
        click.echo(f"migrated the schema from revision {before or 'none'} to {after}")
